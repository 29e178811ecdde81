"""The engine's own checks: NDJSON bodies go to ClickHouse as they came, typed per column
there, and rows that fail a cast or lack a required value are found by the engine.

One datasource's :class:`TypedInsert` compiles, once, the SQL that reads a body with
``format(JSONEachRow, '<staging>', $rtp$<body>$rtp$)``: every top-level key a column's
JSON path starts at is read as ``Nullable(String)`` (numbers, booleans, objects and
arrays as their JSON text; a null as NULL; an absent key as NULL, or as the column's
DEFAULT when it has one), then each column is cast with the ``...OrNull`` functions
(``accurateCastOrNull``, ``toDateTime64OrNull``, ``parseDateTime64BestEffortOrNull``,
``toUUIDOrNull``) and checked against its type's range. Python never parses a good row.
Each sub-expression is written once, under an alias: the statement is planned for every
batch, and the analyzer's cost grows with the functions it reads.

:func:`rtp.ingest.bodies.insert_bodies` runs it: one ``INSERT ... SELECT`` that refuses
the whole body (nothing stored) when any row is bad (``throwIf``, or the INSERT's cast of
a NULL); only then the body is read into a temporary table (:meth:`TypedInsert.stage_sql`)
that lists the bad rows (row number, failing columns) and from which a second ``INSERT``
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
# an insert's own: a NULL for a non-Nullable column is refused, not made its default
# (the rows that hold one are bad; and the default's conversions cost ~2 ms a statement)
INSERT_SETTINGS = {"insert_null_as_default": 0}
# the engine's ranges (rtp.ingest.checks._RANGES): outside them ClickHouse would clamp
_TIME_RANGES = {
    "DateTime": ("1970-01-01 00:00:00", "2106-02-07 06:28:15"),
    "DateTime64": ("1900-01-01 00:00:00", "2299-12-31 23:59:59.999999"),
}
_DATE_RANGES = {"Date": ("1970-01-01", "2149-06-06"), "Date32": ("1900-01-01", "2299-12-31")}
_INF = "('inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity', 'nan', '+nan', '-nan')"


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _typed(base: str, r: str, a) -> tuple[str, str] | None:
    """(value expression, extra failure condition) casting the staged text ``r`` to
    ``base`` (a type without Nullable/LowCardinality), or None when rtp has no engine
    check for it. The value is NULL when the text can't be read as the type (or ``r`` is
    NULL: functions of NULL are NULL), and so is the extra condition then. ``a(x)`` names
    the column's aliases: each sub-expression is written once (the analyzer plans every
    function node it reads, ~0.1-0.2 ms each); the extra condition reads the value as
    ``a('v')``. Each reads the common spelling with the cheapest function first and
    tries the others only for the rows it refused (``if`` runs a branch only there)."""
    name = base.split("(", 1)[0]
    f, v = a("f"), a("v")
    if name == "String":
        return r, ""
    if name in INT_RANGES and not re.search(r"(128|256)$", name):
        # "12", and also 12.0 and " 12 " (as the Python checks read them)
        slow = f"accurateCastOrNull(replaceRegexpOne(trimBoth({r}), '\\\\.0*$', ''), '{name}')"
        return f"if(isNull(accurateCastOrNull({r}, '{name}') AS {f}), {slow}, {f})", ""
    if name in ("Float32", "Float64"):
        slow = f"accurateCastOrNull(trimBoth({r}), '{name}')"
        # "1e999" overflows to inf: a producer's bug, not an infinity it meant
        return (
            f"if(isNull(accurateCastOrNull({r}, '{name}') AS {f}), {slow}, {f})",
            f"isInfinite({v}) AND lower(trimBoth({r})) NOT IN {_INF}",
        )
    if name in ("Bool", "Boolean"):
        low = a("l")
        return (
            f"multiIf((lower({r}) AS {low}) IN ('true', '1'), true, "
            f"{low} IN ('false', '0'), false, NULL)"
        ), ""
    if name == "UUID":
        return f"if(isNull(toUUIDOrNull({r}) AS {f}), toUUIDOrNull(trimBoth({r})), {f})", ""
    if name in _DATE_RANGES:
        lo, hi = _DATE_RANGES[name]
        day = a("d")
        # Date32 clamps what it can't hold: the day must read back as it was written
        return (
            f"accurateCastOrNull(substring(trimBoth({r}), 1, 10) AS {day}, 'Date32')",
            f"toString({v}) != {day} OR {v} < toDate32('{lo}') OR {v} > toDate32('{hi}')",
        )
    if name in _TIME_RANGES:
        m = re.fullmatch(r"DateTime(?:64)?\s*\(\s*(?:\d+\s*,\s*)?'([^']*)'\s*\)", base)
        tz = f", {quote_string(m.group(1))}" if m else ""
        lo, hi = _TIME_RANGES[name]
        s = a("s")
        # 'YYYY-MM-DD hh:mm:ss[.f]' and Unix seconds read by the plain parser first;
        # then other numbers as Unix seconds (the Python checks' reading: "17" is 17 s,
        # not the 17th), and other text (ISO 8601's T, offsets) by the best-effort one
        slow = (
            f"if(isNull(toFloat64OrNull({r}) AS {s}), "
            f"parseDateTime64BestEffortOrNull(trimBoth({r}), 6{tz}), "
            f"if({s} BETWEEN -2208988800 AND 10413791999, toDateTime64({s}, 6{tz}), NULL))"
        )
        return (
            f"if(isNull(toDateTime64OrNull({r}, 6{tz}) AS {f}), {slow}, {f})",
            f"{v} < toDateTime64('{lo}', 6, 'UTC') OR {v} > toDateTime64('{hi}', 6, 'UTC')",
        )
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
                self.keys[steps[0]] = f" DEFAULT {_default_text(col.default)}"
            else:
                self.keys.setdefault(steps[0], "")
        # the aliases' prefix: no staged key may be read as one of them
        p = "__"
        while any(k.startswith(p) for k in self.keys):
            p += "_"
        bads: list[str] = []  # per column: when its row is bad (NULL: not bad)
        # what the clean attempt tests: not a non-Nullable column's NULL (the INSERT's
        # own cast refuses it, insert_null_as_default = 0)
        self._attempt: list[str] = []
        self._defs: list[str] = []  # per column: its value's expression, aliased v
        self._stored: list[str] = []  # per column: what is stored (the INSERT casts it)
        self._staged_r: list[str] = []  # the staged texts ``stored`` reads beside v
        for i, (col, steps) in enumerate(zip(self.columns, paths, strict=True)):
            base, nullable = unwrap(col.type)

            def a(x: str, i: int = i) -> str:
                return f"{p}{x}_{i}"

            if len(steps) == 1:  # the staged key: functions of NULL are NULL
                r = _ident(steps[0])
                text = r
            else:  # an absent nested key reads as the MISSING marker, cast as NULL
                r, text = a("r"), a("x")
            typed = _typed(base, text, a)
            if typed is None:
                raise ValueError(f"no engine check for {col.type}")
            value, extra = typed
            if text != r:  # defined where the value first reads it
                value = _define(value, text, f"nullIf({_staged(steps, a)} AS {r}, {_M})")
            v = a("v")
            if len(steps) == 1:  # null or absent (no default): NULL
                null = "" if nullable and value == r else f"isNull({v})"
                if nullable and null:  # a Nullable column's NULL is fine; a value must read
                    null = f"isNotNull({r}) AND {null}"
            elif col.default is None and not nullable:  # null, absent or unreadable
                null = f"isNull({v})"
            elif nullable:  # null or absent is fine (absent: the default); a value must read
                null = f"{r} != {_M} AND isNull({v})"
            else:  # absent takes the default; null is bad
                null = f"isNull({r}) OR {r} != {_M} AND isNull({v})"
            self._defs.append(value)
            stored = v  # what the INSERT reads, in terms of the aliases
            if len(steps) > 1 and col.default is not None:
                stored = f"if({r} = {_M}, ({col.default}), {v})"
                self._staged_r.append(r)
            self._stored.append(stored)
            bads.append(" OR ".join(f"({b})" if " OR " in b else b for b in (null, extra) if b))
            self._attempt += [b for b in (null if nullable else "", extra) if b]
        self.listed = ", ".join(_ident(c.name) for c in self.columns)
        self.structure = quote_string(
            ", ".join(f"{_ident(k)} Nullable(String){d}" for k, d in self.keys.items())
        )
        self._p = p
        self._bads = bads
        self._values = ", ".join(
            _define(out, f"{p}v_{i}", d)
            for i, (out, d) in enumerate(zip(self._stored, self._defs, strict=True))
        )

    @classmethod
    def build(cls, datasource: Datasource) -> TypedInsert | None:
        """The datasource's engine checks, or None when some column needs Python's."""
        try:
            return cls(datasource)
        except ValueError:
            return None

    def _around(self, parts: list[str]) -> tuple[str, str]:
        """The text before and after the NDJSON ``parts`` (each ending with a newline):
        ``format(...)`` with the parts dollar-quoted by a tag none of them holds."""
        tag = "rtp"
        while any("$" in p and f"${tag}$" in p for p in parts):  # most hold no "$" (memchr)
            tag += "x"
        return f"format(JSONEachRow, {self.structure}, ${tag}$", f"${tag}$)"

    def insert_sql(self, parts: list[str], settings: str = "") -> str:
        """``INSERT ... SELECT`` of the NDJSON ``parts`` when they have no bad row, to
        run with :data:`INSERT_SETTINGS` (``settings``: the statement's SETTINGS clause).
        A bad row raises FUNCTION_THROW_IF_VALUE_IS_NON_ZERO or (a NULL for a
        non-Nullable column: the INSERT casts each value to its column's type, by
        position) CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN, and nothing is stored."""
        # ifNull: a comparison with a NULL (a JSON null, a value that didn't read) is
        # NULL, and a NULL there is "not bad"
        bad = f"ifNull({' OR '.join(self._attempt)}, 0)" if self._attempt else ""
        head, tail = self._around(parts)
        where = f" WHERE throwIf({bad}, '{BAD_ROWS}') = 0" if bad else ""
        return _around_parts(
            f"INSERT INTO {_ident(self.datasource.name)} ({self.listed}) "
            f"SELECT {self._values} FROM {head}",
            parts,
            tail + where + settings,
        )

    def stage_sql(self, parts: list[str], table: str, settings: str = "") -> str:
        """``CREATE TEMPORARY TABLE`` of the NDJSON ``parts`` read once (a body with bad
        rows would otherwise be read twice: to list them, and to insert the others): per
        row its number (0-based, in order, with ``max_threads = 1``), each column's value
        and failure flag, and whether it is bad."""
        p, n = self._p, len(self._bads)
        flags = [f"({b or '0'}) AS {p}b_{i}" for i, b in enumerate(self._bads)]
        bad = " OR ".join(f"{p}b_{i}" for i in range(n))
        head, tail = self._around(parts)
        return _around_parts(
            f"CREATE TEMPORARY TABLE {table} ENGINE = Memory AS "
            f"SELECT rowNumberInAllBlocks() AS {p}n, "
            + ", ".join(f"{d} AS {p}v_{i}" for i, d in enumerate(self._defs))
            + "".join(f", {r}" for r in self._staged_r)
            + f", {', '.join(flags)}, ifNull({bad}, 0) AS {p}bad FROM {head}",
            parts,
            tail + settings,
        )

    def listing_sql(self, table: str) -> str:
        """One row of a :meth:`stage_sql` table: how many rows the engine read, and each
        bad row's number with one flag per column (true: the column failed)."""
        p, n = self._p, len(self._bads)
        flags = ", ".join(f"{p}b_{i}" for i in range(n))
        return f"SELECT count(), groupArrayIf(({p}n, [{flags}]), {p}bad) FROM {table}"

    def insert_staged_sql(self, table: str) -> str:
        """``INSERT ... SELECT`` of the good rows of a :meth:`stage_sql` table."""
        return (
            f"INSERT INTO {_ident(self.datasource.name)} ({self.listed}) "
            f"SELECT {', '.join(self._stored)} FROM {table} WHERE NOT {self._p}bad"
        )


def _around_parts(head: str, parts: list[str], tail: str) -> str:
    """One string, the body's text copied once (bodies run to megabytes, and each
    fresh copy of them costs ~1 ms a megabyte here)."""
    return "".join([head, *parts, tail])


def _define(sql: str, alias: str, expression: str) -> str:
    """``sql`` with its first reference to ``alias`` made its definition (an alias is
    read anywhere in its SELECT once defined anywhere there, and planned once)."""
    return re.sub(rf"\b{alias}\b", lambda _: f"({expression} AS {alias})", sql, count=1)


def _default_text(default: str) -> str:
    """The staged text of a column's DEFAULT: a string or integer literal as itself,
    anything else as the engine writes its value."""
    if re.fullmatch(r"'(?:[^'\\]|\\.)*'|0|-?[1-9][0-9]*", default.strip()):
        d = default.strip()
        return d if d.startswith("'") else f"'{d}'"
    return f"toString(({default}))"


def _refers(sql: str, names: set[str]) -> bool:
    """Whether the expression ``sql`` may name one of ``names`` (a word of the same
    spelling, even in a string: then the engine checks are not used, never wrong)."""
    return any(w in names for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))


def _staged(steps: tuple, a) -> str:
    """The text of the value at a nested JSON path, from its staged top-level key: NULL
    for a JSON null, strings unquoted, other values as JSON; the MISSING marker when
    absent. ``a(x)``: the column's aliases."""
    key = _ident(steps[0])
    args = ", ".join(str(s + 1) if isinstance(s, int) else quote_string(s) for s in steps[1:])
    return (
        f"if({key} IS NULL OR {key} = {_M} OR NOT JSONHas({key}, {args}), {_M}, "
        f"multiIf((JSONType({key}, {args}) AS {a('j')}) = 'Null', NULL, "
        f"{a('j')} = 'String', JSONExtractString({key}, {args}), "
        f"JSONExtractRaw({key}, {args})))"
    )
