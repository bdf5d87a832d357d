"""Sandboxes for real, on each backend this machine has: results, limits, and escape attempts contained.

Docker-API runs need podman and the `flywheel-sandbox` image (see
tests/sandbox_backends.py); without them those cases skip, saying why.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from sandbox_backends import PodmanService

from flywheel.server.sandbox import SandboxError, SandboxSpec, backend_name, make_sandbox
from flywheel.server.sandbox.bubblewrap import BubblewrapSandbox, bwrap_path
from flywheel.server.sandbox.docker import DockerSandbox

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def podman():
    service = PodmanService()
    started = service.start()
    yield service if started else service.why
    service.stop()


@pytest.fixture(params=["bubblewrap", "docker"])
async def sandbox(request, podman):
    if request.param == "bubblewrap":
        if bwrap_path() is None:
            pytest.skip("bubblewrap is not installed")
        yield BubblewrapSandbox()
        return
    if isinstance(podman, str):
        pytest.skip(podman)
    box = DockerSandbox(podman.url)
    yield box
    await box.close()


def py(code: str, **kw) -> SandboxSpec:
    return SandboxSpec(command=["python3", "-c", code], **kw)


async def test_pass_fail_and_lenient_output(sandbox):
    ok = await sandbox.run(SandboxSpec(command=["sh", "-c", "echo out; echo err >&2"]))
    assert (ok.exit_code, ok.stdout, ok.stderr, ok.ok) == (0, "out\n", "err\n", True)
    bad = await sandbox.run(py("import sys; sys.stdout.buffer.write(b'caf\\xe9 \\xff!'); sys.exit(3)"))
    assert bad.exit_code == 3 and not bad.ok
    assert bad.stdout == "caf\ufffd \ufffd!"
    assert bad.duration_s > 0


async def test_workspace_is_copied_and_files_come_back(sandbox, tmp_path):
    tmp_path.chmod(0o755)  # the Docker backend's uid 1000 is a real uid on the host
    (tmp_path / "input.txt").write_text("seven")
    r = await sandbox.run(SandboxSpec(
        command=["sh", "-c", "mkdir -p out && tr a-z A-Z < input.txt > out/result.txt && pwd"],
        workspace=str(tmp_path), collect=["out/result.txt", "missing.txt"]))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "/workspace"
    assert r.files == {"out/result.txt": b"SEVEN"}
    assert not (tmp_path / "out").exists(), "the host's folder stays untouched"


async def test_environment_is_pinned(sandbox):
    r = await sandbox.run(py("import os, time; print(os.environ['TZ'], os.environ['LC_ALL'], "
                             "os.environ['PYTHONHASHSEED'], hash('flywheel'), time.tzname[0])"))
    again = await sandbox.run(py("print(hash('flywheel'))"))
    tz, lc, seed, h, name = r.stdout.split()
    assert (tz, lc, seed, name) == ("UTC", "C.UTF-8", "0", "UTC")
    assert again.stdout.strip() == h, "string hashes agree between runs"


async def test_no_network(sandbox):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from the host
        code = ("import socket\nfor port in (5432, 6379, PORT):\n"
                "    s = socket.socket(); s.settimeout(2)\n"
                "    print(s.connect_ex(('127.0.0.1', port)))\n"
                "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); print('out')\n"
                "except OSError as e: print('refused', e.errno)\n").replace("PORT", str(port))
        r = await sandbox.run(py(code))
    finally:
        listener.close()
    lines = r.stdout.split()
    assert r.exit_code == 0, r.stderr
    assert all(int(x) != 0 for x in lines[:3]), f"connected from inside: {lines}"
    assert lines[3] == "refused"


async def test_non_root_without_capabilities_or_new_privileges(sandbox):
    r = await sandbox.run(SandboxSpec(command=["sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"]))
    uid, cap, nnp = r.stdout.splitlines()
    assert uid == "1000"
    assert cap.split()[1] == "0000000000000000"
    assert nnp.split()[1] == "1"


async def test_a_setuid_binary_gains_nothing(sandbox):
    # newgrp is setuid root on Debian; under no_new_privs it runs as the caller, who is no one special.
    r = await sandbox.run(SandboxSpec(command=["sh", "-c", "ls -l /usr/bin/newgrp; newgrp root -c 'id -u' ; id -u"]))
    if "No such file" in r.stderr:
        pytest.skip("no setuid newgrp in this image")
    assert "rws" in r.stdout.splitlines()[0], r.stdout
    assert "\n0\n" not in f"\n{r.stdout}", r.stdout
    assert r.stdout.splitlines()[-1] == "1000"


async def test_cannot_write_outside_scratch_or_past_its_size(sandbox):
    code = ("import os\nfor p in ('/x', '/usr/x', '/etc/x', '/proc/x'):\n"
            "    try:\n        open(p, 'w').write('x'); print('wrote', p)\n"
            "    except OSError as e:\n        print('refused', p)\n"
            "try:\n    open('/workspace/big', 'wb').write(b'0' * (8 * 1024 * 1024)); print('wrote big')\n"
            "except OSError as e:\n    print('full', e.errno)\n")
    r = await sandbox.run(py(code, scratch_bytes=2 * MiB))
    assert "wrote" not in r.stdout.replace("wrote big", ""), r.stdout
    assert r.stdout.splitlines()[-1] == "full 28", r.stdout  # ENOSPC


async def test_host_files_are_not_there(sandbox):
    secret = Path("/root") if os.path.isdir("/root") else Path.home()
    r = await sandbox.run(SandboxSpec(command=["sh", "-c", f"ls {secret} /work /home 2>&1; cat /etc/shadow 2>&1; "
                                               f"cat {Path(__file__).resolve()} 2>&1 | head -c 100"]))
    assert "flywheel" not in r.stdout and "import" not in r.stdout, r.stdout
    assert "root:" not in r.stdout


async def test_timeout_kills_and_leaves_no_child_behind(sandbox):
    tag = f"{uuid.uuid4().int % 10_000_000}.5"
    r = await sandbox.run(SandboxSpec(command=["sh", "-c", f"nohup sleep {tag} >/dev/null 2>&1 & sleep 600"],
                                      timeout_s=1))
    assert r.timed_out and r.killed and r.exit_code == 137
    # Far below the command's 600 s: killed at its timeout. (The duration includes starting a
    # container, which takes seconds under podman on a loaded machine.)
    assert r.duration_s < 15
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).endswith(tag)]
    assert not left, "a child outlived its sandbox"


async def test_a_child_left_running_after_the_command_ends_is_killed(sandbox):
    tag = f"{uuid.uuid4().int % 10_000_000}.25"
    r = await sandbox.run(SandboxSpec(command=["sh", "-c", f"setsid sleep {tag} >/dev/null 2>&1 & echo started"]))
    assert r.stdout.strip() == "started" and not r.timed_out
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).endswith(tag)]
    assert not left, "a background child outlived its sandbox"


async def test_memory_bomb_is_killed(sandbox):
    r = await sandbox.run(py("x = bytearray(400 * 1024 * 1024); print('allocated')", memory_bytes=64 * MiB))
    assert "allocated" not in r.stdout
    if r.limits["memory"] in ("cgroup-v1", "engine"):
        assert r.killed and r.oom and r.exit_code == 137
    else:
        assert "MemoryError" in r.stderr


async def test_fork_bomb_hits_the_pids_limit(sandbox):
    code = ("import os, time\nn = 0\ntry:\n    while n < 2000:\n        if os.fork() == 0:\n"
            "            time.sleep(30); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)\n")
    r = await sandbox.run(py(code, pids=32, timeout_s=20))
    if r.limits["pids"] == "none":
        pytest.skip("no pids limit without a cgroup")
    assert r.exit_code == 0, r.stderr
    assert 0 < int(r.stdout) < 32


async def test_output_is_bounded(sandbox):
    r = await sandbox.run(py("import sys\nfor _ in range(64): sys.stdout.write('y' * 65536)\nprint('END')",
                             output_limit_bytes=64 * 1024))
    assert r.truncated
    assert len(r.stdout) < 200 * 1024


async def test_hostile_spec_values_are_refused(sandbox):
    for spec in (SandboxSpec(command=["true"], collect=["../../etc/passwd"]),
                 SandboxSpec(command=["true"], collect=["$(reboot)"]),
                 SandboxSpec(command=["true"], env={"LD_PRELOAD; x": "1"}),
                 SandboxSpec(command=[])):
        with pytest.raises(SandboxError):
            await sandbox.run(spec)


def test_backend_setting():
    assert backend_name("auto") == ("bubblewrap" if bwrap_path() else "none")
    assert backend_name("docker") == "docker"
    with pytest.raises(SandboxError, match="no sandbox"):
        make_sandbox("none")


def _cmdline(p: Path) -> str:
    try:
        return (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


async def test_shutdown_closes_the_docker_client(podman, flywheel_settings, monkeypatch):
    """`run_sandboxed` keeps one Docker client (an HTTP session to the engine) per process; stopping
    the state closes it, so nothing is left for the garbage collector to warn about."""
    if isinstance(podman, str):
        pytest.skip(podman)
    import asyncio
    import gc

    import msgspec

    from flywheel.server.app import build_state
    from flywheel.server.plugin_api import run_sandboxed

    monkeypatch.setenv("DOCKER_HOST", podman.url)  # where aiodocker finds the engine
    state = build_state(msgspec.structs.replace(flywheel_settings, sandbox="docker"))
    await state.start(run_migrations=False)
    result = await run_sandboxed(state, SandboxSpec(command=["true"]))
    assert (result.backend, result.exit_code) == ("docker", 0)
    loop = asyncio.get_running_loop()
    complaints: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: complaints.append(context["message"]))
    try:
        await state.stop()
        del state, result
        gc.collect()  # an unclosed aiohttp session says so when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c for c in complaints if "Unclosed" in c] == []
