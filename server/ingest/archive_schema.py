"""Typed Parquet columns for one event type, from its msgspec Struct.

Each event type's archive table has the envelope columns (`event_id`, `ts`,
`subject_id`, `session_id`, `received_at`), one column per field of its
Struct, and `body`, the event as stored (JSON, PII scrubbed). A field's Arrow
type comes from `msgspec.inspect`: scalars to scalars, nested Structs to
structs, lists to lists, `dict[str, X]` to maps. Free-form fields
(`attributes: dict[str, Any]`, or any `Any`) have no schema in the Struct, so
their shape is inferred from the day's values (`Seen`): the union of the keys,
one Arrow type per key, ints widened to floats when both occur, and text where
the values disagree (`Text`); a free-form field with no value on the day is
left out. An inferred key's type may differ from day to day (an int one day,
mixed the next): read several days with `union_by_name=true` (DuckDB) or
`mergeSchema` (Spark). `type` and `dt` are not columns: they are
the hive partition folders the files live in.

A `Shape` converts a value decoded from the stored JSON into what pyarrow
takes for its Arrow type, or None when the value does not fit (an event
stored under an older version of its Struct, say): the column is then null
and `body` still has the value.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi
import pyarrow as pa

ENVELOPE = (
    ("event_id", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("subject_id", pa.string()),
    ("session_id", pa.string()),
    ("received_at", pa.timestamp("us", tz="UTC")),
)
# Column names a Struct field cannot take: the envelope, `body`, and the partition keys.
RESERVED = frozenset({"received_at", "body", "type", "dt"})
MAX_DEPTH = 8  # nesting beyond this (or a recursive Struct) is kept as JSON text
MAX_KEYS = 256  # a free-form object with more distinct keys is a map of data, not a schema: JSON text
INT64 = 2**63
EXACT_FLOAT = 2**53  # ints up to here widen to float64 without loss


# -- shapes: an Arrow type and the conversion into it ------------------------------------------


class Shape:
    arrow: pa.DataType = pa.string()

    def convert(self, value: Any) -> Any:
        raise NotImplementedError


# The converters test `type(v) is ...`: values come from a JSON decoder, so there are no
# subclasses to allow for, and it is ~3x faster than isinstance with a union per call.


class Str(Shape):
    def convert(self, value):
        return value if type(value) is str else None


class Int(Shape):
    arrow = pa.int64()

    def convert(self, value):
        return value if type(value) is int and -INT64 <= value < INT64 else None


class Float(Shape):
    arrow = pa.float64()

    def convert(self, value):
        kind = type(value)
        return value if kind is float else float(value) if kind is int else None


class Bool(Shape):
    arrow = pa.bool_()

    def convert(self, value):
        return value if type(value) is bool else None


class Json(Shape):
    """Anything, as its JSON text (`'"a"'`, `'1'`, `'{"k": 2}'`): the fallback when no one type fits."""

    def convert(self, value):
        return None if value is None else msgspec.json.encode(value).decode()


class Text(Shape):
    """An inferred key whose values disagree on their type: strings as they are, anything else as
    JSON text (`'a'`, `'1'`, `'true'`, `'{"k": 2}'`), which is also what a reader's cast to text
    gives for a day on which the key had one type, so days read together agree."""

    def convert(self, value):
        if value is None or isinstance(value, str):
            return value
        return msgspec.json.encode(value).decode()


class Timestamp(Shape):
    def __init__(self, tz: bool = True) -> None:
        self.tz = tz
        self.arrow = pa.timestamp("us", tz="UTC" if tz else None)

    def convert(self, value):
        try:
            ts = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return None
        if not self.tz:
            return ts.replace(tzinfo=None)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class Date(Shape):
    arrow = pa.date32()

    def convert(self, value):
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            return None


class List(Shape):
    def __init__(self, item: Shape) -> None:
        self.item = item
        self.arrow = pa.list_(item.arrow)

    def convert(self, value):
        return [self.item.convert(v) for v in value] if isinstance(value, list) else None


class Map(Shape):
    def __init__(self, value: Shape) -> None:
        self.value = value
        self.arrow = pa.map_(pa.string(), value.arrow)

    def convert(self, value):
        return [(k, self.value.convert(v)) for k, v in value.items()] if isinstance(value, dict) else None


class Struct(Shape):
    def __init__(self, fields: dict[str, Shape]) -> None:
        self.fields = fields
        self.arrow = pa.struct([(k, s.arrow) for k, s in fields.items()])

    def convert(self, value):
        if not isinstance(value, dict):
            return None
        return {k: s.convert(value.get(k)) for k, s in self.fields.items()}


def struct_or_json(fields: dict[str, Shape]) -> Shape:
    """A struct, or JSON text when it would have no fields (Parquet cannot store an empty struct)."""
    return Struct(fields) if fields else Json()


class FreeForm(Shape):
    """A field with no schema in its Struct; replaced by the shape inferred from the day's values."""


