"""The engine's own checks: NDJSON bodies go to ClickHouse as they came, typed per column
there, and rows that fail a cast or lack a required value are found by the engine.

One datasource's :class:`TypedInsert` compiles, once, the SQL that reads a body with
``format(JSONEachRow, '<staging>', $rtp$<body>$rtp$)``: every top-level key a column's
JSON path starts at is read as ``Nullable(String)`` (numbers, booleans, objects and
arrays as their JSON text; a null as NULL; an absent key as NULL, or as the column's
DEFAULT when it has one), then each column is cast with the ``...OrNull`` functions
(``accurateCastOrNull``, ``toDateTime64OrNull``, ``parseDateTime64BestEffortOrNull``,
``toUUIDOrNull``) and checked against its type's range. Python never parses a good row.

:func:`rtp.ingest.bodies.insert_bodies` runs it: one ``INSERT ... SELECT`` whose
``throwIf`` refuses the whole body (nothing stored) when any row is bad; only then a
``SELECT`` lists the bad rows (row number, failing columns) and a second ``INSERT``
stores the good ones. Types without an engine check here (Array, Map, Tuple, Decimal,
Int128/256, Enum, FixedString, JSON ...) keep the Python checks
(:class:`~rtp.ingest.mapper.RowMapper`) for their datasource.
"""

from __future__ import annotations

import re

from rtp.ingest.checks import unwrap
from rtp.ingest.paths import parse_path
from rtp.project.model import Column, Datasource
from rtp.sql.escape import quote_string
from rtp.sql.params import INT_RANGES

# what a nested path reads as when the event lacks it (a producer would have to send
# this exact text, NUL bytes included, to be mistaken for an absent value)
MISSING = "\x00rtp:missing\x00"
_M = quote_string(MISSING)
BAD_ROWS = "rtp: the body has bad rows"  # the throwIf message of a refused clean insert
# keys the staging structure can name as they are (JSONEachRow matches keys by name)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# how a staged value is read: every JSON value as text, null as NULL, absent as DEFAULT
FORMAT_SETTINGS = {
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 0,
    "input_format_defaults_for_omitted_fields": 1,
}
# the engine's ranges (rtp.ingest.checks._RANGES): outside them ClickHouse would clamp
_TIME_RANGES = {
    "DateTime": ("1970-01-01 00:00:00", "2106-02-07 06:28:15"),
    "DateTime64": ("1900-01-01 00:00:00", "2299-12-31 23:59:59.999999"),
}
_DATE_RANGES = {"Date": ("1970-01-01", "2149-06-06"), "Date32": ("1900-01-01", "2299-12-31")}
_INF = "('inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity', 'nan', '+nan', '-nan')"


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _first(fast: str, slow: str) -> str:
    """``fast``, or ``slow`` where ``fast`` is NULL (``if`` runs ``slow`` only there)."""
    return f"if(isNull({fast}), {slow}, {fast})"


