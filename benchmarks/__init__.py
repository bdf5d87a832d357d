"""Benchmarks: each runs Flywheel against a named peer in the same run and reports ratios."""
