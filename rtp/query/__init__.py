"""Run an endpoint: check the caller's parameters, compose the pipe, let the engine
format the answer. The server and ``rtp test`` both call :func:`run_pipe`.

The engine produces the response body itself (``FORMAT JSON`` already has Tinybird's
``meta``/``data``/``rows``/``rows_before_limit_at_least``/``statistics`` shape), so the
bytes pass through untouched; a server backend builds the same shapes from its rows
(:mod:`rtp.engine.formats`).
"""

from __future__ import annotations

import re
from typing import Any

from rtp.engine import Backend, QueryError, nested
from rtp.engine.limits import LIMIT_ERRORS, TIMEOUT_EXCEEDED, Limits
from rtp.errors import EngineError, RequestError, SqlError
from rtp.query.over import over_result
from rtp.sql.compose import CompiledProject
from rtp.sql.params import Param, coerce

# url suffix -> (ClickHouse output format, media type)
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("JSON", "application/json"),
    "csv": ("CSVWithNames", "text/csv; charset=utf-8"),
    "ndjson": ("JSONEachRow", "application/x-ndjson"),
    "parquet": ("Parquet", "application/vnd.apache.parquet"),
}
RESERVED = ("token", "q", "format")  # query-string names that are never pipe parameters


def endpoint_params(compiled: CompiledProject, pipe: str) -> dict[str, Param]:
    """The parameters of an endpoint pipe, computed once per compiled project.

    Raises RequestError (RTP404, status 404) when ``pipe`` is not an endpoint.
    """
    cache = compiled.__dict__.setdefault("_endpoint_params", {})
    params = cache.get(pipe)
    if params is None:
        cpipe = compiled.pipes.get(pipe)
        if cpipe is None or cpipe.pipe.type != "endpoint":
            raise RequestError(
                f"there is no endpoint '{pipe}'",
                code="RTP404",
                hint="endpoints are pipes/<name>.yaml with type: endpoint",
            )
        params = cache[pipe] = compiled.params(pipe)
    return params


def coerce_params(params: dict[str, Param], raw: dict, fixed: dict | None = None) -> dict:
    """Typed values for ``raw`` (text from the URL or JSON), with ``fixed`` values
    overriding whatever the caller sent. Names the pipe doesn't take are ignored.

    Raises RequestError (RTP400) naming the parameter and its type, or (RTP401) when a
    required parameter is missing.
    """
    values = {}
    merged = {**raw, **(fixed or {})}
    for name, param in params.items():
        value = merged.get(name)
        if value is None or (value == "" and param.type != "String"):
            if param.required and param.default is None:
                raise RequestError(f"parameter '{name}' is required ({param.type})", code="RTP401")
            continue
        values[name] = coerce(param, value)
    return values


def run_pipe(
    compiled: CompiledProject,
    backend: Backend,
    pipe: str,
    raw_params: dict,
    fmt: str = "json",
    fixed_params: dict | None = None,
    *,
    timeout: float | None = None,
    limits: Limits | None = None,
    q: str | None = None,
    admin: bool = False,
) -> tuple[bytes, str]:
    """The endpoint ``pipe``'s answer to ``raw_params`` as (body, media type); with
    ``q``, the answer of that SQL over the pipe's result as ``_`` (see
    :mod:`rtp.query.over`; ``admin`` lifts its read-only-``_`` limit).

    ``limits`` (the server's): the query runs read-only under them; else ``timeout``
    seconds bound it (``rtp test``).

    Raises RequestError: 404 unknown pipe or format, 400 bad parameter or SQL the engine
    refused, RTP410 (400) over a memory or row limit; EngineError RTP507 (status 408)
    when the query ran past its deadline, RTP501 when the engine is unavailable.
    """
    if fmt not in FORMATS:
        raise RequestError(
            f"unknown format '.{fmt}'", code="RTP404", hint="use .json, .csv, .ndjson or .parquet"
        )
    params = endpoint_params(compiled, pipe)
    values = coerce_params(params, raw_params, fixed_params)
    sql = compiled.compose(pipe, values, nested=nested(backend)).sql
    if q:
        sql = over_result(q, sql, admin=admin)
    # max_query_size: long parameter values may push the statement past ClickHouse's
    # 256 KiB parser limit.
    settings: dict[str, Any] = {"max_query_size": len(sql.encode()) + 4096}
    ch_format, media_type = FORMATS[fmt]
    try:
        if limits is not None:
            return read(backend, sql, fmt, limits, settings), media_type
        # A second SETTINGS clause is valid after the user's own.
        if timeout:
            settings["max_execution_time"] = float(timeout)
        sql += "\nSETTINGS " + ", ".join(f"{k} = {v!r}" for k, v in settings.items())
        return backend.query_bytes(sql, ch_format), media_type
    except QueryError as exc:
        raise refused(exc, timeout or (limits.deadline if limits else 0)) from None


