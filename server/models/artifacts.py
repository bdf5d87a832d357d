"""A trained version's files in the tenant's object store, under `models/{family}/{version}/`."""

from __future__ import annotations

from typing import Any

import msgspec

from flywheel.contracts.models import ModelFamily
from flywheel.server.models.card import render_card
from flywheel.server.models.features import FeatureSpec


def _json(value: Any) -> bytes:
    return msgspec.json.format(msgspec.json.encode(value))


async def write_artifacts(store: Any, family: ModelFamily, spec: FeatureSpec, version: int, onnx_bytes: bytes,
                          model_text: str, metrics: dict, info: dict) -> None:
    """model.onnx, model.txt (LightGBM), metrics.json, feature_schema.json, version.json, model_card.md.

    A retried job rewrites the same keys with the same content: writing is idempotent.
    """
    prefix = f"models/{family.name}/{version}/"
    files = [
        ("model.onnx", onnx_bytes, "application/octet-stream"),
        ("model.txt", model_text.encode(), "text/plain"),
        ("metrics.json", _json(metrics), "application/json"),
        ("feature_schema.json", _json(spec.to_json()), "application/json"),
        ("version.json", _json(info), "application/json"),
        ("model_card.md", render_card(family, version, spec, metrics, info).encode(), "text/markdown"),
    ]
    for name, data, content_type in files:
        await store.put(prefix + name, data, content_type=content_type)
