"""Checking a run spec against what it names, with the field at fault.

The shape (types, bounds, LightGBM's allow-listed parameters) is the Struct's
to check when the spec is decoded (`$.model_params.num_leaves`); this module
checks what only the database knows: that the versions exist for this
tenant and every feature's columns exist in the dataset with a usable type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from flywheel.plugins.credit import catalog, datasets
from flywheel.plugins.credit.contracts import DatasetVersionRead, FeatureSetVersionRead, RunSpec
from flywheel.plugins.credit.transforms import RULES
from flywheel.server.plugin_api import InvalidInput, NotFound


@dataclass(frozen=True)
class Checked:
    spec: RunSpec
    dataset: DatasetVersionRead
    feature_set: FeatureSetVersionRead


def decode_spec(value: Any) -> RunSpec:
    """A spec from decoded JSON or YAML, or InvalidInput naming the field (`$.model_params.num_leaves`)."""
    try:
        return msgspec.convert(value, RunSpec)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else "$"
        raise InvalidInput(message.split(" - at `")[0], field=field) from None


async def check(db, tenant_id: UUID, spec: RunSpec) -> Checked:
    try:
        ds = await datasets.get_version(db, tenant_id, spec.dataset_version_id)
    except NotFound:
        raise InvalidInput("no dataset version with this id", field="$.dataset_version_id",
                           code="unknown_version") from None
    try:
        fs = await catalog.get_set_version(db, tenant_id, spec.feature_set_version_id)
    except NotFound:
        raise InvalidInput("no feature set version with this id", field="$.feature_set_version_id",
                           code="unknown_version") from None
    kinds = {c.name: c.type for c in ds.profile.columns}
    for i, f in enumerate(fs.features):
        accepted = RULES[f.transform][2]
        for column in f.source_columns:
            where = f"$.feature_set_version_id (feature {f.name!r}, features[{i}])"
            if column not in kinds:
                raise InvalidInput(f"{where}: the dataset has no column {column!r}", field="$.feature_set_version_id",
                                   code="missing_column")
            if column == ds.target:
                raise InvalidInput(f"{where}: {column!r} is the target; a feature cannot read it",
                                   field="$.feature_set_version_id", code="target_leak")
            if kinds[column] not in accepted:
                raise InvalidInput(f"{where}: column {column!r} is {kinds[column]}; {f.transform} takes "
                                   f"{' or '.join(sorted(accepted))}", field="$.feature_set_version_id",
                                   code="wrong_type")
    _check_split(spec, ds, kinds)
    return Checked(spec, ds, fs)


def _check_split(spec: RunSpec, ds: DatasetVersionRead, kinds: dict[str, str]) -> None:
    split = spec.split_policy
    if split.kind == "time" and ds.time_column is None:
        raise InvalidInput("a time split needs a dataset uploaded with a time column", field="$.split_policy.kind")
    if split.kind == "column":
        if split.column is None:
            raise InvalidInput("a column split names its column", field="$.split_policy.column")
        if split.column not in kinds:
            raise InvalidInput(f"the dataset has no column {split.column!r}", field="$.split_policy.column")
