"""A family's features: their order and types, and rows checked into matrices.

The feature Struct a plugin declares is the single source of truth: its field
order is the ONNX input column order, its types decide what a scoring request
may send. A family declaring `DynamicFeatures` has its features chosen per
training instead (`from_table`), and every version is served with the spec
stored beside it (`from_json`).

Categoricals (`str` features) reach LightGBM and ONNX as integer codes: a
value's position in the version's `categories`, fitted on the training table
(most frequent first, at most MAX_CATEGORIES); anything else is NaN, which
both LightGBM and ONNX send down a categorical split's "not in the set" side,
as they do a missing value, so parity holds on this path (measured: 2e-6).

Checking has two paths. The fast one decodes the request straight
into a strict copy of the Struct (unknown fields forbidden) and fails on the
first problem; only then does the slow one walk the payload again to name
*every* missing, extra and mistyped feature in one error.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.contracts.errors import ErrorDetail
from flywheel.contracts.models import DynamicFeatures, FeatureInfo
from flywheel.server.errors import ApiError, InvalidInput, from_msgspec

_KINDS = {msgspec.inspect.FloatType: "float", msgspec.inspect.IntType: "int", msgspec.inspect.BoolType: "bool",
          msgspec.inspect.StrType: "category"}
_PYTHON = {"float": float, "int": int, "bool": bool, "category": str}
MAX_BATCH_ROWS = 10_000
# Categories kept per feature: LightGBM's own limit on what one split considers is far lower
# (max_cat_threshold 32), and the codes ride in the version's feature schema.
MAX_CATEGORIES = 1000


class FeatureSchemaError(ValueError):
    pass


@dataclass(frozen=True)
class FeatureSpec:
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    nullable: tuple[bool, ...]
    required: tuple[bool, ...]
    strict: type  # the Struct with unknown fields forbidden, for the fast path
    decoder: Any  # a JSON decoder into `strict`, built once
    # Per feature: a categorical's values in code order, else None. Empty: no categoricals fitted.
    categories: tuple[tuple[str, ...] | None, ...] = ()

    @classmethod
    def from_struct(cls, struct: type[msgspec.Struct], *, where: str = "") -> FeatureSpec:
        info = msgspec.inspect.type_info(struct)
        if not isinstance(info, msgspec.inspect.StructType):
            raise FeatureSchemaError(f"{where}features must be a msgspec.Struct, got {struct!r}")
        names, kinds, nullable, required, fields = [], [], [], [], []
        for f in info.fields:
            t, opt = f.type, False
            if isinstance(t, msgspec.inspect.UnionType):
                rest = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
                opt = len(rest) < len(t.types)
                t = rest[0] if len(rest) == 1 else t
            kind = _KINDS.get(type(t))
            if kind is None:
                raise FeatureSchemaError(
                    f"{where}feature {f.name!r} has type {f.type!r}; features must be float, int, bool or str "
                    "(a categorical), optionally | None")
            names.append(f.encode_name)
            kinds.append(kind)
            nullable.append(opt)
            required.append(f.required)
            ann = _PYTHON[kind] | None if opt else _PYTHON[kind]
            fields.append((f.encode_name, ann) if f.required else (f.encode_name, ann, f.default))
        if not names and struct is not DynamicFeatures:
            raise FeatureSchemaError(f"{where}features Struct has no fields")
        return cls._build(struct.__name__, names, kinds, nullable, required, fields)

    @classmethod
    def _build(cls, title: str, names, kinds, nullable, required, fields, categories=()) -> FeatureSpec:
        strict = msgspec.defstruct(f"{title}Strict", fields, forbid_unknown_fields=True, kw_only=True)
        return cls(tuple(names), tuple(kinds), tuple(nullable), tuple(required), strict,
                   msgspec.json.Decoder(strict), tuple(categories))

    @classmethod
    def from_infos(cls, infos: list[FeatureInfo], title: str = "VersionFeatures") -> FeatureSpec:
        """The spec a version was trained with (its stored feature schema): every feature
        required, each as nullable as it was in training."""
        fields = [(i.name, _PYTHON[i.type] | None if i.nullable else _PYTHON[i.type]) for i in infos]
        cats = [tuple(i.categories) if i.type == "category" else None for i in infos]
        return cls._build(title, [i.name for i in infos], [i.type for i in infos], [i.nullable for i in infos],
                          [True] * len(infos), fields, cats if any(c is not None for c in cats) else ())

    @classmethod
    def from_json(cls, stored: list[dict[str, Any]]) -> FeatureSpec:
        """`from_infos` of a version's `features` column (`to_json`'s output)."""
        return cls.from_infos(msgspec.convert(stored, list[FeatureInfo]))

    @classmethod
    def from_table(cls, table: pa.Table, names: list[str]) -> FeatureSpec:
        """A training's own features (`TrainingData.features`), typed by the table's columns."""
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise FeatureSchemaError(f"training data lacks feature columns: {', '.join(map(repr, missing))}")
        if len(set(names)) != len(names) or not names:
            raise FeatureSchemaError("TrainingData.features must name distinct columns, at least one")
        infos = [FeatureInfo(name=n, type=arrow_kind(table.schema.field(n).type, n), nullable=True,
                             categories=[] if arrow_kind(table.schema.field(n).type, n) == "category" else None)
                 for n in names]
        return cls.from_infos(infos, "TrainingFeatures")

    def fit_categories(self, table: pa.Table) -> FeatureSpec:
        """This spec with every categorical's values taken from the training table: most frequent first
        (ties by value), at most MAX_CATEGORIES; empty strings and nulls are missing, not a category."""
        if "category" not in self.kinds:
            return self
        infos = self.describe()
        for info in infos:
            if info.type == "category":
                counts = pc.value_counts(_as_strings(table.column(info.name))).to_pylist()
                pairs = sorted(((c["counts"], c["values"]) for c in counts if c["values"]), key=lambda x: (-x[0], x[1]))
                info.categories = [v for _, v in pairs[:MAX_CATEGORIES]]
        fitted = FeatureSpec.from_infos(infos)
        # Keep the family Struct's own decoder and required flags: only the codes are new.
        return dataclasses.replace(self, categories=fitted.categories)

    def codes(self, j: int, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Feature j's category codes as float32 (NaN: missing or not a trained category)."""
        cats = self.categories[j] if self.categories else None
        if cats is None:
            raise ValueError(f"categorical feature {self.names[j]!r} has no fitted categories")
        idx = pc.index_in(_as_strings(values), value_set=pa.array(cats, pa.string()))
        return idx.to_numpy(zero_copy_only=False).astype(np.float32)

    def category_of(self, j: int, code: float) -> str | None:
        cats = self.categories[j] if self.categories else None
        if cats is None or np.isnan(code) or not 0 <= int(code) < len(cats):
            return None
        return cats[int(code)]

    def table_matrix(self, table: pa.Table) -> np.ndarray:
        """float32 matrix of an Arrow table's feature columns, in feature order (nulls become NaN: missing).

        The one conversion training, batch scoring and plugins' jobs share, so
        a model sees its columns the same way wherever its rows come from.
        """
        present = set(table.column_names)  # a property that builds a new list at every read
        missing = [n for n in self.names if n not in present]
        if missing:
            raise ValueError(f"table lacks feature columns: {missing}")
        X = np.empty((table.num_rows, len(self.names)), dtype=np.float32)
        for j, name in enumerate(self.names):
            col = table.column(name).combine_chunks()
            if self.kinds[j] == "category":
                X[:, j] = self.codes(j, col)
                continue
            if pa.types.is_boolean(col.type):
                col = col.cast(pa.int8())
            X[:, j] = col.to_numpy(zero_copy_only=False)
        return X

    def describe(self) -> list[FeatureInfo]:
        cats = self.categories or (None,) * len(self.names)
        return [FeatureInfo(name=n, type=k, nullable=o, categories=None if c is None else list(c))
                for n, k, o, c in zip(self.names, self.kinds, self.nullable, cats)]

    def to_json(self) -> list[dict[str, Any]]:
        return msgspec.to_builtins(self.describe())

    # -- rows to matrices ------------------------------------------------------

    def matrix(self, rows: list[Any]) -> np.ndarray:
        """float32 matrix of strict-Struct rows (None becomes NaN: missing)."""
        astuple = msgspec.structs.astuple
        if "category" not in self.kinds:
            return np.array([astuple(r) for r in rows], dtype=np.float32)
        columns = list(zip(*(astuple(r) for r in rows))) if rows else [()] * len(self.names)
        X = np.empty((len(rows), len(self.names)), dtype=np.float32)
        for j, values in enumerate(columns):
            if self.kinds[j] == "category":
                X[:, j] = self.codes(j, pa.array(values, pa.string()))
            else:
                X[:, j] = np.array(values, dtype=np.float64)  # None becomes NaN
        return X

    def decode_one(self, body: bytes) -> np.ndarray:
        """One JSON object of named features -> a (1, n) matrix, or InvalidInput naming every problem."""
        try:
            row = self.decoder.decode(body)
        except msgspec.ValidationError:
            raise self.problems(_decode_any(body, dict), "$") from None
        except msgspec.DecodeError as exc:
            raise from_msgspec(exc) from None
        except UNDECODABLE as exc:
            raise undecodable(exc) from None
        return self.matrix([row])

    def decode_batch(self, body: bytes, msgpack: bool = False) -> np.ndarray:
        """`{"rows": [{...}, ...]}` as JSON or msgpack -> matrix, or InvalidInput naming every problem."""
        batch = _batch_type(self.strict)
        decode = msgspec.msgpack.decode if msgpack else msgspec.json.decode
        try:
            rows = decode(body, type=batch).rows
        except msgspec.ValidationError:
            value = _decode_any(body, dict, decode)
            if set(value) != {"rows"} or not isinstance(value["rows"], list):
                raise InvalidInput('expected an object {"rows": [...]} of feature objects', field="$.rows") from None
            return self.convert_rows(value["rows"])
        except msgspec.DecodeError as exc:
            raise from_msgspec(exc) from None
        except UNDECODABLE as exc:
            raise undecodable(exc) from None
        _check_count(len(rows), "$.rows")
        return self.matrix(rows)

    def convert_rows(self, rows: list[dict[str, Any]], prefix: str = "$.rows") -> np.ndarray:
        """Already-decoded rows (JSON or msgpack objects) -> matrix, or InvalidInput naming every problem."""
        _check_count(len(rows), prefix)
        try:
            typed = msgspec.convert(rows, list[self.strict])
        except msgspec.ValidationError:
            details: list[ErrorDetail] = []
            for i, row in enumerate(rows):
                details += self._row_problems(row, f"{prefix}[{i}]")
                if len(details) >= 100:
                    break
            raise _invalid(details) from None
        return self.matrix(typed)

    def problems(self, row: Any, path: str) -> InvalidInput:
        return _invalid(self._row_problems(row, path))

    def _row_problems(self, row: Any, path: str) -> list[ErrorDetail]:
        if not isinstance(row, dict):
            return [ErrorDetail(code="not_an_object", field=path, message="expected an object of named features")]
        out = []
        for name, kind, opt, req in zip(self.names, self.kinds, self.nullable, self.required):
            where = f"{path}.{name}"
            if name not in row:
                if req:
                    out.append(ErrorDetail(code="missing_feature", field=where, message=f"feature {name!r} is missing"))
                continue
            if not _fits(row[name], kind, opt):
                expected = kind + (" or null" if opt else "")
                out.append(ErrorDetail(code="wrong_type", field=where,
                                       message=f"feature {name!r} must be {expected}, got {_json_type(row[name])}"))
        known = set(self.names)
        for name in row:
            if name not in known:
                out.append(ErrorDetail(code="unknown_feature", field=f"{path}.{name}",
                                       message=f"{name!r} is not a feature of this model"))
        return out


