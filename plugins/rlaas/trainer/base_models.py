"""Which base models a tenant may fine-tune: the operator's allow-lists.

A base model is named by a tenant and opened by transformers on the worker,
so neither kind is taken as it is:

- a **local path** (absolute) must be a folder inside one of
  `FLYWHEEL_RLAAS_BASE_MODEL_DIRS` (comma-separated; default
  `<data_dir>/base-models`) once symlinks and `..` are resolved, so a
  tenant cannot point the trainer at any other file of the worker;
- a **hub id** (`org/name`) must match one of the shell-style patterns of
  `FLYWHEEL_RLAAS_HUB_MODELS` (comma-separated, e.g.
  `Qwen/Qwen2.5-*,HuggingFaceTB/SmolLM2-*`; default: none).

Either way the model is loaded with `trust_remote_code=False` and from
safetensors only (train.py): no code and no pickle of a model's author runs.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import msgspec

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
ENV_DIRS = "FLYWHEEL_RLAAS_BASE_MODEL_DIRS"
ENV_HUB = "FLYWHEEL_RLAAS_HUB_MODELS"
_EXTRAS_KEY = "rlaas.base_models"


class BaseModels(msgspec.Struct, frozen=True):
    dirs: list[str]
    hub_patterns: list[str]


def allowed_base_models(state: Any) -> BaseModels:
    """This process's allow-lists, read from the environment once."""
    found = state.extras.get(_EXTRAS_KEY)
    if found is None:
        default = str(Path(state.settings.data_path) / "base-models")
        dirs = [d.strip() for d in os.environ.get(ENV_DIRS, default).split(",") if d.strip()]
        patterns = [p.strip() for p in os.environ.get(ENV_HUB, "").split(",") if p.strip()]
        found = state.extras[_EXTRAS_KEY] = BaseModels(dirs=[str(Path(d).resolve()) for d in dirs],
                                                       hub_patterns=patterns)
    return found


def base_model_problem(allowed: BaseModels, name: str) -> str | None:
    """Why a tenant may not train on `name`, or None when it may."""
    if name.startswith("/"):
        return _local_problem(allowed, name)
    if "\\" in name or not HUB_ID.match(name) or ".." in name:
        return "a base model is an absolute path or a hub id such as `org/model`"
    if not any(fnmatchcase(name, pattern) for pattern in allowed.hub_patterns):
        return f"{name} is not in {ENV_HUB}"
    return None


def _local_problem(allowed: BaseModels, name: str) -> str | None:
    if "\x00" in name:
        return "a path has no NUL character"
    path = Path(name).resolve()
    inside = [d for d in allowed.dirs if path.is_relative_to(d) and path != Path(d)]
    if not inside:
        return f"a local base model is a folder inside {ENV_DIRS} ({', '.join(allowed.dirs) or 'none set'})"
    if not (path / "config.json").is_file():
        return f"{name} holds no model (no config.json)"
    return None


def resolved(name: str) -> str:
    """What to hand `from_pretrained`: a local path with its symlinks resolved (the one that was checked)."""
    return str(Path(name).resolve()) if name.startswith("/") else name