# -- msgspec types to shapes ---------------------------------------------------------------------

_SCALARS: dict[type, type[Shape]] = {
    mi.StrType: Str, mi.UUIDType: Str, mi.DecimalType: Str, mi.TimeType: Str, mi.TimeDeltaType: Str,
    mi.BytesType: Str, mi.ByteArrayType: Str, mi.IntType: Int, mi.FloatType: Float, mi.BoolType: Bool,
    mi.DateType: Date,
}
_SEQUENCES = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)


def shape_of(t: mi.Type, depth: int = 0) -> Shape:
    """The Shape of a field of type `t` (see the module docstring)."""
    if depth > MAX_DEPTH:
        return Json()
    if type(t) in _SCALARS:
        return _SCALARS[type(t)]()
    if isinstance(t, mi.DateTimeType):
        return Timestamp(tz=t.tz is not False)
    if isinstance(t, mi.LiteralType | mi.EnumType):
        values = t.values if isinstance(t, mi.LiteralType) else [m.value for m in t.cls]
        return _scalar_of_values(values)
    if isinstance(t, mi.AnyType):
        return FreeForm() if depth == 0 else Json()
    if isinstance(t, mi.UnionType):
        return _union_shape([u for u in t.types if not isinstance(u, mi.NoneType)], depth)
    if isinstance(t, _SEQUENCES):
        return List(shape_of(t.item_type, depth + 1))
    if isinstance(t, mi.DictType):
        if not isinstance(t.key_type, mi.StrType):
            return Json()
        if isinstance(t.value_type, mi.AnyType):
            return FreeForm() if depth == 0 else Json()
        return Map(shape_of(t.value_type, depth + 1))
    if isinstance(t, mi.StructType):
        return struct_or_json(_struct_fields(t, depth))
    return Json()  # fixed tuples, dataclasses, custom and extension types


def _scalar_of_values(values) -> Shape:
    if all(isinstance(v, str) for v in values):
        return Str()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return Int()
    return Json()


def _struct_fields(t: mi.StructType, depth: int) -> dict[str, Shape]:
    fields: dict[str, Shape] = {t.tag_field: Str()} if t.tag_field else {}
    for f in t.fields:
        fields[f.encode_name] = shape_of(f.type, depth + 1)
    return fields


def _union_shape(types: list[mi.Type], depth: int) -> Shape:
    if len(types) == 1:
        return shape_of(types[0], depth)
    if all(isinstance(u, mi.IntType | mi.FloatType) for u in types):
        return Float()
    if all(isinstance(u, mi.StructType) for u in types):
        # A tagged union (`Thumbs | Rating | ...`): one struct with the tag and every member's
        # fields; a name whose members disagree on its type becomes JSON text.
        merged: dict[str, Shape] = {}
        for u in types:
            for name, shape in _struct_fields(u, depth).items():
                known = merged.get(name)
                merged[name] = shape if known is None or known.arrow == shape.arrow else Json()
        return struct_or_json(merged)
    return Json()


# -- inferring free-form values ------------------------------------------------------------------


