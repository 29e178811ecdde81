"""Data files (NDJSON, CSV, Parquet) as records that keep each row's line for messages."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from rtp.errors import RequestError
from rtp.ingest.checks import RowError


@dataclass(frozen=True)
class Record:
    """One row of a data file: its line (NDJSON, CSV) or row number (Parquet), the parsed
    value, what was read (bytes, text, or the record itself), or the error that made it
    unreadable. ``raw``, its text for the quarantine table, is built only when asked:
    most rows are good and never need it."""

    line: int
    value: object
    source: object
    error: RowError | None = None

    @property
    def raw(self) -> str:
        if isinstance(self.source, bytes):
            return self.source.decode("utf-8", errors="replace").rstrip("\r\n")
        if isinstance(self.source, str):
            return self.source.rstrip("\r\n")
        return json.dumps(self.source, ensure_ascii=False, default=str)


FORMATS = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
    ".parquet": "parquet",
}


def kind_of(name: str) -> str | None:
    """``ndjson``, ``csv`` or ``parquet`` from a file name or URL, or None."""
    path = name.split("?")[0].lower()
    return next((k for suffix, k in FORMATS.items() if path.endswith(suffix)), None)


def by_name(kind: str) -> bool:
    """Whether records of this kind are flat (read by column name), see RowMapper."""
    return kind in ("csv", "parquet")


def read_records(data: bytes, kind: str, *, exact: bool = False) -> Iterator[Record]:
    """The records of an NDJSON, CSV or Parquet file. Blank NDJSON lines are skipped; a
    line that isn't JSON is a Record with an error. Raises RequestError RTP411 when a
    Parquet file can't be read (or pyarrow is missing)."""
    if kind == "ndjson":
        yield from ndjson(enumerate(data.split(b"\n"), 1), exact)
    elif kind == "csv":
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        for row in reader:
            yield Record(reader.line_num, row, row)
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise RequestError(
                "reading Parquet needs pyarrow", code="RTP411", hint="pip install pyarrow"
            ) from None
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises its own ArrowInvalid and OSError
            raise RequestError(f"invalid Parquet: {exc}", code="RTP411") from None
        for n, row in enumerate(table.to_pylist(), 1):
            yield Record(n, row, row)


def ndjson(lines: Iterable[tuple[int, bytes]], exact: bool = False) -> Iterator[Record]:
    """``exact``: parse with json, which keeps integers past 64 bits exact (orjson, ~3x
    faster, reads them as floats); RowMapper.exact says when a datasource needs it."""
    loads = json.loads if exact else orjson.loads
    for n, line in lines:
        if not line.strip():
            continue
        try:
            yield Record(n, loads(line), line)
        except ValueError as exc:
            yield Record(n, None, line, RowError(f"not JSON: {exc}", getattr(exc, "colno", 1)))
        except RecursionError:  # json (exact mode) on deeply nested values
            yield Record(n, None, line, RowError("not JSON: nested too deeply"))
