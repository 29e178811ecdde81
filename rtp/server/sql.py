"""``GET /v0/sql?q=`` and ``POST /v0/sql``: a read-only query on the project's engine
(Tinybird's Query API; ``rtp sql`` uses it while a server holds the embedded database).

One read-only statement runs here; anything else is a 400 (changes go through
``/v0/deploy`` and ``/v0/events``). An ADMIN token may run SELECT / WITH / SHOW /
DESCRIBE / EXPLAIN / EXISTS; other tokens run SELECT / WITH queries that read nothing but
the project's datasources, with ``DATASOURCES:READ`` on each (:mod:`rtp.sql.guard`
decides on the parsed statement), and see the engine's refusals without the statement.
``format`` is ``json`` (default, ClickHouse's JSON: ``meta``, ``data``, ``rows``,
``statistics``), ``csv``, ``ndjson`` or ``parquet``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from rtp.engine import QueryError
from rtp.engine.limits import Limits
from rtp.errors import RequestError
from rtp.query import FORMATS, read, refused
from rtp.server import staging
from rtp.server.http import read_body
from rtp.sql.guard import guard_query
from rtp.sql.rename import rename_tables

if TYPE_CHECKING:
    from rtp.engine import Backend

router = APIRouter()


def authorize(state, request: Request, sql: str) -> tuple[str, bool, dict]:
    """(the statement to run, whether the caller is ADMIN, its allowed output settings).
    ADMIN runs any read-only
    statement; another token runs what :func:`rtp.sql.guard.guard_query` lets through
    and needs DATASOURCES:READ on every datasource it reads.

    Raises RequestError 400 (RTP400) for a statement the caller may not send, 403
    (RTP403) for a missing token, a table or function beyond the token's scope."""
    grant = state.caller(request)
    if "ADMIN" in grant.scopes:
        verdict = guard_query(sql, admin=True, lift_settings=True)
        return verdict.sql, True, dict(verdict.settings)
    # qualified names (db.table) are refused: the project's tables are read unqualified
    verdict = guard_query(sql, admin=False, database=None, lift_settings=True)
    for name in verdict.tables:
        if name not in state.project.datasources:
            raise RequestError(
                f"'{name}' is not a datasource of the project",
                code="RTP403",
                hint="a non-admin token reads the project's datasources only",
            )
        if not grant.allows("DATASOURCES:READ", name):
            raise RequestError(
                f"the token '{grant.name}' has no DATASOURCES:READ scope on '{name}'",
                code="RTP403",
                hint=f"create one with --scope DATASOURCES:READ:{name}",
            )
    readable = [
        s.split(":", 2)[2] for s in sorted(grant.scopes) if s.startswith("DATASOURCES:READ:")
    ]
    # a query that reads no table (SELECT 1) still needs some DATASOURCES:READ scope
    resource = verdict.tables[0] if verdict.tables else (readable or ["*"])[0]
    if not grant.allows("DATASOURCES:READ", resource):
        raise RequestError(
            f"the token '{grant.name}' has no DATASOURCES:READ scope",
            code="RTP403",
            hint=f"create one with --scope DATASOURCES:READ:{resource}",
        )
    # the allowed output settings go in rtp's read-only clause (see guard._lift_settings)
    return verdict.sql, False, dict(verdict.settings)


async def _request_values(request: Request) -> tuple[str, str]:
    """(query, format) from the query string, or a POST's JSON, form or text body."""
    query = request.query_params.get("q", "")
    fmt = request.query_params.get("format", "")
    if request.method == "POST":
        body = await read_body(request, request.app.state.rtp.settings.max_body_bytes)
        kind = request.headers.get("content-type", "")
        if "json" in kind:
            try:
                data = json.loads(body or b"{}")
            except ValueError as exc:
                raise RequestError(f"the body is not JSON: {exc}", code="RTP407") from None
            if not isinstance(data, dict):
                raise RequestError(
                    'the JSON body must be {"q": "...", "format": "..."}', code="RTP407"
                )
            query = str(data.get("q") or query)
            fmt = str(data.get("format") or fmt)
        elif "x-www-form-urlencoded" in kind:  # parsed here: no python-multipart needed
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            query = (form.get("q") or [query])[0]
            fmt = (form.get("format") or [fmt])[0]
        elif body:
            try:
                query = body.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestError("the body is not UTF-8 text", code="RTP407") from None
    return query, (fmt or "json").lower()


def _run(
    backend: Backend,
    sql: str,
    fmt: str,
    deadline: float,
    limits: Limits,
    admin: bool = False,
    settings: dict | None = None,
) -> bytes:
    try:
        return read(backend, sql, fmt, limits, settings or None)
    except QueryError as exc:
        raise refused(exc, deadline, reveal=admin) from None


async def run_sql(request: Request) -> Response:
    started = time.monotonic()  # the deadline counts from here
    state = request.app.state.rtp
    query, fmt = await _request_values(request)
    if fmt not in FORMATS:
        raise RequestError(
            f"unknown format '{fmt}'", code="RTP400", hint="format: json, csv, ndjson or parquet"
        )
    sql, admin, settings = authorize(state, request, query)
    _, tables, _ = staging.choose(state, request)  # ?__stage=staging: ADMIN only
    sql = rename_tables(sql, tables)
    limits = state.settings.limits(admin=admin, callers_sql=True)
    body = await state.run_query(
        _run,
        state.backend,
        sql,
        fmt,
        limits.deadline,
        admin=admin,
        settings=settings,
        limits=limits,
        started=started,
        request=request,
    )
    return Response(body, media_type=FORMATS[fmt][1])


router.add_api_route("/v0/sql", run_sql, methods=["GET", "POST"])
