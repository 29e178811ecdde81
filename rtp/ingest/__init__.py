"""Rows into a datasource, bad rows into ``<datasource>_quarantine``: the one ingestion
path, used by ``POST /v0/events``, ``rtp append``, ``rtp dev``'s fixtures and
``rtp test``'s fixtures.

:class:`RowMapper` is built once per datasource: each column's JSON path (``$.a.b[0]``)
and a checker for its ClickHouse type. ``map_lines`` turns NDJSON lines into rows
(dicts, for ``backend.insert_json``) and rejected (error, raw line) pairs; ``insert``
writes both, rejected rows to ``<datasource>_quarantine``. Types Python does not check
(Map, Tuple, JSON ...) are left to the engine: if it refuses a batch, ``insert`` halves
it until it finds the rows it refuses and quarantines them with ClickHouse's message.

A column missing from a row takes its ``default`` when it has one, NULL when it is
Nullable; otherwise the row is quarantined (a silent zero or empty string would hide
a broken producer). :func:`read_records` reads the data files (NDJSON, CSV, Parquet)
that ``rtp append`` and fixtures load, keeping each row's line for error messages.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import io
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from rtp.engine import MIN_VERSIONS, QueryError, version_tuple
from rtp.errors import RequestError
from rtp.project.model import Datasource
from rtp.sql.params import INT_RANGES

if TYPE_CHECKING:
    from rtp.engine import Backend

QUARANTINE_SUFFIX = "_quarantine"
_MISSING = object()
_STEP = re.compile(r"\.([A-Za-z_0-9$@-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


# what a checker (or json) may raise on a value it can't read: all of them quarantine the
# row (RecursionError: deeply nested values; OverflowError: timestamps past time_t)
CHECK_ERRORS = (ValueError, TypeError, OverflowError, ArithmeticError, RecursionError, OSError)


def _show(value) -> str:
    """A short JSON-ish text of ``value`` for messages; never raises."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        text = orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME, default=str)
        return text.decode("utf-8")[:40]
    except (TypeError, ValueError):  # past orjson's nesting limit, integers past 64 bits
        return f"a {type(value).__name__}" if isinstance(value, dict | list) else str(value)[:40]


