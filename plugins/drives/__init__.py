"""The `drives` plugin: storage-fleet failure prediction from SMART telemetry.

It replaces a NestJS API + FastAPI model service + script-seeded Postgres +
Next.js dashboard. This first part holds the data: daily SMART records per
drive, loaded in bulk from Backblaze drive-stats CSV files
(`flywheel drives import`) or streamed as `drives.smart_daily` events.
"""

from flywheel.server import __version__  # noqa: F401  (a built-in plugin ships with the core)
