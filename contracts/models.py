"""Model families a plugin declares through `register_model_families`."""

from __future__ import annotations

from typing import Any, Callable

import msgspec


class ModelFamily(msgspec.Struct, kw_only=True):
    """A kind of model a plugin trains and serves.

    `features` is a Struct whose fields, in order, are the model's inputs (ONNX
    input order always follows it); `label` names the target column;
    `load_training_data` is an async callable returning an Arrow table or a
    Parquet data set in the object store.
    """

    name: str
    features: type[msgspec.Struct]
    label: str
    params: dict[str, Any] = {}
    primary_metric: str = "roc_auc"
    load_training_data: Callable[..., Any] | None = None
    description: str = ""