class RowError(ValueError):
    """A row does not fit the datasource; the message says which column and why.
    ``column`` is the 1-based character in the raw line where reading failed (1 when
    the whole row is at fault)."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


def quarantine_table(datasource: str) -> str:
    return datasource + QUARANTINE_SUFFIX


def quarantine_ddl(datasource: str, *, precise: bool = True, window: bool = True) -> str:
    """The quarantine table: when (UTC), why, and the row as received. ``precise``
    False keeps seconds only, for ClickHouse servers older than 20.1 (no DateTime64)."""
    stamp = "DateTime64(3)" if precise else "DateTime"
    # the window: a retried idempotent insert does not quarantine its bad rows twice
    window = " SETTINGS non_replicated_deduplication_window = 1000" if window else ""
    return (
        f"CREATE TABLE IF NOT EXISTS `{quarantine_table(datasource)}` "
        f"(`timestamp` {stamp}, `error` String, `raw` String) "
        f"ENGINE = MergeTree ORDER BY timestamp{window}"
    )


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
        steps.append(
            int(index)
            if index is not None
            else (key if key is not None else (q1 if q1 is not None else q2))
        )
        pos = m.end()
    return tuple(steps)


def _getter(steps: tuple) -> Callable:
    """A function reading a JSON path from an event; top-level keys (most columns) take
    one dict lookup."""
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]
        return lambda obj: obj.get(key, _MISSING)
    return lambda obj: _get(obj, steps)


def _by_name_getter(steps: tuple, alt: tuple | None, nullable: bool, has_default: bool) -> Callable:
    """For flat records (CSV, Parquet): the column by name, else by its JSON path; an
    empty CSV cell is NULL for a Nullable column, the default for one that has it."""

    def get(obj):
        value = _get(obj, steps)
        if value is _MISSING and alt is not None:
            value = _get(obj, alt)
        if value == "":
            value = None if nullable else _MISSING if has_default else value
        return value

    return get


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
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Infinity; json.dumps would write them
    try:
        # numbers and booleans as their JSON text, objects and arrays compact
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        raise ValueError("the value is nested too deeply to store as text") from None


def _int(type_name: str):
    lo, hi = INT_RANGES[type_name]

    def check(value):
        if isinstance(value, bool):
            raise ValueError(f"expected {type_name}, got a boolean")
        if isinstance(value, float):
            if not value.is_integer():  # NaN, Infinity and fractions
                raise ValueError(f"expected {type_name}, got {_show(value)}")
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,80}", value.strip()):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"expected {type_name}, got {_show(value)}")
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range for {type_name}")
        return value

    return check


def _float(value):
    """Float32/Float64. NaN and +-inf are ClickHouse floats: sent as text ("nan"), since
    a JSON writer turns them into null (stored as 0, silently)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        # past 64 bits the row encoder writes exact digits the engine reads as a float
        return value if -(2**63) <= value < 2**64 else float(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if not math.isfinite(number) and value.strip().lstrip("+-").lower() not in (
                "nan",
                "inf",
                "infinity",
            ):
                raise ValueError(f"{_show(value)} overflows a 64-bit float")
            return value.strip()
    raise ValueError(f"expected a number, got {_show(value)}")


def _decimal(precision: int, scale: int):
    """Decimal(P, S): a number whose integer part has at most P - S digits (the engine
    refuses more; its message is per batch, ours per row)."""
    bound = decimal.Decimal(10) ** (precision - scale)

    def check(value):
        if isinstance(value, bool):
            raise ValueError("expected a number, got a boolean")
        if isinstance(value, int | float | decimal.Decimal | str):
            try:
                number = decimal.Decimal(value.strip() if isinstance(value, str) else value)
            except (decimal.InvalidOperation, ValueError):
                number = None
            if number is not None and number.is_finite():
                if abs(number) >= bound:
                    raise ValueError(
                        f"{_show(value)} is out of range for Decimal({precision}, {scale})"
                    )
                # rounded to the scale here: the engine's text reader refuses extra digits
                return str(
                    number.quantize(
                        decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_EVEN
                    )
                )
        raise ValueError(f"expected a decimal number, got {_show(value)}")

    return check


def _bool(value):
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError(f"expected a boolean, got {_show(value)}")


# what each type stores; outside, ClickHouse clamps or wraps the value silently
_RANGES = {
    "Date": (dt.datetime(1970, 1, 1), dt.datetime(2149, 6, 6, 23, 59, 59)),
    "Date32": (dt.datetime(1900, 1, 1), dt.datetime(2299, 12, 31, 23, 59, 59)),
    "DateTime": (dt.datetime(1970, 1, 1), dt.datetime(2106, 2, 7, 6, 28, 15)),
    "DateTime64": (dt.datetime(1900, 1, 1), dt.datetime(2299, 12, 31, 23, 59, 59)),
}


def _date(type_name: str):
    lo, hi = _RANGES[type_name]

    def check(value):
        day = None
        if isinstance(value, dt.date):
            day = value if not isinstance(value, dt.datetime) else value.date()
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(value.strip()[:10])
        if day is None:
            raise ValueError(f"expected a date YYYY-MM-DD, got {_show(value)}")
        if not lo.date() <= day <= hi.date():
            raise ValueError(
                f"{_show(value)} is outside the {type_name} range ({lo.date()} to {hi.date()})"
            )
        return day.isoformat()

    return check


def _datetime(precision: int, type_name: str = "DateTime"):
    lo, hi = _RANGES[type_name]

    def check(value):
        if isinstance(value, dt.datetime):
            stamp = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:  # NaN, inf and seconds past the platform's time_t raise here
                stamp = dt.datetime.fromtimestamp(value, dt.timezone.utc)
            except (ValueError, OverflowError, OSError):
                raise ValueError(
                    f"{_show(value)} is not a Unix timestamp in the {type_name} range"
                ) from None
        elif isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            try:
                stamp = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"expected a date-time, got {_show(value)}") from None
        else:
            raise ValueError(f"expected a date-time, got {_show(value)}")
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if not lo <= stamp <= hi:
            raise ValueError(f"{_show(value)} is outside the {type_name} range ({lo} to {hi} UTC)")
        text = stamp.isoformat(sep=" ", timespec="microseconds")
        return text[: 20 + precision] if precision else text[:19]

    return check


def _uuid(value):
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"expected a UUID, got {_show(value)}") from None


def _passthrough(value):
    return value


def checker(ch_type: str) -> tuple[Callable, bool]:
    """(check function, nullable) for a ClickHouse column type."""
    base, nullable = _unwrap(ch_type)
    if base.startswith("Array(") and base.endswith(")"):
        inner, inner_nullable = checker(base[6:-1])

        def array(value):
            if not isinstance(value, list):
                raise ValueError(f"expected an array, got {_show(value)}")
            return [None if (v is None and inner_nullable) else inner(v) for v in value]

        return array, nullable
    name = base.split("(", 1)[0]
    if name in ("String", "FixedString", "Enum8", "Enum16", "Enum"):
        return _string, nullable
    if name in INT_RANGES:
        return _int(name), nullable
    if name in ("Float32", "Float64"):
        return _float, nullable
    if name.startswith("Decimal"):
        args = [int(a) for a in re.findall(r"\d+", base[len(name) :])]
        digits = {"Decimal32": 9, "Decimal64": 18, "Decimal128": 38, "Decimal256": 76}
        if name in digits and len(args) == 1:
            return _decimal(digits[name], args[0]), nullable
        if name == "Decimal" and args:
            return _decimal(args[0], args[1] if len(args) > 1 else 0), nullable
        return _float, nullable
    if name in ("Bool", "Boolean"):
        return _bool, nullable
    if name in ("Date", "Date32"):
        return _date(name), nullable
    if name == "DateTime":
        return _datetime(0), nullable
    if name == "DateTime64":
        m = re.match(r"DateTime64\(\s*(\d+)", base)
        return _datetime(min(6, int(m.group(1))) if m else 3, "DateTime64"), nullable
    if name == "UUID":
        return _uuid, nullable
    return _passthrough, nullable


