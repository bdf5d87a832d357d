"""An uploaded file on disk -> one Parquet file, streamed in blocks (never the whole file in memory).

CSV (optionally gzipped, told by its magic bytes, not its name) is read with
pyarrow's streaming reader, which infers the column types from the first
block; Parquet is re-written batch by batch, so what is stored is always a
single file in one layout. The SHA-256 is of the uploaded bytes: the same
upload gives the same digest whatever the conversion does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from flywheel.server.plugin_api import InvalidInput

READ_BLOCK = 1 << 20  # CSV block (and type-inference sample): 1 MiB
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
MAX_COLUMNS = 2000
MAX_COLUMN_NAME = 200


def sniff(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return "csv.gz"
    if head == PARQUET_MAGIC:
        return "parquet"
    return "csv"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(READ_BLOCK):
            h.update(chunk)
    return h.hexdigest()


def to_parquet(src: Path, dst: Path) -> tuple[str, int, pa.Schema]:
    """Convert the upload at `src` into `dst`; returns (source format, rows, schema)."""
    kind = sniff(src)
    try:
        batches, schema = _batches(src, kind)
        check_columns(schema)
        rows = 0
        with pq.ParquetWriter(dst, schema, compression="zstd") as writer:
            for batch in batches:
                rows += batch.num_rows
                writer.write_batch(batch)
    # UnicodeDecodeError: pyarrow decodes column names lazily, so a file that is not text fails there.
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the file could not be read as {kind}: {_short(exc)}", field="body",
                           code="unreadable_file") from None
    if rows == 0:
        raise InvalidInput("the file holds no rows", field="body")
    return kind, rows, schema


def _batches(src: Path, kind: str):
    if kind == "parquet":
        f = pq.ParquetFile(src)
        return f.iter_batches(batch_size=65_536), f.schema_arrow
    stream = pa.CompressedInputStream(pa.OSFile(str(src)), "gzip") if kind == "csv.gz" else pa.OSFile(str(src))
    reader = pcsv.open_csv(stream, read_options=pcsv.ReadOptions(block_size=READ_BLOCK),
                           convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    return reader, reader.schema


def check_columns(schema: pa.Schema) -> None:
    names = schema.names
    if len(names) > MAX_COLUMNS:
        raise InvalidInput(f"at most {MAX_COLUMNS} columns, the file has {len(names)}", field="body")
    seen: set[str] = set()
    for name in names:
        if not name or len(name) > MAX_COLUMN_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise InvalidInput(f"column name {name[:40]!r}: 1 to {MAX_COLUMN_NAME} printable characters",
                               field="body", code="bad_column_name")
        if name in seen:
            raise InvalidInput(f"column {name!r} appears twice", field="body", code="bad_column_name")
        seen.add(name)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
