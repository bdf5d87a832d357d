"""The `rlaas` plugin: an RL feedback loop for LLM applications.

It replaces an "RL as a service" platform built as separate services (an
inference gateway, an interaction collector, an SDK). Part 1 holds the
OpenAI-compatible gateway with policy routing (`gateway.py`, `routing.py`,
`upstream.py`), the policies and their audit log (`policies.py`), the
interaction, feedback and task-result events (`contracts.py`) and their
projection into queryable tables (`projection.py`).
"""

import importlib.metadata

# A built-in plugin ships with the core: its version is Flywheel's (reported by /v1/plugins).
__version__ = importlib.metadata.version("flywheel")
