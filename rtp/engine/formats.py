"""ClickHouse output formats built from rows, for a backend whose driver gives rows, not
the engine's own bytes (the native protocol sends typed blocks, never ``FORMAT`` text).

:func:`format_rows` makes the formats rtp serves the way ClickHouse writes them, so a
body decodes to the same answer whichever backend ran the query (tests/
test_backend_contract.py pins it): ``JSON`` (``meta``, ``data``, ``rows``,
``statistics``), ``JSONCompact``, ``JSONEachRow``, ``CSVWithNames``, ``TabSeparated``
(``TSV``) and ``Parquet``. Values arrive as the embedded engine's JSON gives them
(see :func:`rtp.engine.clickhouse._plain`): DateTime as text, Decimal as float.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

Columns = list[tuple[str, str]]  # (name, ClickHouse type)
Rows = list[list[Any]]


@dataclass(frozen=True)
class Statistics:
    """What ClickHouse's ``JSON`` format reports under ``statistics``."""

    elapsed: float = 0.0  # seconds
    rows_read: int = 0
    bytes_read: int = 0


SUPPORTED = ("JSON", "JSONCompact", "JSONEachRow", "CSVWithNames", "TabSeparated", "TSV", "Parquet")


def format_rows(columns: Columns, rows: Rows, fmt: str, stats: Statistics | None = None) -> bytes:
    """``rows`` (with ``columns``) as ClickHouse's output format ``fmt``.

    Raises ValueError for a format not in :data:`SUPPORTED`.
    """
    names = [name for name, _ in columns]
    stats = stats or Statistics()
    if fmt == "JSON":
        return _json(
            {
                "meta": [{"name": n, "type": t} for n, t in columns],
                "data": [dict(zip(names, row, strict=True)) for row in rows],
                "rows": len(rows),
                # Tinybird's shape has it; ClickHouse writes it for a query with a LIMIT
                "rows_before_limit_at_least": len(rows),
                "statistics": {
                    "elapsed": stats.elapsed,
                    "rows_read": stats.rows_read,
                    "bytes_read": stats.bytes_read,
                },
            }
        )
    if fmt == "JSONCompact":
        return _json(
            {
                "meta": [{"name": n, "type": t} for n, t in columns],
                "data": rows,
                "rows": len(rows),
                "statistics": {
                    "elapsed": stats.elapsed,
                    "rows_read": stats.rows_read,
                    "bytes_read": stats.bytes_read,
                },
            }
        )
    if fmt == "JSONEachRow":
        return b"".join(_json(dict(zip(names, row, strict=True))) + b"\n" for row in rows)
    if fmt == "CSVWithNames":
        out = io.StringIO()
        out.write(",".join(_csv(n) for n in names) + "\n")
        for row in rows:
            out.write(",".join(_csv(v) for v in row) + "\n")
        return out.getvalue().encode()
    if fmt in ("TabSeparated", "TSV"):
        return "".join("\t".join(_tsv(v) for v in row) + "\n" for row in rows).encode()
    if fmt == "Parquet":
        return _parquet(columns, rows)
    raise ValueError(f"format {fmt!r} is not one of {', '.join(SUPPORTED)}")


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()


def _text(value: object, *, nested: bool = False) -> str:
    """ClickHouse's text form of a value (arrays as ``[1,'a']``)."""
    if value is None:
        return "NULL" if nested else "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        inner = ",".join(_text(v, nested=True) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{_text(k, nested=True)}:{_text(v, nested=True)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, str) and nested:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def _csv(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = _text(value)
    return '"' + text.replace('"', '""') + '"'


def _tsv(value: object) -> str:
    text = _text(value)
    if value is None:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _parquet(columns: Columns, rows: Rows) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for i, (name, ch_type) in enumerate(columns):
        values = [row[i] for row in rows]
        arrow = _arrow_type(ch_type)
        if arrow is not None:
            values = [_arrow_value(ch_type, v) for v in values]
        arrays[name] = pa.array(values, type=arrow)
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink)
    return sink.getvalue()


_INTS = {
    "UInt8": "uint8",
    "UInt16": "uint16",
    "UInt32": "uint32",
    "UInt64": "uint64",
    "Int8": "int8",
    "Int16": "int16",
    "Int32": "int32",
    "Int64": "int64",
}


def _inner(ch_type: str) -> str:
    for wrapper in ("Nullable(", "LowCardinality("):
        if ch_type.startswith(wrapper):
            return _inner(ch_type[len(wrapper) : -1])
    return ch_type


def _arrow_type(ch_type: str) -> Any:
    """The Arrow type ClickHouse's Parquet output uses for ``ch_type`` (None: inferred)."""
    import pyarrow as pa

    base = _inner(ch_type)
    if base in _INTS:
        return getattr(pa, _INTS[base])()
    if base.startswith(("Float", "Decimal")):
        return pa.float64()
    if base == "String" or base.startswith("FixedString"):
        return pa.string()
    if base == "Date":
        return pa.date32()
    if base.startswith("DateTime"):
        return pa.timestamp("s")
    if base.startswith("Array("):
        item = _arrow_type(base[len("Array(") : -1])
        return pa.list_(item) if item is not None else None
    return None


def _arrow_value(ch_type: str, value: object) -> object:
    import datetime as dt

    base = _inner(ch_type)
    if value is None:
        return None
    if base == "Date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if base.startswith("DateTime") and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if base.startswith("Array(") and isinstance(value, list):
        return [_arrow_value(base[len("Array(") : -1], v) for v in value]
    return value


__all__ = ["SUPPORTED", "Statistics", "format_rows"]
