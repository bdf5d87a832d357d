"""Whether a backup's migrations fit this release: refused when it knows versions this
release does not (a newer release made it) or a migration's text changed; fine when
this release has more (the next start or `flywheel migrate` applies them)."""

from __future__ import annotations

from flywheel.server.backup.errors import BackupRefused
from flywheel.server.backup.manifest import Manifest
from flywheel.server.db.migrations import read_source
from flywheel.server.state import AppState


def check_release(manifest: Manifest, state: AppState) -> list[str]:
    """Lines to tell the operator (pending migrations, plugins not loaded); raises BackupRefused."""
    known = {(m.namespace, m.version): m for source in state.migration_sources for m in read_source(source)}
    namespaces = {ns for ns, _ in known}
    lines = []
    unknown, changed = [], []
    for m in manifest.migrations:
        mine = known.get((m.namespace, m.version))
        if mine is None and m.namespace in namespaces:
            unknown.append(f"{m.namespace}/{m.version:04d}")
        elif mine is not None and mine.checksum != m.checksum:
            changed.append(f"{m.namespace}/{m.version:04d}_{m.name}.sql")
    if unknown:
        raise BackupRefused(f"the backup has migrations this release of Flywheel does not know "
                            f"({', '.join(unknown)}): it was made by a newer release ({manifest.flywheel_version}); "
                            "restore with that release")
    if changed:
        raise BackupRefused(f"migrations in the backup differ from this release's: {', '.join(changed)}")
    missing = sorted({m.namespace for m in manifest.migrations} - namespaces)
    if missing:
        lines.append(f"warning: the backup has tables of plugins not loaded here ({', '.join(missing)}); "
                     "they are restored but unused")
    backed = {(m.namespace, m.version) for m in manifest.migrations}
    pending = sorted(k for k in known if k not in backed)
    if pending:
        lines.append(f"{len(pending)} migration(s) of this release are newer than the backup "
                     f"({', '.join(f'{ns}/{v:04d}' for ns, v in pending[:5])}): "
                     "`flywheel migrate` (or the next start) applies them")
    return lines
