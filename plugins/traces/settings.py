"""The traces plugin's settings, from its own environment variables (docs/traces.md).

The judge's endpoint is an operator's choice (never a tenant's), read when a
judging job runs, so a worker picks up a change on its next job.
"""

from __future__ import annotations

import os
from typing import Annotated

import msgspec

MiB = 1024 * 1024


class TracesSettings(msgspec.Struct, frozen=True, kw_only=True):
    judge_url: str | None = None  # an OpenAI-compatible base URL (".../v1"); None: the deterministic judge
    judge_model: str = "gpt-4o-mini"
    judge_api_key: str | None = None
    judge_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    judge_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0
    qa_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 300.0
    qa_memory_bytes: Annotated[int, msgspec.Meta(ge=32 * MiB)] = 1024 * MiB
    workspace_max_bytes: Annotated[int, msgspec.Meta(ge=MiB)] = 256 * MiB


ENV = {
    "judge_url": "FLYWHEEL_TRACES_JUDGE_URL",
    "judge_model": "FLYWHEEL_TRACES_JUDGE_MODEL",
    "judge_api_key": "FLYWHEEL_TRACES_JUDGE_API_KEY",
    "judge_retries": "FLYWHEEL_TRACES_JUDGE_RETRIES",
    "judge_timeout_s": "FLYWHEEL_TRACES_JUDGE_TIMEOUT_S",
    "qa_timeout_s": "FLYWHEEL_TRACES_QA_TIMEOUT_S",
    "qa_memory_bytes": "FLYWHEEL_TRACES_QA_MEMORY_BYTES",
    "workspace_max_bytes": "FLYWHEEL_TRACES_WORKSPACE_MAX_BYTES",
}


def load(environ: dict[str, str] | None = None) -> TracesSettings:
    """Settings from the environment; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    raw = {field: env[var] for field, var in ENV.items() if env.get(var)}
    try:
        settings = msgspec.convert(raw, TracesSettings, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rpartition("$.")[2].rstrip("`")
        raise ValueError(f"{ENV.get(field, 'FLYWHEEL_TRACES_*')}: {exc}") from None
    if settings.judge_url and not settings.judge_url.startswith(("http://", "https://")):
        raise ValueError(f"{ENV['judge_url']}: an http:// or https:// URL")
    return settings
