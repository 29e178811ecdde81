"""NDJSON bodies into a datasource with the engine's own checks (see typed.py).

:func:`insert_bodies` sends each body's text to ClickHouse as it came. A clean body costs
one ``INSERT ... SELECT``; a body with bad rows costs that attempt (refused whole), then
reads the body once into a temporary table of typed values and failure flags (typed.py
``stage_sql``), lists the bad rows' numbers and failing columns from it and inserts the
good rows from it; after a body with bad rows the next one skips the attempt. Python reads only the
bad rows, to write their reason (:func:`reason`), and bodies the engine can't read as
one JSON object per line (a line that is not JSON, text that is not UTF-8): those go
through :class:`~rtp.ingest.mapper.RowMapper` as before, each on its own.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from typing import TYPE_CHECKING

import orjson

from rtp.engine import QueryError, dedup_settings
from rtp.ingest.checks import RowError, show
from rtp.ingest.paths import MISSING
from rtp.ingest.typed import FORMAT_SETTINGS, INSERT_SETTINGS, TypedInsert
from rtp.ingest.writer import insert
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend
    from rtp.ingest.mapper import RowMapper
    from rtp.project.model import Datasource

# how the clean attempt refuses a body with bad rows (typed.py: a check, or the
# INSERT's cast of a NULL)
_REFUSED = ("FUNCTION_THROW_IF_VALUE_IS_NON_ZERO", "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN")
# a line the engine might read as two rows ({..}{..}, {..}, {..}); also matches inside
# strings and arrays of objects, which only sends the body the counted way
_TWO_ON_A_LINE = re.compile(rb"\}[ \t\r,]*\{")
# what the engine raises for a body it can't read as JSON objects (nothing stored then);
# other errors are raised: a failing view may have stored part of an insert already
_UNREADABLE = ("CANNOT_PARSE", "CANNOT_READ", "INCORRECT_DATA")
# the table lost a column the statement names (a version made live, or rolled back,
# while the body waited for its turn): refused before any row is stored
_TABLE_CHANGED = ("NO_SUCH_COLUMN_IN_TABLE",)


class _Unreadable(Exception):
    """The engine read the body otherwise than as one JSON object per line, or the table
    no longer has the columns the statement names: nothing was stored, and the body
    takes Python's checks."""


def engine_checks(backend: Backend, datasource: Datasource) -> TypedInsert | None:
    """``datasource``'s engine-side checks on ``backend``, or None where rows are checked
    in Python: a ClickHouse server (18.16, the one tested, lacks ``format()``,
    ``accurateCastOrNull`` and heredoc strings), or a column type or JSON path the engine
    checks don't cover (see typed.py)."""
    if getattr(backend, "name", None) != "embedded":
        return None
    typed = TypedInsert.build(datasource)
    return typed if typed is not None and _live_matches(backend, datasource) else None


def _live_matches(backend: Backend, datasource: Datasource) -> bool:
    """Whether the live table has each of the datasource's columns with its type. While
    a new version is staged the project's files may describe columns live doesn't have
    yet: those rows take Python's checks, whose insert names the columns it sends and
    leaves the rest to the table (and its forwarding view to the staged copy)."""
    _, rows = backend.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        f"AND table = {quote_string(datasource.name)}"
    )
    live = dict(rows)
    return all(live.get(c.name) == c.type for c in datasource.columns)


def shape(body: bytes) -> tuple[bytes, int] | None:
    """``body`` as lines that each hold one JSON object (``{`` to ``}``; blank lines and
    the spaces around a line dropped) and their count, or None when a line is not
    shaped like one object. Lines shaped so can't hold an object that spans lines (it
    would need ``}`` then ``{`` inside an object), so the engine reads at least one row
    per line; :data:`_TWO_ON_A_LINE` tells when it might read more."""
    if not body.endswith(b"\n"):
        body += b"\n"
    n = body.count(b"\n")
    # the common case, no line needs touching: each newline but the last between "}"
    # and "{" (one pass in C; "}\n{" can't overlap itself)
    if body.startswith(b"{") and body.endswith(b"}\n") and body.count(b"}\n{") == n - 1:
        return body, n
    lines = [line.strip() for line in body.split(b"\n")]
    lines = [line for line in lines if line]
    if not all(line[:1] == b"{" and line[-1:] == b"}" for line in lines):
        return None
    return b"".join(line + b"\n" for line in lines), len(lines)


def insert_bodies(
    backend: Backend,
    typed: TypedInsert,
    mapper: RowMapper,
    bodies: list[bytes],
    *,
    token: str | None = None,
    ensured: set | None = None,
) -> list[tuple[int, int]]:
    """Insert NDJSON ``bodies`` into ``typed``'s datasource, bad rows into its quarantine;
    returns (rows inserted, rows quarantined) per body. The good rows of all bodies the
    engine reads go in one INSERT (all or none). ``token``: as :func:`insert`'s (pass one
    body). Raises QueryError UNKNOWN_TABLE when the datasource is missing, EngineError
    when the engine fails otherwise than on the data."""
    results: list[tuple[int, int] | None] = [None] * len(bodies)
    shaped: list[tuple[int, str, int]] = []
    counted = False  # some line may hold two objects: count the rows first
    for i, body in enumerate(bodies):
        lines = shape(body)
        text = None
        if lines is not None:
            try:
                text = lines[0].decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            results[i] = _python(backend, mapper, body, token, ensured)
        elif lines[1] == 0:
            results[i] = (0, 0)
        else:
            shaped.append((i, text, lines[1]))
            counted = counted or _TWO_ON_A_LINE.search(lines[0]) is not None
    if shaped:
        try:
            counts = _engine(backend, typed, mapper, shaped, token, ensured, counted)
        except _Unreadable:
            counts = [_python(backend, mapper, bodies[i], token, ensured) for i, _, _ in shaped]
        for (i, _, _), result in zip(shaped, counts, strict=True):
            results[i] = result
    return [r if r is not None else (0, 0) for r in results]


