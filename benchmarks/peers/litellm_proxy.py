"""The LiteLLM proxy as the gateway benchmark's peer: its own venv, one config, its own process.

    python -m benchmarks.peers.litellm_proxy --upstream http://127.0.0.1:9000/v1 --port 4000

LiteLLM pins rich<14 (Flywheel pins 15) among others, so it never goes into
Flywheel's venv: `ensure_venv()` creates `benchmarks/.venv-litellm` on first
use (python3.11, `litellm[proxy]` at the version below, ~750 MB, two minutes)
and keeps it, git-ignored, for later runs.

The configuration is LiteLLM at its best that is still a fair comparison:
one model entry `openai/<model>` pointed at the same upstream, a master key
(so a request is authenticated, as it is through Flywheel, but with no
database behind the check), no database, no spend or error logs, no
callbacks, no debug logging, the cost map read from the package instead of
fetched, one uvicorn worker with uvloop and httptools (Flywheel runs one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# 1.108.7: the newest release whose `[proxy]` extra resolves from PyPI here (1.108.12 and later pin
# litellm-proxy-extras / litellm-enterprise post-releases, 1.110 a `litellm-proxy` package, that the index
# does not serve; 1.107.0 was the compromised release and is gone). httptools: uvicorn's faster HTTP
# parser, which Flywheel's server uses too (uvicorn falls back to h11 without it).
REQUIREMENTS = ["litellm[proxy]==1.108.7", "httptools==0.9.0"]
VENV = Path(__file__).resolve().parent.parent / ".venv-litellm"
MASTER_KEY = "sk-litellm-bench-master-key"
MODEL_NAME = "bench-chat"

CONFIG = """\
model_list:
  - model_name: {model_name}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}
      api_key: {api_key}
litellm_settings:
  set_verbose: false
  json_logs: false
  callbacks: []
  success_callback: []
  failure_callback: []
  request_timeout: 600
general_settings:
  master_key: {master_key}
  disable_spend_logs: true
  disable_error_logs: true
"""


def ensure_venv(venv: Path = VENV, log=print) -> Path:
    """The venv's `litellm` executable, creating the venv first when it lacks the pinned version."""
    litellm = venv / "bin" / "litellm"
    marker = venv / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if litellm.exists() and marker.exists() and marker.read_text() == wanted:
        return litellm
    python = shutil.which("python3.11") or sys.executable  # LiteLLM's wheels and ours: 3.11
    log(f"creating {venv} with {' '.join(REQUIREMENTS)} (once; a few minutes) ...")
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        (venv / ".gitignore").write_text("*\n")  # never committed, whatever the repository's .gitignore says
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return litellm


def write_config(path: Path, upstream: str, model: str, api_key: str) -> Path:
    path.write_text(CONFIG.format(model_name=MODEL_NAME, model=model, upstream=upstream, api_key=api_key,
                                  master_key=MASTER_KEY))
    return path


def environment() -> dict[str, str]:
    """A clean environment: a DATABASE_URL or REDIS_URL meant for Flywheel would turn on LiteLLM's own."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",  # no .env file loading
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # the packaged cost map, not a fetch at startup
        "DISABLE_ADMIN_UI": "True",
        "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
        "NO_PROXY": "*",
    })
    return env


def start(port: int, upstream: str, scratch: Path, *, model: str = "stub-model",
          api_key: str = "sk-upstream-secret", log=print) -> subprocess.Popen:
    """`litellm --config ... --port PORT` in its own process (not waited for: poll READY_PATH)."""
    litellm = ensure_venv(log=log)
    config = write_config(scratch / "litellm.yaml", upstream, model, api_key)
    # Its output goes to `litellm.log` beside the config (a pipe nobody reads would fill and block it).
    with (scratch / "litellm.log").open("w") as out:
        return subprocess.Popen([str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port",
                                 str(port), "--num_workers", "1"],
                                env=environment(), cwd=scratch, stdout=out, stderr=subprocess.STDOUT)


READY_PATH = "/health/liveliness"  # answers without calling the upstream


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="the upstream's base URL, e.g. http://127.0.0.1:9000/v1")
    p.add_argument("--port", type=int, default=4000)
    p.add_argument("--scratch", default=".", help="where the config is written")
    args = p.parse_args()
    proc = start(args.port, args.upstream, Path(args.scratch).resolve())
    print(f"LiteLLM proxy (pid {proc.pid}) on http://127.0.0.1:{args.port}, key {MASTER_KEY}", flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()


if __name__ == "__main__":
    main()
