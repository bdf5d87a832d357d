"""The request bodies of routes that read raw bytes, for the OpenAPI document.

Ingestion and scoring decode their bodies themselves (no Litestar body
parameter: a decode straight into Structs is their hot path), so Litestar
sees no body to document. These functions describe what those handlers
accept, from the same msgspec Structs they decode into, so the document and
the validation cannot drift apart. Each returns a `RequestBody` and the
component schemas it refers to (`#/components/schemas/...`).
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, RequestBody

from flywheel.contracts.events import GenericEvent
from flywheel.server.ingest.decode import CONTENT_TYPES, JSON, MSGPACK, NDJSON, BatchDecoder
from flywheel.server.models.features import MAX_BATCH_ROWS, _batch_type, feature_spec

# Schemas come from the very types the handlers decode into (`_batch_type` included): the
# document cannot promise more or less than validation accepts.
REF = "#/components/schemas/{name}"
MAX_EVENTS = inspect.signature(BatchDecoder).parameters["max_events"].default
Body = tuple[RequestBody, dict[str, Any]]


def _media_types(kind: str) -> list[str]:
    return [name for name, canonical in CONTENT_TYPES.items() if canonical == kind]


def events(state: Any) -> Body:
    """`POST /v1/events`: a JSON or msgpack array of events, or NDJSON (one event per line)."""
    types = [cls for _, cls in state.contributions.event_types.values()]
    union: Any = functools.reduce(operator.or_, types)
    (batch,), components = msgspec.json.schema_components([list[union]], ref_template=REF)
    components["EventBatch"] = batch | {
        "minItems": 0, "maxItems": MAX_EVENTS,
        "description": f"At most {MAX_EVENTS:,} events, each an object of a registered type (`type`)."}
    example = _event_example()
    ref = {"$ref": REF.format(name="EventBatch")}
    content = {media: OpenAPIMediaType(schema=ref, examples={"one": {"summary": "one event", "value": [example]}})
               for media in _media_types(JSON)}
    # No example here: a fuzzer (schemathesis) sends every example it finds, and has no NDJSON encoder.
    lines = {"type": "string", "description": (
        "Events as in `EventBatch`, one JSON object per line (blank lines are skipped; `index` in the "
        'answer is the line number - 1), e.g. `{"type": "core.generic", "event_id": "...", "ts": "..."}`.')}
    content |= {media: OpenAPIMediaType(schema=lines) for media in _media_types(NDJSON)}
    content |= {media: OpenAPIMediaType(schema=ref) for media in _media_types(MSGPACK)}
    return RequestBody(required=True, content=content, description=(
        "A batch of events: a JSON array, NDJSON (one event per line) or a msgpack array, optionally "
        "gzip-compressed (`Content-Encoding: gzip`). Each event is checked on its own: a bad one is "
        "rejected in the answer, the others are stored.")), components


def _event_example() -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)  # events must be recent: an old example would be refused
    event = GenericEvent(event_id=UUID("0b5c7a4e-2f3c-4c1e-9a3e-7d2f1b6c8a90"), ts=now, subject_id="user-42",
                         attributes={"page": "/pricing", "ms": 1834})
    return msgspec.to_builtins(event)


def _families(state: Any) -> list[tuple[str, Any, str]]:
    """(family name, its FeatureSpec, the plugin's name for its features Struct)."""
    return [(name, feature_spec(family.features), family.features.__name__)
            for name, (_, family) in sorted(state.contributions.model_families.items())]


def _row_example(spec: Any) -> dict[str, Any]:
    """A row with a plausible value of each feature's type."""
    values = {"float": 1.5, "int": 3, "bool": True, "category": "a"}
    return {name: values[kind] for name, kind in zip(spec.names, spec.kinds) if kind in values}


# A family with no fixed features (each version trained on features of its own choosing) is
# scored with the active version's: any object of named values, checked by the server.
_ANY_ROW = {"type": "object", "additionalProperties": {"type": ["number", "integer", "boolean", "string", "null"]}}


def _row_components(state: Any, batch: bool) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Each family's row (or batch) schema, their components, and an example per family."""
    families = _families(state)
    fixed = [(family, spec.strict, plain) for family, spec, plain in families if spec.names]
    types = [_batch_type(strict) if batch else strict for _, strict, _ in fixed]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    # The strict copies are named after the plugin's Struct ("NoteFeaturesStrict" -> "NoteFeatures").
    renames = {}
    for family, strict, plain in fixed:
        renames |= {strict.__name__: plain, f"{strict.__name__}Batch": f"{plain}Batch"}
        components[strict.__name__] |= {"title": plain, "description": (
            f"A row of `{family}`'s features: every feature the model takes, by name, and no other.")}
        if batch:
            components[f"{strict.__name__}Batch"] |= {"title": f"{plain}Batch", "description": (
                f"1 to {MAX_BATCH_ROWS:,} rows of `{family}`'s features.")}
            components[f"{strict.__name__}Batch"]["properties"]["rows"] |= {"minItems": 1,
                                                                            "maxItems": MAX_BATCH_ROWS}
    components = rename_refs({renames.get(k, k): v for k, v in components.items()}, renames)
    schemas = rename_refs(list(schemas), renames)
    for family, spec, _ in families:
        if not spec.names:
            row = _ANY_ROW | {"title": f"A row of {family}",
                              "description": f"A row of `{family}`'s active version's features, by name."}
            rows = {"type": "array", "items": row, "minItems": 1, "maxItems": MAX_BATCH_ROWS}
            schemas.append({"type": "object", "title": f"Rows of {family}", "properties": {"rows": rows},
                            "required": ["rows"], "additionalProperties": False} if batch else row)
    examples = {family: {"summary": f"a row of {family}",
                         "value": {"rows": [_row_example(spec)]} if batch else _row_example(spec)}
                for family, spec, _ in families if spec.names}
    return schemas, components, examples


def _any_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    if not schemas:  # no plugin declares a model family: any object, answered 404
        return {"type": "object", "description": "No model family is registered."}
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def score_row(state: Any) -> Body:
    """`POST /v1/models/{family}/score`: one JSON object of the family's features."""
    schemas, components, examples = _row_components(state, batch=False)
    schema = _any_of(schemas)
    return RequestBody(required=True, description=(
        "One row: a JSON object of the family's features by name (`GET /v1/models` lists them). "
        "Which object depends on `{family}`; one schema per family."),
        content={JSON: OpenAPIMediaType(schema=schema, examples=examples)}), components


def score_batch(state: Any) -> Body:
    """`POST /v1/models/{family}/score_batch`: `{"rows": [...]}` as JSON or msgpack."""
    schemas, components, examples = _row_components(state, batch=True)
    schema = _any_of(schemas)
    content = {JSON: OpenAPIMediaType(schema=schema, examples=examples)}
    content |= {media: OpenAPIMediaType(schema=schema) for media in _media_types(MSGPACK)}
    return RequestBody(required=True, description=(
        f'`{{"rows": [...]}}`: 1 to {MAX_BATCH_ROWS:,} rows of the family\'s features, as JSON or msgpack.'),
        content=content), components


BODIES: dict[str, Callable[[Any], Body]] = {"events": events, "score_row": score_row, "score_batch": score_batch}


# Media types a table upload may be sent as; the handler tells the format from the bytes themselves.
TABLE_MEDIA_TYPES = ("text/csv", "application/gzip", "application/vnd.apache.parquet", "application/octet-stream")


def tabular_file(state: Any) -> Body:
    """A table file as the raw body (`opt={"openapi_body": "tabular_file"}`): CSV, gzipped CSV or Parquet."""
    binary = {"type": "string", "format": "binary"}
    return RequestBody(required=True, content={media: OpenAPIMediaType(schema=binary) for media in TABLE_MEDIA_TYPES},
                       description=(
        "The file's bytes, streamed: CSV with a header row (optionally gzip-compressed) or Parquet. The "
        "format is told from the bytes (gzip and Parquet magic numbers), not the Content-Type, so any of "
        "these, or none, will do.")), {}


BODIES["tabular_file"] = tabular_file


def rename_refs(value: Any, renames: dict[str, str]) -> Any:
    """`value` with each `#/components/schemas/<old>` reference pointing at its new name."""
    if isinstance(value, dict):
        return {k: _renamed(v, renames) if k == "$ref" else rename_refs(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [rename_refs(v, renames) for v in value]
    if isinstance(value, str):
        return _renamed(value, renames)
    return value


def _renamed(ref: Any, renames: dict[str, str]) -> Any:
    prefix = REF.format(name="")
    if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix):] in renames:
        return prefix + renames[ref[len(prefix):]]
    return ref


def merge_components(schemas: dict[str, Any], components: dict[str, Any], request_body: RequestBody) -> RequestBody:
    """Add `components` to the document's `schemas`; a name already used for another schema gets a suffix."""
    renames: dict[str, str] = {}
    for name, schema in components.items():
        existing = schemas.get(name)
        if existing is None or _as_dict(existing) == schema:
            continue
        new, n = f"{name}Body", 2
        while new in schemas and _as_dict(schemas[new]) != schema:
            new, n = f"{name}Body{n}", n + 1
        renames[name] = new
    for name, schema in rename_refs(components, renames).items():
        if name in renames:  # generators name their classes by title: two "Comparison"s would clash
            schema = schema | {"title": renames[name]}
        schemas.setdefault(renames.get(name, name), schema)
    for media in request_body.content.values():
        media.schema = rename_refs(media.schema, renames)
    return request_body


def _as_dict(schema: Any) -> Any:
    return schema.to_schema() if hasattr(schema, "to_schema") else schema