class Seen:
    """What the values of one free-form field looked like, merged value by value."""

    __slots__ = ("kinds", "keys", "items")

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.keys: dict[str, Seen] = {}
        self.items: Seen | None = None

    def add(self, value: Any, depth: int = 0) -> None:
        if value is None:
            return
        kind = _kind(value)
        if depth > MAX_DEPTH:
            kind = "json"
        self.kinds.add(kind)
        if kind == "object" and "json" not in self.kinds:
            for k, v in value.items():
                self.keys.setdefault(k, Seen()).add(v, depth + 1)
            if len(self.keys) > MAX_KEYS:
                self.kinds.add("json")
                self.keys = {}
        elif kind == "list":
            self.items = self.items or Seen()
            for v in value:
                self.items.add(v, depth + 1)

    def shape(self) -> Shape | None:
        """The shape of the values seen; None when there is nothing to store (only nulls,
        or only objects with no usable keys), and the column is left out."""
        kinds = self.kinds
        if kinds and kinds <= {"int", "big"}:
            return Int()
        if kinds and kinds <= {"int", "float"}:
            return Float()
        if kinds == {"bool"}:
            return Bool()
        if kinds == {"str"}:
            return Str()
        if kinds == {"object"}:
            usable = _usable(self.keys)
            fields = {k: seen.shape() for k, seen in sorted(self.keys.items()) if k in usable}
            return Struct({k: shape for k, shape in fields.items() if shape is not None}) if any(
                fields.values()) else None
        if kinds == {"list"}:
            item = self.items.shape() if self.items else None
            return List(item or Str())
        return Text() if kinds else None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -EXACT_FLOAT <= value <= EXACT_FLOAT else "big" if -INT64 <= value < INT64 else "json"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else "json"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return "json"


def _usable(keys: dict[str, Seen]) -> set[str]:
    """Keys that can be struct fields: not empty, and not equal to another but for case
    (DuckDB, Spark and Trino match field names case-insensitively); the rest stay in `body`."""
    folded: dict[str, int] = {}
    for k in keys:
        folded[k.casefold()] = folded.get(k.casefold(), 0) + 1
    return {k for k in keys if k and folded[k.casefold()] == 1}


# -- one event type's table ----------------------------------------------------------------------


class EventTable:
    """The columns of one event type's archive files."""

    def __init__(self, event_type: type[msgspec.Struct]) -> None:
        info = mi.type_info(event_type)
        envelope = {name for name, _ in ENVELOPE}
        self.fields: dict[str, Shape] = {}  # JSON key -> shape, in the Struct's order
        for f in info.fields:
            if f.encode_name not in envelope:
                self.fields[f.encode_name] = shape_of(f.type)
        self.free = tuple(k for k, s in self.fields.items() if isinstance(s, FreeForm))
        # Decodes only the free-form fields of a body (the rest is skipped unparsed).
        view = msgspec.defstruct("FreeView", [(k, Any, None) for k in self.free])
        self.free_decoder = msgspec.json.Decoder(view)

    def observe(self, seen: dict[str, Seen], body: bytes | str) -> None:
        """Merge one stored body's free-form values into `seen`."""
        try:
            view = self.free_decoder.decode(body)
        except msgspec.ValidationError:  # a body that is not an object: nothing to infer from
            return
        for k in self.free:
            seen.setdefault(k, Seen()).add(getattr(view, k))

    def columns(self, seen: dict[str, Seen]) -> list[Column]:
        """The columns after the envelope, free-form ones shaped as `seen` on the day."""
        out = []
        for key, shape in self.fields.items():
            if isinstance(shape, FreeForm):
                shape = seen[key].shape() if key in seen else None
                if shape is None:
                    continue
            out.append(Column(f"{key}_field" if key in RESERVED else key, key, shape))
        return out


class Column(NamedTuple):
    name: str  # in the Parquet file
    key: str  # in the event's JSON
    shape: Shape


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([*ENVELOPE, *((c.name, c.shape.arrow) for c in columns), ("body", pa.string())])
