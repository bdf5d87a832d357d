"""`flywheel backup` / `flywheel restore`: the database, the object store and a manifest.

A backup is a folder or an S3 prefix holding `database.dump` (pg_dump's
custom format of the whole database: every migration namespace, core and
plugins', lives in it), `objects/<key>` for every object of the store, and
`manifest.json` (written last: a backup without one is incomplete) with each
object's size and SHA-256 and the settings a restore checks. Secrets are
never in it: FLYWHEEL_SECRET_KEY stays with the operator.
"""

from flywheel.server.backup.errors import BackupCorrupt, BackupError, BackupRefused
from flywheel.server.backup.make import make_backup
from flywheel.server.backup.manifest import Manifest
from flywheel.server.backup.progress import Progress
from flywheel.server.backup.restore import restore_backup

__all__ = ["BackupCorrupt", "BackupError", "BackupRefused", "Manifest", "Progress", "make_backup",
           "restore_backup"]
