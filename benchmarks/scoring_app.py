"""`python -m uvicorn benchmarks.scoring_app:app --factory`: Flywheel's app with the benchmark's family.

The same app `flywheel serve` builds (settings from the environment, one
worker), plus the plugin in benchmarks/scoring_plugin.py.
"""

from __future__ import annotations

from benchmarks import scoring_plugin
from flywheel.server.app import create_app
from flywheel.server.cli.context import settings_or_exit
from flywheel.server.telemetry import configure_tracing


def app():
    settings = settings_or_exit()
    configure_tracing(settings)
    return create_app(settings, [scoring_plugin])
