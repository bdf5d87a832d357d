"""Faithful replicas of the stacks Flywheel replaces, for the benchmarks."""