def _typed(base: str, r: str) -> tuple[str, str] | None:
    """(value expression, extra failure condition) casting the staged text ``r`` (not
    NULL) to ``base`` (a type without Nullable/LowCardinality), or None when rtp has no
    engine check for it. The value is NULL when the text can't be read as the type.
    Each reads the common spelling with the cheapest function first and tries the
    others only for the rows it refused."""
    name = base.split("(", 1)[0]
    if name == "String":
        return r, ""
    if name in INT_RANGES and not re.search(r"(128|256)$", name):
        # "12", and also 12.0 and " 12 " (as the Python checks read them)
        slow = f"accurateCastOrNull(replaceRegexpOne(trimBoth({r}), '\\\\.0*$', ''), '{name}')"
        return _first(f"accurateCastOrNull({r}, '{name}')", slow), ""
    if name in ("Float32", "Float64"):
        v = _first(
            f"accurateCastOrNull({r}, '{name}')", f"accurateCastOrNull(trimBoth({r}), '{name}')"
        )
        # "1e999" overflows to inf: a producer's bug, not an infinity it meant
        return v, f"isInfinite({v}) AND lower(trimBoth({r})) NOT IN {_INF}"
    if name in ("Bool", "Boolean"):
        return (
            f"multiIf(lower({r}) IN ('true', '1'), true, lower({r}) IN ('false', '0'), false, NULL)"
        ), ""
    if name == "UUID":
        return _first(f"toUUIDOrNull({r})", f"toUUIDOrNull(trimBoth({r}))"), ""
    if name in _DATE_RANGES:
        lo, hi = _DATE_RANGES[name]
        day = f"substring(trimBoth({r}), 1, 10)"
        d = f"accurateCastOrNull({day}, 'Date32')"
        # Date32 clamps what it can't hold: the day must read back as it was written
        return d, f"toString({d}) != {day} OR {d} < toDate32('{lo}') OR {d} > toDate32('{hi}')"
    if name in _TIME_RANGES:
        m = re.fullmatch(r"DateTime(?:64)?\s*\(\s*(?:\d+\s*,\s*)?'([^']*)'\s*\)", base)
        tz = f", {quote_string(m.group(1))}" if m else ""
        lo, hi = _TIME_RANGES[name]
        seconds = f"toFloat64OrNull({r})"
        # 'YYYY-MM-DD hh:mm:ss[.f]' and Unix seconds read by the plain parser first;
        # then other numbers as Unix seconds (the Python checks' reading: "17" is 17 s,
        # not the 17th), and other text (ISO 8601's T, offsets) by the best-effort one
        t = _first(
            f"toDateTime64OrNull({r}, 6{tz})",
            f"if(isNull({seconds}), parseDateTime64BestEffortOrNull(trimBoth({r}), 6{tz}), "
            f"if({seconds} BETWEEN -2208988800 AND 10413791999, "
            f"toDateTime64({seconds}, 6{tz}), NULL))",
        )
        bounds = f"toDateTime64('{lo}', 6, 'UTC')", f"toDateTime64('{hi}', 6, 'UTC')"
        return t, f"{t} < {bounds[0]} OR {t} > {bounds[1]}"
    return None


