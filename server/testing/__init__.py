"""Test kit for Flywheel and its plugins (the `pytest11` entry point)."""
