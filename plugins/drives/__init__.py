"""The `drives` plugin: storage-fleet failure prediction from SMART telemetry.

It replaces a NestJS API + FastAPI model service + script-seeded Postgres +
Next.js dashboard. This first part holds the data: daily SMART records per
drive, loaded in bulk from Backblaze drive-stats CSV files
(`flywheel drives import`) or streamed as `drives.smart_daily` events.
"""

import importlib.metadata

# A built-in plugin ships with the core: its version is Flywheel's (reported by /v1/plugins).
__version__ = importlib.metadata.version("flywheel")