class TypedInsert:
    """The engine-side reading and checks of one datasource's NDJSON bodies. Raises
    ValueError when a column's type or JSON path has no engine check (:meth:`build`
    returns None then)."""

    def __init__(self, datasource: Datasource) -> None:
        self.datasource = datasource
        # the last body had bad rows: list them first rather than try the clean insert
        self.expect_bad = False
        self.columns: list[Column] = list(datasource.columns)
        paths = [parse_path(c.json_path or f"$.{c.name}") for c in self.columns]
        for col, steps in zip(self.columns, paths, strict=True):
            if not steps or not isinstance(steps[0], str) or not _KEY.fullmatch(steps[0]):
                raise ValueError(f"no engine check for the JSON path of '{col.name}'")
        # staged keys: a column read from a top-level key alone takes its DEFAULT there
        # (an absent key reads as the default's text, a null as NULL)
        self.keys: dict[str, str] = {}
        for col, steps in zip(self.columns, paths, strict=True):
            own = len(steps) == 1 and sum(p[0] == steps[0] for p in paths) == 1
            if col.default is not None and len(steps) == 1 and not own:
                raise ValueError(f"'{col.name}' shares its key and has a default")
            if col.default is not None and own:
                if _refers(col.default, {c.name for c in self.columns} | {p[0] for p in paths}):
                    raise ValueError(f"the default of '{col.name}' reads other columns")
                self.keys[steps[0]] = f" DEFAULT toString(({col.default}))"
            else:
                self.keys.setdefault(steps[0], "")
        inner: list[str] = []  # per column: __r_i (text), __v_i (typed), __b_i (bad)
        outer: list[str] = []  # per column: the value stored, as the column's type
        for i, (col, steps) in enumerate(zip(self.columns, paths, strict=True)):
            base, nullable = unwrap(col.type)
            r, v = f"__r_{i}", f"__v_{i}"
            typed = _typed(base, r)
            if typed is None:
                raise ValueError(f"no engine check for {col.type}")
            value, extra = typed
            extra = f"ifNull({extra}, 0)" if extra else ""
            inner.append(f"{_staged(steps)} AS {r}")
            stored = v if nullable else f"assumeNotNull({v})"
            if len(steps) == 1:  # functions of NULL are NULL: null and absent need no test
                inner.append(f"{value} AS {v}")
                bad = [f"{r} IS NOT NULL AND {v} IS NULL" if nullable else f"{v} IS NULL", extra]
            else:  # an absent nested key reads as the MISSING marker
                inner.append(f"if({r} IS NULL OR {r} = {_M}, NULL, {value}) AS {v}")
                missing_ok = col.default is not None or nullable
                bad = [
                    f"{r} IS NULL" if not nullable else "",
                    f"{r} = {_M}" if not missing_ok else "",
                    f"({r} != {_M} AND {v} IS NULL)",
                    f"({r} != {_M} AND {extra})" if extra else "",
                ]
                if col.default is not None:
                    stored = f"if({r} = {_M}, ({col.default}), {stored})"
            # ifNull: a comparison with a JSON null is NULL, and a NULL there is "not bad"
            inner.append(f"ifNull({' OR '.join(b for b in bad if b)}, 0) AS __b_{i}")
            outer.append(f"CAST({stored} AS {col.type}) AS {_ident(col.name)}")
        self.listed = ", ".join(_ident(c.name) for c in self.columns)
        self.structure = quote_string(
            ", ".join(f"{_ident(k)} Nullable(String){d}" for k, d in self.keys.items())
        )
        self._inner = ", ".join(inner)
        self._outer = ", ".join(outer)
        self._bad = " OR ".join(f"__b_{i}" for i in range(len(self.columns)))
        self._failed = (
            "arrayFilter(x -> x >= 0, ["
            + ", ".join(f"if(__b_{i}, {i}, -1)" for i in range(len(self.columns)))
            + "])"
        )

    @classmethod
    def build(cls, datasource: Datasource) -> TypedInsert | None:
        """The datasource's engine checks, or None when some column needs Python's."""
        try:
            return cls(datasource)
        except ValueError:
            return None

    def _source(self, body: str) -> str:
        tag = "rtp"
        while f"${tag}$" in body:
            tag += "x"
        return f"format(JSONEachRow, {self.structure}, ${tag}${body}${tag}$)"

    def insert_sql(self, body: str, *, checked: bool) -> str:
        """``INSERT ... SELECT`` of the good rows of ``body``. Unless ``checked`` (the
        bad rows were listed first), a bad row raises FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        and nothing is stored."""
        where = f"NOT ({self._bad})" if checked else f"throwIf({self._bad}, '{BAD_ROWS}') = 0"
        return (
            f"INSERT INTO {_ident(self.datasource.name)} ({self.listed}) "
            f"SELECT {self._outer} FROM (SELECT {self._inner} FROM {self._source(body)}) "
            f"WHERE {where}"
        )

    def bad_rows_sql(self, body: str) -> str:
        """One row: how many rows the engine read, and each bad row's number (0-based,
        in body order) with the indexes of its failing columns (listed for bad rows
        only: ``if`` skips the others)."""
        return (
            "SELECT count(), groupArrayIf((__n, __f), __bad) FROM ("
            f"SELECT rowNumberInAllBlocks() AS __n, ({self._bad}) AS __bad, "
            f"if(__bad, {self._failed}, []) AS __f "
            f"FROM (SELECT {self._inner} FROM {self._source(body)}))"
        )


def _refers(sql: str, names: set[str]) -> bool:
    """Whether the expression ``sql`` may name one of ``names`` (a word of the same
    spelling, even in a string: then the engine checks are not used, never wrong)."""
    return any(w in names for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))


def _staged(steps: tuple) -> str:
    """The text of the value at a JSON path, from its staged top-level key: NULL for a
    JSON null, strings unquoted, other values as JSON. A top-level key is the staged
    column (absent: NULL, or its default); a nested one is the MISSING marker when
    absent."""
    key = _ident(steps[0])
    if len(steps) == 1:
        return key
    args = ", ".join(str(s + 1) if isinstance(s, int) else quote_string(s) for s in steps[1:])
    return (
        f"if({key} IS NULL OR {key} = {_M} OR NOT JSONHas({key}, {args}), {_M}, "
        f"multiIf(JSONType({key}, {args}) = 'Null', NULL, "
        f"JSONType({key}, {args}) = 'String', JSONExtractString({key}, {args}), "
        f"JSONExtractRaw({key}, {args})))"
    )
