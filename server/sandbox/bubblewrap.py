"""The bubblewrap backend: a sandbox with no container engine, 20-60 ms a run.

Every namespace is unshared (no network but a loopback of its own, its own
pids, so nothing outlives pid 1), the user is uid 1000 in a user namespace
that may not make more of them, every capability is dropped and bwrap sets
no_new_privs (a setuid binary gains nothing). The root is an empty read-only
tmpfs holding the host's /usr read-only and nothing else of the host: no /etc,
/home, /root or /work. /workspace and /tmp are size-bounded tmpfs. Limits are
a cgroup v1 when this process may make one (cgroups.py), else rlimits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from flywheel.server.sandbox import cgroups
from flywheel.server.sandbox.capture import Capture, pump, split_collected
from flywheel.server.sandbox.inner import environment, new_marker, wrapped
from flywheel.server.sandbox.spec import Sandbox, SandboxError, SandboxResult, SandboxSpec, decode

UID = 1000
# Launches bwrap from inside the run's cgroup, so even its first child is counted.
_JOIN_CGROUP = 'for p in $FLYWHEEL_CGROUP_PROCS; do echo $$ > "$p" || exit 126; done; exec "$@"'
# The host's top-level links into /usr (merged-/usr Debian) are recreated as links.
_USR_LINKS = ("bin", "lib", "lib64", "sbin", "lib32", "libx32")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


class BubblewrapSandbox(Sandbox):
    name = "bubblewrap"

    def __init__(self, bwrap: str | None = None) -> None:
        found = bwrap or bwrap_path()
        if found is None:
            raise SandboxError("bubblewrap is not installed (apt-get install bubblewrap)")
        self.bwrap = found

    async def run(self, spec: SandboxSpec) -> SandboxResult:
        spec.check()
        if spec.workspace is not None and not Path(spec.workspace).is_dir():
            raise SandboxError("the workspace is not a folder")
        group = _cgroup(spec)
        try:
            return await self._run(spec, group)
        finally:
            if group is not None:
                await group.release()

    async def _run(self, spec: SandboxSpec, group: cgroups.Cgroup | None) -> SandboxResult:
        marker = new_marker()
        argv, launch_env, limits = self._argv(spec, marker, group)
        out, err = Capture(spec.output_limit_bytes + 2 * spec.scratch_bytes if spec.collect
                           else spec.output_limit_bytes), Capture(spec.output_limit_bytes)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=launch_env, start_new_session=True)
        pumps = asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), spec.timeout_s)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            if group is not None:
                group.kill_all()
            await proc.wait()
        finally:
            if proc.returncode is None:
                _kill_group(proc.pid)
                await proc.wait()
        await pumps
        duration = time.monotonic() - started
        oom = group.oom_killed() if group is not None else False
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        own, files = split_collected(out.value(), marker.encode(), spec.scratch_bytes)
        return SandboxResult(
            backend=self.name, exit_code=code, stdout=decode(own), stderr=decode(err.value()),
            duration_s=round(duration, 4), timed_out=timed_out, killed=timed_out or (oom and code != 0),
            oom=oom, truncated=out.truncated or err.truncated, limits=limits, files=files)

    def _argv(self, spec: SandboxSpec, marker: str,
              group: cgroups.Cgroup | None) -> tuple[list[str], dict[str, str], dict[str, str]]:
        argv = [self.bwrap, *_isolation(), *_filesystem(spec)]
        for name, value in environment(spec, marker).items():
            argv += ["--setenv", name, value]
        argv += ["--chdir", "/workspace", "--", *wrapped(spec)]
        limits = {"network": "none", "filesystem": "read-only", "user": f"uid {UID}"}
        if group is not None:
            limits.update(group.enforced)
            return (["/bin/sh", "-c", _JOIN_CGROUP, "launch", *argv],
                    {"FLYWHEEL_CGROUP_PROCS": " ".join(group.procs_files), "PATH": "/usr/bin:/bin"}, limits)
        # No cgroup: rlimits on bwrap and everything under it. RLIMIT_CPU is CPU seconds,
        # not a share; RLIMIT_NPROC would count the host uid's processes, so pids go unlimited.
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            limits.update(memory="none", pids="none", cpu="none")
            return argv, {"PATH": "/usr/bin:/bin"}, limits
        cpu_s = max(1, int(spec.timeout_s * spec.cpus) + 1)
        limits.update(memory="rlimit-as", pids="none", cpu="rlimit-cpu-seconds")
        return ([prlimit, f"--as={spec.memory_bytes}", f"--cpu={cpu_s}", "--", *argv],
                {"PATH": "/usr/bin:/bin"}, limits)


def _isolation() -> list[str]:
    return ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--uid", str(UID), "--gid", str(UID), "--hostname", "sandbox", "--clearenv"]


def _filesystem(spec: SandboxSpec) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _USR_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
             "--size", str(spec.scratch_bytes), "--tmpfs", "/workspace",
             "--size", str(spec.scratch_bytes), "--tmpfs", "/tmp"]
    if spec.workspace is not None:
        args += ["--ro-bind", str(Path(spec.workspace).resolve()), "/src"]
    return [*args, "--remount-ro", "/"]


def _cgroup(spec: SandboxSpec) -> cgroups.Cgroup | None:
    if not cgroups.available():
        return None
    try:
        return cgroups.Cgroup.create(memory_bytes=spec.memory_bytes, pids=spec.pids, cpus=spec.cpus)
    except OSError:
        return None  # e.g. a read-only hierarchy after all: rlimits instead


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
