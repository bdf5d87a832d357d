"""Built-in plugin `traces`: bug-fix trace capture, hash chains, sandboxed test re-runs, rubric judging."""

__version__ = "0.1.0"
