"""Embedded Postgres and Redis for `flywheel up` and for tests on a bare machine.

Everything lives under one folder (`$FLYWHEEL_DATA_DIR/services`): data,
sockets, logs and temporary files. Nothing outside it is changed; the one
thing ever created outside it is the Postgres cluster of a root Flywheel that
can use no other place (see runas.py and outside.py).
"""

from flywheel.server.embedded.errors import EmbeddedError
from flywheel.server.embedded.postgres import EmbeddedPostgres
from flywheel.server.embedded.redis import EmbeddedRedis
from flywheel.server.embedded.services import EmbeddedServices

__all__ = ["EmbeddedError", "EmbeddedPostgres", "EmbeddedRedis", "EmbeddedServices"]
