"""What the alerts add to the app: routes, jobs and the evaluation schedule (app.py and
jobs/core_jobs.py take them from here)."""

from flywheel.server.alerts.api import AlertController
from flywheel.server.alerts.config_api import AlertConfigController
from flywheel.server.alerts.jobs import ALERT_CRONS, ALERT_JOBS

ALERT_ROUTES = [AlertController, AlertConfigController]

__all__ = ["ALERT_ROUTES", "ALERT_JOBS", "ALERT_CRONS"]
