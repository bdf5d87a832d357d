"""Test kit for Flywheel and its plugins (the `pytest11` entry point)."""

from flywheel.server.testing.polling import eventually

__all__ = ["eventually"]
