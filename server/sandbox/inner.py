"""The shell wrapper every backend runs inside the sandbox, and the environment it pins.

It copies the read-only workspace (`/src`) into the bounded scratch
(`/workspace`), runs the command there as a child, then packs the `collect`
files after a marker on stdout (capture.py says why stdout). The marker and
the list reach it through variables it unsets before the command starts.
"""

from __future__ import annotations

import secrets

from flywheel.server.sandbox.spec import SandboxSpec

SCRIPT = r"""
set -f
m=$FLYWHEEL_MARK; c=$FLYWHEEL_COLLECT; unset FLYWHEEL_MARK FLYWHEEL_COLLECT
if [ -d /src ]; then cp -R /src/. /workspace/ || { echo "sandbox: could not copy the workspace" >&2; exit 125; }; fi
cd /workspace || exit 125
"$@"
rc=$?
if [ -n "$c" ]; then printf '\n%s\n' "$m"; cd /workspace && tar -cf - -- $c 2>/dev/null | base64; fi
exit $rc
"""

# Pinned so two runs of one suite agree: clock zone, locale, hash order, a seed for
# test runners that read one, no bytecode files in the workspace.
PINNED = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "USER": "sandbox",
    "LOGNAME": "sandbox",
    "TZ": "UTC",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "FLYWHEEL_SEED": "0",
    "SOURCE_DATE_EPOCH": "0",
}


def environment(spec: SandboxSpec, marker: str) -> dict[str, str]:
    return {**PINNED, **spec.env, "FLYWHEEL_MARK": marker, "FLYWHEEL_COLLECT": " ".join(spec.collect)}


def wrapped(spec: SandboxSpec) -> list[str]:
    return ["/bin/sh", "-c", SCRIPT, "sandbox", *spec.command]


def new_marker() -> str:
    return f"--flywheel-collect-{secrets.token_hex(12)}--"
