"""Run an endpoint: check the caller's parameters, compose the pipe, let the engine
format the answer. The server and ``rtp test`` both call :func:`run_pipe`.

The engine produces the response body itself (``FORMAT JSON`` already has Tinybird's
``meta``/``data``/``rows``/``rows_before_limit_at_least``/``statistics`` shape), so the
bytes pass through untouched; a server backend builds the same shapes from its rows
(:mod:`rtp.engine.formats`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rtp.engine import Backend, QueryError, nested
from rtp.engine.limits import LIMIT_ERRORS, TIMEOUT_EXCEEDED, Limits
from rtp.errors import EngineError, RequestError, SqlError
from rtp.project.model import Cache
from rtp.query.cache import ResultCache, answer_key, node_key, node_literal
from rtp.query.over import over_result
from rtp.sql.compose import CompiledProject
from rtp.sql.dependence import parameter_read
from rtp.sql.params import Param, coerce
from rtp.sql.rename import rename_tables

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
    cache: ResultCache | None = None,
    tables: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """The endpoint ``pipe``'s answer to ``raw_params`` as (body, media type); with
    ``q``, the answer of that SQL over the pipe's result as ``_`` (see
    :mod:`rtp.query.over`; ``admin`` lifts its read-only-``_`` limit). ``tables``: the
    datasources read under other names (a staged version, see rtp.sql.rename).

    ``limits`` (the server's): the query runs read-only under them; else ``timeout``
    seconds bound it (``rtp test``). ``cache`` (the server's): answers and node results
    are reused as the project's ``cache`` settings say (:mod:`rtp.query.cache`).

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
    if tables or (cache is not None and cache.build is not None and cache.build is not compiled):
        cache = None  # a staged version, or the project was swapped meanwhile: not its cache
    spec = compiled.pipes[pipe].pipe.cache
    if cache is not None and spec is not None and not q:
        body = cache.get(
            answer_key(pipe, fmt, values),
            spec.ttl,
            lambda: _answer(compiled, backend, pipe, values, fmt, None, timeout, limits, cache),
            (pipe, ""),
        )
    else:
        body = _answer(
            compiled, backend, pipe, values, fmt, q, timeout, limits, cache, admin, tables
        )
    return body, FORMATS[fmt][1]


def cached_answer(
    compiled: CompiledProject,
    cache: ResultCache,
    pipe: str,
    raw_params: dict,
    fmt: str = "json",
    fixed_params: dict | None = None,
) -> tuple[bytes, str] | None:
    """The endpoint's answer when its ``cache`` holds a fresh one for these values (a hit,
    counted), else None: cheap enough to try before handing the call to a worker thread.
    Raises RequestError as :func:`run_pipe` does for an unknown pipe or a bad value."""
    spec = compiled.pipes[pipe].pipe.cache if pipe in compiled.pipes else None
    if spec is None or fmt not in FORMATS or cache.build not in (None, compiled):
        return None
    values = coerce_params(endpoint_params(compiled, pipe), raw_params, fixed_params)
    body = cache.hit(answer_key(pipe, fmt, values), (pipe, ""))
    return None if body is None else (body, FORMATS[fmt][1])


def _answer(
    compiled: CompiledProject,
    backend: Backend,
    pipe: str,
    values: dict,
    fmt: str,
    q: str | None,
    timeout: float | None,
    limits: Limits | None,
    cache: ResultCache | None,
    admin: bool = False,
    tables: dict[str, str] | None = None,
) -> bytes:
    """The body of :func:`run_pipe`'s answer, run on the engine."""
    cached = None
    if cache is not None:
        cached = node_results(compiled, backend, cache, limits or _limits(timeout))
    sql = compiled.compose(pipe, values, cached=cached, nested=nested(backend)).sql
    if tables:
        sql = rename_tables(sql, tables)
    if q:
        sql = over_result(q, sql, admin=admin)
    # max_query_size: long parameter values may push the statement past ClickHouse's
    # 256 KiB parser limit.
    settings: dict[str, Any] = {"max_query_size": len(sql.encode()) + 4096}
    try:
        if limits is not None:
            return read(backend, sql, fmt, limits, settings)
        # A second SETTINGS clause is valid after the user's own.
        if timeout:
            settings["max_execution_time"] = float(timeout)
        sql += "\nSETTINGS " + ", ".join(f"{k} = {v!r}" for k, v in settings.items())
        return backend.query_bytes(sql, FORMATS[fmt][0])
    except QueryError as exc:
        raise refused(exc, timeout or (limits.deadline if limits else 0)) from None


def _limits(timeout: float | None) -> Limits:
    return Limits(deadline=timeout) if timeout else Limits()


def node_results(
    compiled: CompiledProject, backend: Backend, cache: ResultCache, limits: Limits
) -> Callable[[str, str], str | None]:
    """``compose``'s ``cached`` hook: a cached node's result as a literal statement,
    computed (under ``limits``) when missing or past its ttl, None when too large to
    substitute. A node is computed from its own SQL, with the cached nodes it reads
    substituted in turn."""

    specs = _cached_nodes(compiled)

    def lookup(pipe: str, node: str, computing: tuple[str, str] | None = None) -> str | None:
        spec = specs.get((pipe, node))
        if spec is None or (pipe, node) == computing:
            return None  # not cached, or being computed: it runs its own SQL

        def compute() -> str | None:
            sql = compiled.compose(
                pipe,
                {},
                node,
                cached=lambda p, n: lookup(p, n, (pipe, node)),
                nested=nested(backend),
            ).sql
            settings = {"max_query_size": len(sql.encode()) + 4096}
            try:
                return node_literal(lambda text: backend.query(text, limits, settings), sql)
            except QueryError as exc:
                raise refused(exc, limits.deadline) from None

        return cache.get(node_key(pipe, node), spec.ttl, compute, (pipe, node))

    return lookup


def _cached_nodes(compiled: CompiledProject) -> dict[tuple[str, str], Cache]:
    """(pipe, node) -> the node's ``cache`` setting, computed once per compiled project.
    A node that reads a request parameter is left out (``rtp check`` refuses it, RTP310;
    ``rtp serve`` serves what is deployed without checking again): its result is never
    shared between callers."""
    found = compiled.__dict__.get("_cached_nodes")
    if found is None:
        found = compiled.__dict__["_cached_nodes"] = {
            (name, cnode.node.name): cnode.node.cache
            for name, cpipe in compiled.pipes.items()
            if name not in compiled.broken
            for index, cnode in enumerate(cpipe.nodes)
            if cnode.node.cache is not None and parameter_read(compiled, cpipe, index) is None
        }
    return found


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
