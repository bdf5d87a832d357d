"""The model card written beside every version (`model_card.md`)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, StrictUndefined

_TEMPLATE = """\
# {{ family.name }} v{{ version }}

{{ family.description or "A binary classifier trained by Flywheel." }}

## Intended use

{{ family.intended_use or "Not stated by the plugin that declares this family." }}

## Data

- Rows: {{ metrics.rows.train }} train, {{ metrics.rows.valid }} validation (early stopping), \
{{ metrics.rows.test }} test; {{ metrics.rows.positives }} positive labels in all.
- Split: {{ info.split.kind }}{% if info.split.get("column") %} by the plugin (column `{{ info.split.column }}`: \
training, validation and test rows as the notes below say){% elif info.split.time_column %} \
on `{{ info.split.time_column }}` \
(the newest rows are held out){% else %} (seed {{ info.split.seed }}){% endif %}, \
holdout fraction {{ info.split.holdout_fraction }}.
- Label: `{{ family.label }}`. Data hash (SHA-256 of features and labels): `{{ info.data_sha256 }}`.
{% for note in (info.get("data") or {}).get("notes", []) %}- {{ note }}
{% endfor %}
## Features (ONNX input order)

| # | feature | type | nullable |
|---|---------|------|----------|
{% for f in features %}| {{ loop.index0 }} | `{{ f.name }}` | {{ f.type }} | {{ "yes" if f.nullable else "no" }} |
{% endfor %}
## Metrics (test split)

| metric | value |
|--------|-------|
{% for name, value in scalar_metrics %}| {{ name }} | {{ value }} |
{% endfor %}
Largest feature importances (gain):
{%- for f in metrics.feature_importance[:5] %} `{{ f.feature }}`{{ "," if not loop.last }}{% endfor %}.

ONNX and LightGBM agree on every test row's margin (log-odds) within \
{{ "%.1e"|format(metrics.parity_max_abs_diff) }}; scores are the margin's sigmoid in float64.

## Limits

{{ family.limitations or "Not stated by the plugin that declares this family." }}
The model was checked only on the test split above; scores drift as the data does.

## Provenance

Trained by Flywheel {{ info.flywheel }} (git {{ info.git_revision or "unknown" }}) with \
{% for lib, v in info.libraries.items() %}{{ lib }} {{ v }}{{ ", " if not loop.last }}{% endfor %}.
"""

_env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)  # noqa: S701 - Markdown
_card = _env.from_string(_TEMPLATE)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def render_card(family, version: int, spec, metrics: dict[str, Any], info: dict[str, Any]) -> str:
    scalars = [(k, _fmt(v)) for k, v in metrics.items() if isinstance(v, (int, float)) or v is None]
    return _card.render(family=family, version=version, features=spec.describe(), metrics=metrics,
                        info=info, scalar_metrics=scalars)