# msgspec raises these, not DecodeError, for invalid UTF-8 in strings and for
# hostile nesting; both are the client's malformed body.
UNDECODABLE = (UnicodeDecodeError, RecursionError)


def undecodable(exc: Exception) -> ApiError:
    if isinstance(exc, RecursionError):
        return ApiError("malformed body: nested too deeply", code="too_deep")
    return ApiError(f"malformed body: text is not valid UTF-8 (byte {exc.start})", code="malformed_body")


def _check_count(n: int, field: str) -> None:
    if n > MAX_BATCH_ROWS:
        raise InvalidInput(f"at most {MAX_BATCH_ROWS} rows per request", field=field, code="too_many_rows")
    if n == 0:
        raise InvalidInput("rows must not be empty", field=field)


@functools.cache
def feature_spec(struct: type[msgspec.Struct]) -> FeatureSpec:
    """The FeatureSpec of a family's feature Struct, built once (it defines a Struct type and a decoder)."""
    return FeatureSpec.from_struct(struct)


def _fits(value: Any, kind: str, nullable: bool) -> bool:
    if value is None:
        return nullable
    t = type(value)
    if kind == "bool":
        return t is bool
    if kind == "int":
        return t is int
    if kind == "category":
        return t is str
    return t is int or t is float


def arrow_kind(t: pa.DataType, name: str) -> str:
    """The feature kind of an Arrow column type (FeatureSchemaError for the rest)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "category"
    raise FeatureSchemaError(f"feature {name!r} has Arrow type {t}; features are numbers, booleans or strings")


def _as_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _invalid(details: list[ErrorDetail]) -> InvalidInput:
    if not details:  # the fast path failed on something the slow one accepts: report generically
        return InvalidInput("invalid features")
    first = details[0]
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    summary = "; ".join(d.message for d in details[:5]) + more
    return InvalidInput(summary, field=first.field, details=details)


@functools.cache
def _batch_type(strict: type) -> type:
    return msgspec.defstruct(f"{strict.__name__}Batch", [("rows", list[strict])], forbid_unknown_fields=True)


def _decode_any(body: bytes, expected: type, decode=msgspec.json.decode) -> Any:
    try:
        value = decode(body)
    except msgspec.DecodeError as exc:
        raise from_msgspec(exc) from None
    except UNDECODABLE as exc:
        raise undecodable(exc) from None
    if not isinstance(value, expected):
        raise InvalidInput("expected an object of named features", field="$")
    return value