# Parts of ClickHouse's messages that quote the statement (or an expression of it with
# its literals): "In scope SELECT ...", "While processing ...", "while executing
# 'FUNCTION ...'", "(in query: ...)", a syntax error's echo of the text after the position.
_QUOTES_SQL = re.compile(
    r"[\s:.,]*(?:\bIn scope\b|\bwhile (?:processing|executing)\b|"
    r"\(in query:|Stack trace).*",
    re.I | re.S,
)


def public_detail(detail: str) -> str:
    """ClickHouse's message without the statement text it quotes: what went wrong, the
    column, function or setting it names, the engine's suggestions ("Maybe you meant"),
    but not the composed SQL (an endpoint's nodes are not its callers' to read)."""
    if "failed at position" in detail:
        head, _, tail = detail.partition("failed at position")
        expected = tail.rfind("Expected one of:")
        position = re.match(r"\s*\d+", tail)
        detail = (
            head
            + "failed at position"
            + (position.group(0) if position else "")
            + (". " + tail[expected:] if expected >= 0 else "")
        )
        return detail.strip()
    return _QUOTES_SQL.sub("", detail).strip() or "the message quotes the query"


def engine_refusal(exc: QueryError, *, reveal: bool = False) -> SqlError:
    """RTP304 for a query the engine refused. ClickHouse's error name and message,
    without the statement's text unless ``reveal`` (an ADMIN's own query)."""
    if reveal:
        return SqlError(f"the engine refused the query: {exc.detail}", code="RTP304")
    name = f" ({exc.ch_name})" if exc.ch_name else ""
    return SqlError(
        f"the engine refused the query: {public_detail(exc.detail)}{name}", code="RTP304"
    )


def read(
    backend: Backend, sql: str, fmt: str, limits: Limits, settings: dict[str, Any] | None = None
) -> bytes:
    """A caller's query ``sql`` run read-only under ``limits``, as ``fmt`` bytes.
    Raises QueryError."""
    return backend.query_bytes(sql, FORMATS[fmt][0], limits, settings)


def refused(exc: QueryError, deadline: float, *, reveal: bool = False):
    """The error a caller sees for a query the engine refused: RTP507 (408) past the
    deadline, RTP410 (400) over a limit, RTP304 (400) otherwise."""
    if exc.ch_code == TIMEOUT_EXCEEDED or exc.ch_name == "TIMEOUT_EXCEEDED":
        return EngineError(
            f"the query took longer than {deadline:g} s",
            code="RTP507",
            hint="narrow the parameters or read a materialized view",
        )
    if exc.ch_code in LIMIT_ERRORS:
        return RequestError(
            f"the query went over {LIMIT_ERRORS[exc.ch_code]}: "
            f"{exc.detail if reveal else public_detail(exc.detail)}",
            code="RTP410",
            hint="read less: narrow the filters, or aggregate first",
        )
    return engine_refusal(exc, reveal=reveal)
