"""Event rows: map JSON objects onto a datasource's columns, check types, insert.

:class:`RowMapper` is built once per datasource: each column's JSON path (``$.a.b[0]``)
and a checker for its ClickHouse type. ``map_lines`` turns NDJSON lines into rows
(dicts, for ``backend.insert_json``) and rejected (error, raw line) pairs; ``insert``
writes both, rejected rows to ``<datasource>_quarantine``. Types Python does not check
(Map, Tuple, JSON ...) are left to the engine: if it refuses a batch, ``insert`` halves
it until it finds the rows it refuses and quarantines them with ClickHouse's message.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rtp.deploy.backends import QueryError
from rtp.project.model import Datasource
from rtp.sql.params import INT_RANGES

QUARANTINE_SUFFIX = "_quarantine"
_MISSING = object()
_STEP = re.compile(r"\.([A-Za-z_0-9$@-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class RowError(ValueError):
    """A row does not fit the datasource; the message says which column and why."""


def quarantine_table(datasource: str) -> str:
    return datasource + QUARANTINE_SUFFIX


def quarantine_ddl(datasource: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS `{quarantine_table(datasource)}` "
            "(`timestamp` DateTime64(3), `error` String, `raw` String) "
            "ENGINE = MergeTree ORDER BY timestamp")


def parse_path(path: str) -> tuple:
    """``$.product.id`` -> ("product", "id"); ``$.items[0]`` -> ("items", 0).

    Raises ValueError for text that is not a JSON path of keys and indexes.
    """
    if not path.startswith("$"):
        raise ValueError(f"JSON path '{path}' must start with $")
    steps, pos = [], 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            raise ValueError(f"cannot read JSON path '{path}' at character {pos + 1}")
        key, index, q1, q2 = m.groups()
        steps.append(int(index) if index is not None else (key if key is not None
                                                             else (q1 if q1 is not None
                                                                   else q2)))
        pos = m.end()
    return tuple(steps)


def _get(obj, steps: tuple):
    for step in steps:
        if isinstance(step, int):
            if not isinstance(obj, list) or step >= len(obj):
                return _MISSING
        elif not isinstance(obj, dict) or step not in obj:
            return _MISSING
        obj = obj[step]
    return obj


# -- type checkers: value from JSON -> value for JSONEachRow; raise ValueError -------


def _unwrap(ch_type: str) -> tuple[str, bool]:
    nullable = False
    while True:
        m = re.fullmatch(r"(Nullable|LowCardinality)\((.*)\)", ch_type.strip(), re.S)
        if not m:
            return ch_type.strip(), nullable
        nullable = nullable or m.group(1) == "Nullable"
        ch_type = m.group(2)


def _string(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value)  # numbers and booleans as their JSON text


def _int(type_name: str):
    lo, hi = INT_RANGES[type_name]

    def check(value):
        if isinstance(value, bool):
            raise ValueError(f"expected {type_name}, got a boolean")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"expected {type_name}, got {json.dumps(value)[:40]}")
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range for {type_name}")
        return value

    return check


def _float(value):
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            pass
        else:
            return value
    raise ValueError(f"expected a number, got {json.dumps(value)[:40]}")


def _bool(value):
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError(f"expected a boolean, got {json.dumps(value)[:40]}")


def _date(value):
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise ValueError(f"expected a date YYYY-MM-DD, got {json.dumps(value)[:40]}")


def _datetime(precision: int):
    def check(value):
        if isinstance(value, int | float) and not isinstance(value, bool):
            stamp = dt.datetime.fromtimestamp(value, dt.timezone.utc)
        elif isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            try:
                stamp = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"expected a date-time, got {json.dumps(value)[:40]}"
                                 ) from None
        else:
            raise ValueError(f"expected a date-time, got {json.dumps(value)[:40]}")
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if not 1900 <= stamp.year <= 2299:
            raise ValueError(f"{value} is outside the DateTime range")
        text = stamp.isoformat(sep=" ", timespec="microseconds")
        return text[:20 + precision] if precision else text[:19]

    return check


def _uuid(value):
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"expected a UUID, got {json.dumps(value)[:40]}") from None


def _passthrough(value):
    return value


def checker(ch_type: str) -> tuple[Callable, bool]:
    """(check function, nullable) for a ClickHouse column type."""
    base, nullable = _unwrap(ch_type)
    if base.startswith("Array(") and base.endswith(")"):
        inner, inner_nullable = checker(base[6:-1])

        def array(value):
            if not isinstance(value, list):
                raise ValueError(f"expected an array, got {json.dumps(value)[:40]}")
            return [None if (v is None and inner_nullable) else inner(v) for v in value]

        return array, nullable
    name = base.split("(", 1)[0]
    if name in ("String", "FixedString", "Enum8", "Enum16", "Enum"):
        return _string, nullable
    if name in INT_RANGES:
        return _int(name), nullable
    if name in ("Float32", "Float64", "Decimal", "Decimal32", "Decimal64", "Decimal128",
                "Decimal256"):
        return _float, nullable
    if name in ("Bool", "Boolean"):
        return _bool, nullable
    if name in ("Date", "Date32"):
        return _date, nullable
    if name == "DateTime":
        return _datetime(0), nullable
    if name == "DateTime64":
        m = re.match(r"DateTime64\(\s*(\d+)", base)
        return _datetime(min(6, int(m.group(1))) if m else 3), nullable
    if name == "UUID":
        return _uuid, nullable
    return _passthrough, nullable


@dataclass(frozen=True)
class _Field:
    name: str
    path: str
    steps: tuple
    check: Callable
    nullable: bool
    has_default: bool


class RowMapper:
    """Maps JSON events onto one datasource's columns. Build once, use per request."""

    def __init__(self, datasource: Datasource, *, by_name: bool = False) -> None:
        """``by_name``: read each column from the key of its name (CSV fixtures), not
        from its JSON path."""
        self.datasource = datasource
        self.by_name = by_name
        self.fields = []
        for col in datasource.columns:
            check, nullable = checker(col.type)
            path = f"$.{col.name}" if by_name or not col.json_path else col.json_path
            self.fields.append(_Field(col.name, path, (col.name,) if by_name
                                      else parse_path(path), check, nullable,
                                      col.default is not None))

    def map(self, obj) -> dict:
        """One event as a row. Raises RowError naming the column and the problem."""
        if not isinstance(obj, dict):
            raise RowError("an event must be a JSON object")
        row = {}
        for f in self.fields:
            value = _get(obj, f.steps)
            if value == "" and self.by_name:  # an empty CSV cell: NULL or the default
                value = None if f.nullable else _MISSING if f.has_default else value
            if value is _MISSING or value is None:
                if f.has_default and value is _MISSING:
                    continue
                if f.nullable:
                    row[f.name] = None
                    continue
                what = "missing" if value is _MISSING else "null"
                raise RowError(f"column '{f.name}' ({f.path}): {what}, and the column is "
                               "not Nullable")
            try:
                row[f.name] = f.check(value)
            except ValueError as exc:
                raise RowError(f"column '{f.name}' ({f.path}): {exc}") from None
        return row

    def map_objects(self, objects: Iterable) -> tuple[list[dict], list[tuple[str, str]]]:
        """Objects already parsed (CSV rows) -> (rows, [(error, raw)])."""
        rows, bad = [], []
        for obj in objects:
            try:
                rows.append(self.map(obj))
            except RowError as exc:
                bad.append((str(exc), json.dumps(obj)))
        return rows, bad

    def map_lines(self, lines: Iterable[bytes]) -> tuple[list[dict], list[tuple[str, str]]]:
        """NDJSON lines -> (rows ready to insert, [(error, raw line)]). Blank lines are
        skipped."""
        rows, bad = [], []
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                bad.append((f"not JSON: {exc}", _raw(line)))
                continue
            try:
                rows.append(self.map(obj))
            except RowError as exc:
                bad.append((str(exc), _raw(line)))
        return rows, bad