@dataclass(frozen=True)
class _Field:
    get: Callable  # event -> value or _MISSING
    name: str
    path: str
    steps: tuple
    alt_steps: tuple | None  # by_name mappers: the JSON path, when the name is absent
    json_steps: tuple  # the column's JSON path, where to_event puts the value
    check: Callable
    nullable: bool
    has_default: bool


class RowMapper:
    """Maps JSON events onto one datasource's columns. Build once, use per request."""

    def __init__(self, datasource: Datasource, *, by_name: bool = False) -> None:
        """``by_name``: flat records (CSV, Parquet): read each column from the key of its
        name, or from its JSON path when the record has no such key."""
        self.datasource = datasource
        self.by_name = by_name
        self.fields = []
        # integers past 64 bits must be parsed by json to stay exact (see _ndjson)
        self.exact = any(re.search(r"\bU?Int(128|256)\b", c.type) for c in datasource.columns)
        for col in datasource.columns:
            check, nullable = checker(col.type)
            path = col.json_path or f"$.{col.name}"
            json_steps = parse_path(path)
            steps, alt = json_steps, None
            if by_name:
                alt = json_steps if json_steps != (col.name,) else None
                steps, path = (col.name,), f"$.{col.name}"
            has_default = col.default is not None
            get = _by_name_getter(steps, alt, nullable, has_default) if by_name else _getter(steps)
            self.fields.append(
                _Field(get, col.name, path, steps, alt, json_steps, check, nullable, has_default)
            )

    def map(self, obj) -> dict:
        """One event as a row. Raises RowError naming the column and the problem."""
        if not isinstance(obj, dict):
            raise RowError("an event must be a JSON object")
        row = {}
        for f in self.fields:
            value = f.get(obj)
            if value is _MISSING or value is None:
                if f.has_default and value is _MISSING:
                    continue
                if f.nullable:
                    row[f.name] = None
                    continue
                what = "missing" if value is _MISSING else "null"
                raise RowError(
                    f"column '{f.name}' ({f.path}): {what}, and the column is not Nullable"
                )
            try:
                row[f.name] = f.check(value)
            except CHECK_ERRORS as exc:  # any value a checker can't read: this row only
                raise RowError(f"column '{f.name}' ({f.path}): {exc}") from None
        return row

    def to_event(self, obj: dict) -> dict:
        """A flat record (CSV, Parquet) as the JSON event that a JSON-path mapper of the
        same datasource reads the same way; values are not checked (the reader does).
        ``rtp append`` sends CSV and Parquet to a running server like this."""
        event: dict = {}
        for f in self.fields:
            value = f.get(obj)
            if value is _MISSING:
                continue
            _put(event, f.json_steps, value)
        return event

    def map_records(self, records: Iterable[Record]) -> tuple[list[dict], list[tuple[str, str]]]:
        """Records read from a file -> (rows ready to insert, [(error, raw)])."""
        rows, bad = [], []
        for record in records:
            if record.error is not None:
                bad.append((str(record.error), record.raw))
                continue
            try:
                rows.append(self.map(record.value))
            except RowError as exc:
                bad.append((str(exc), record.raw))
        return rows, bad

    def map_lines(self, lines: Iterable[bytes]) -> tuple[list[dict], list[tuple[str, str]]]:
        """NDJSON lines -> (rows ready to insert, [(error, raw line)]). Blank lines are
        skipped."""
        return self.map_records(_ndjson(enumerate(lines, 1), self.exact))


def _put(event: dict, steps: tuple, value) -> None:
    """Set ``value`` at ``steps`` in ``event``, creating objects (and lists) on the way."""
    node = event
    for step, following in zip(steps, steps[1:] + (None,), strict=True):
        fresh = [] if isinstance(following, int) else {}
        if following is None:
            fresh = value
        if isinstance(step, int):
            node.extend([None] * (step + 1 - len(node)))
            if node[step] is None:
                node[step] = fresh
            node = node[step]
        else:
            node = node.setdefault(step, fresh)