def _python(backend, mapper, body: bytes, token, ensured) -> tuple[int, int]:
    rows, bad = mapper.map_lines(body.split(b"\n"))
    return insert(backend, mapper.datasource.name, rows, bad, ensured, token=token)


def _engine(backend, typed, mapper, shaped, token, ensured, counted) -> list[tuple[int, int]]:
    parts = [t for _, t, _ in shaped]
    sizes = [n for _, _, n in shaped]
    total = sum(sizes)
    refused = None  # the clean attempt's error
    if not typed.expect_bad and not counted:
        try:
            backend.execute(typed.insert_sql(parts, _settings(parts, token)))
            return [(n, 0) for n in sizes]
        except QueryError as exc:
            if exc.ch_name not in _REFUSED:
                _reraise(exc)
            refused = exc
    # the body read once into a table of the writer's session (all or none of it)
    stage = f"_rtp_stage_{uuid.uuid4().hex}"
    try:
        try:
            backend.execute(typed.stage_sql(parts, stage, _settings(parts, None, one_thread=True)))
            count, bad = backend.query(typed.listing_sql(stage))[1][0]
        except QueryError as exc:
            _reraise(exc)
        if int(count) != total:
            raise _Unreadable
        if refused is not None and not bad:
            # no row is bad: the refusal came from elsewhere (a materialized view's own
            # throwIf or NULL, which may have stored part of the insert already)
            raise refused
        typed.expect_bad = bool(bad)
        if len(bad) < total:
            sql = typed.insert_staged_sql(stage)
            backend.execute(sql + _clause(_insert_settings(token)))
    finally:  # a failed drop leaves a small table in the session, not an error to raise
        with contextlib.suppress(QueryError):
            backend.execute(f"DROP TEMPORARY TABLE IF EXISTS {stage}")
    lines = "".join(parts).split("\n")
    quarantined = [
        (reason(typed, mapper, lines[int(n)], [c for c, f in enumerate(flags) if f]), lines[int(n)])
        for n, flags in bad
    ]
    if quarantined:
        insert(backend, typed.datasource.name, [], quarantined, ensured, token=token)
    # each body's share, by row number
    out, start = [], 0
    numbers = sorted(int(n) for n, _ in bad)
    for n in sizes:
        nbad = sum(1 for x in numbers if start <= x < start + n)
        out.append((n - nbad, nbad))
        start += n
    return out


def _reraise(exc: QueryError) -> None:
    """Raise _Unreadable for an error reading the body or a column the table lost, else
    ``exc`` itself."""
    if (exc.ch_name or "").startswith(_UNREADABLE + _TABLE_CHANGED):
        raise _Unreadable from None
    raise exc


def reason(typed: TypedInsert, mapper: RowMapper, line: str, failed: list[int]) -> str:
    """The readable reason of a row the engine refused: the Python checks' message (per
    column: path, what was expected, what came), or, where those accept what the
    engine refused, the columns the engine named."""
    try:
        obj = (json.loads if mapper.exact else orjson.loads)(line)
    except (ValueError, RecursionError) as exc:  # as the Python path words it
        return f"not JSON: {exc}"
    try:
        mapper.map(obj)
    except RowError as exc:
        return str(exc)
    parts = []
    for i in failed:
        field, column = mapper.fields[i], typed.columns[i]
        value = field.get(obj)
        got = "nothing" if value is MISSING else show(value)
        parts.append(
            f"column '{field.name}' ({field.path}): ClickHouse can't read {got} as {column.type}"
        )
    return "; ".join(parts) or "rejected by ClickHouse"


def _settings(parts: list[str], token: str | None, *, one_thread: bool = False) -> str:
    """The statement's SETTINGS: how the body ``parts`` are read, a query size that
    holds them and the statement around them, and (inserts) :func:`_insert_settings`."""
    size = sum(map(len, parts)) + (1 << 20)
    settings: dict[str, object] = dict(FORMAT_SETTINGS, max_query_size=size)
    if one_thread:  # row numbers in body order
        settings |= {"max_threads": 1, "input_format_parallel_parsing": 0}
        return _clause(settings)
    return _clause(settings | _insert_settings(token))


def _insert_settings(token: str | None) -> dict[str, object]:
    """An insert's: NULLs refused (typed.INSERT_SETTINGS), and the deduplication token
    as the embedded backend's inserts carry it."""
    settings: dict[str, object] = dict(INSERT_SETTINGS)
    if token is not None:
        return settings | {"deduplicate_insert": "enable"} | dedup_settings(token)
    return settings | dedup_settings(uuid.uuid4().hex)  # see rtp.engine.embedded._settings


def _clause(settings: dict[str, object]) -> str:
    return " SETTINGS " + ", ".join(
        f"{k} = {quote_string(v) if isinstance(v, str) else v}" for k, v in settings.items()
    )