def _raw(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


def insert(backend, datasource: str, rows: list[dict], bad: list[tuple[str, str]],
           ensured: set | None = None, *, retry_rows: bool = True) -> tuple[int, int]:
    """Insert mapped ``rows`` into ``datasource`` and ``bad`` into its quarantine table;
    returns (rows inserted, rows quarantined). Blocking; the rows are durable when it
    returns. If the engine refuses the batch, it is split in halves until the refused
    rows are found; they are quarantined with ClickHouse's message (and the mapped row).

    Raises EngineError when the engine fails for another reason than the data, and
    QueryError when it refuses the batch and ``retry_rows`` is False (nothing is written
    then).
    """
    bad = list(bad)
    ok = 0
    if rows:
        try:
            backend.insert_json(datasource, rows)
            ok = len(rows)
        except QueryError as exc:
            if not retry_rows or exc.ch_name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
                raise
            ok = _bisect(backend, datasource, rows, bad)
    if bad:
        table = quarantine_table(datasource)
        if ensured is None or table not in ensured:
            backend.execute(quarantine_ddl(datasource))
            if ensured is not None:
                ensured.add(table)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
        backend.insert_json(table, [{"timestamp": now, "error": e, "raw": r} for e, r in bad])
    return ok, len(bad)


def _bisect(backend, table: str, rows: list[dict], bad: list[tuple[str, str]]) -> int:
    """Insert what the engine accepts, halving refused batches down to single rows."""
    try:
        backend.insert_json(table, rows)
        return len(rows)
    except QueryError as exc:
        if len(rows) == 1:
            bad.append((f"rejected by ClickHouse: {exc.detail}",
                        json.dumps(rows[0], default=str)))
            return 0
    half = len(rows) // 2
    return _bisect(backend, table, rows[:half], bad) + _bisect(backend, table, rows[half:], bad)
