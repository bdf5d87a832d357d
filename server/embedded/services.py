"""Starting and stopping the embedded services together."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flywheel.server.embedded.postgres import EmbeddedPostgres
from flywheel.server.embedded.redis import EmbeddedRedis


class EmbeddedServices:
    """Postgres under `root/postgres`, Redis under `root/redis`; either may be left out."""

    def __init__(self, root: Path, *, postgres: bool = True, redis: bool = True) -> None:
        self.root = Path(root)
        self.postgres = EmbeddedPostgres(self.root / "postgres") if postgres else None
        self.redis = EmbeddedRedis(self.root / "redis") if redis else None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Traverse-only for others: an unprivileged Postgres (see postgres.py)
        # must enter its own folder below this one, and nothing more.
        self.root.chmod(0o711)
        services = [s for s in (self.postgres, self.redis) if s is not None]
        # Both start in parallel: Postgres' initdb dominates a first start.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(s.start) for s in services]
            errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            self.stop()
            raise errors[0]

    def stop(self) -> None:
        for service in (self.redis, self.postgres):
            if service is not None:
                service.stop()

    def __enter__(self) -> EmbeddedServices:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