# -- data files --------------------------------------------------------------------------


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
        yield from _ndjson(enumerate(data.split(b"\n"), 1), exact)
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


def _ndjson(lines: Iterable[tuple[int, bytes]], exact: bool = False) -> Iterator[Record]:
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


# -- inserting ---------------------------------------------------------------------------


def insert_rows(
    backend: Backend,
    datasource: Datasource,
    records: Iterable[dict | str | bytes],
    *,
    by_name: bool = False,
) -> tuple[int, int]:
    """Map and insert ``records`` (parsed objects, or NDJSON lines); returns (rows
    inserted, rows quarantined). Raises as :func:`insert`. A batch goes in all or none,
    so keep batches well under ClickHouse's ``max_insert_block_size`` (about 1M rows)."""

    def as_records():
        for n, item in enumerate(records, 1):
            if isinstance(item, str | bytes):
                yield from _ndjson([(n, item)], mapper.exact)
            else:
                yield Record(n, item, item)

    mapper = RowMapper(datasource, by_name=by_name)
    rows, bad = mapper.map_records(as_records())
    return insert(backend, datasource.name, rows, bad)


def insert(
    backend: Backend,
    datasource: str,
    rows: list[dict],
    bad: list[tuple[str, str]],
    ensured: set | None = None,
    *,
    retry_rows: bool = True,
    token: str | None = None,
) -> tuple[int, int]:
    """Insert mapped ``rows`` into ``datasource`` and ``bad`` into its quarantine table;
    returns (rows inserted, rows quarantined). Blocking; the rows are durable when it
    returns. If the engine refuses the batch, it is split in halves until the refused
    rows are found; they are quarantined with ClickHouse's message (and the mapped row).

    ``token`` makes the call idempotent: called again with the same token and rows (a
    client's retry after a crash), it stores nothing twice, in the datasource, its
    views' targets and the quarantine; and it fills in what a crash left out (a view
    target's block). Every insert it makes carries a token derived from it.

    Raises EngineError when the engine fails for another reason than the data, and
    QueryError when it refuses the batch and ``retry_rows`` is False (nothing is written
    then).
    """
    bad = list(bad)
    ok = 0
    if rows:
        try:
            _insert_json(backend, datasource, rows, token)
            ok = len(rows)
        except QueryError as exc:
            if not retry_rows or exc.ch_name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
                raise
            refused = refused_rows(backend, datasource, rows, token=token)
            ok = len(rows) - len(refused)
            bad += [
                (f"rejected by ClickHouse: {err.detail}", json.dumps(rows[i], default=str))
                for i, err in refused
            ]
    if bad:
        table = quarantine_table(datasource)
        precise = version_tuple(backend.version()) >= MIN_VERSIONS["DateTime64"]
        if ensured is None or table not in ensured:
            backend.execute(
                quarantine_ddl(datasource, precise=precise, window=supports_tokens(backend))
            )
            if ensured is not None:
                ensured.add(table)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        now = now[:23] if precise else now[:19]
        # the quarantine rows carry the time of this call: a retry's differ, its token not
        _insert_json(
            backend,
            table,
            [{"timestamp": now, "error": e, "raw": r} for e, r in bad],
            None if token is None else f"{token}/quarantine",
        )
    return ok, len(bad)


def refused_rows(
    backend: Backend, table: str, rows: list[dict], *, token: str | None = None
) -> list[tuple[int, QueryError]]:
    """Insert what the engine accepts, halving refused batches down to single rows;
    returns the refused rows as (index in ``rows``, the engine's error). The halves are
    the same on a retry, so each takes ``token`` with its place: ``token/offset+size``."""
    refused: list[tuple[int, QueryError]] = []
    _bisect(backend, table, rows, 0, refused, token)
    return refused


def _bisect(
    backend: Backend,
    table: str,
    rows: list[dict],
    offset: int,
    refused: list[tuple[int, QueryError]],
    token: str | None = None,
) -> None:
    try:
        _insert_json(
            backend, table, rows, None if token is None else f"{token}/{offset}+{len(rows)}"
        )
        return
    except QueryError as exc:
        if len(rows) == 1:
            refused.append((offset, exc))
            return
    half = len(rows) // 2
    _bisect(backend, table, rows[:half], offset, refused, token)
    _bisect(backend, table, rows[half:], offset + half, refused, token)


def _insert_json(backend: Backend, table: str, rows: list[dict], token: str | None) -> None:
    # backends (and test doubles) that predate tokens are called as before without one
    if token is None:
        backend.insert_json(table, rows)
    else:
        backend.insert_json(table, rows, token=token)


def supports_tokens(backend: Backend) -> bool:
    """Whether the backend's ClickHouse deduplicates inserts by token (22.2 or newer)."""
    return version_tuple(backend.version()) >= MIN_VERSIONS["insert deduplication tokens"]
