"""``GET /v0/sql?q=`` and ``POST /v0/sql``: a read-only query on the project's engine
(Tinybird's Query API; ``rtp sql`` uses it while a server holds the embedded database).

Only SELECT / WITH / SHOW / DESCRIBE / EXPLAIN / EXISTS run here; anything else is a 400
(changes go through ``/v0/deploy`` and ``/v0/events``). An ADMIN token may read anything;
other tokens need ``DATASOURCES:READ`` on every table the query reads, and may read
nothing but the project's tables (no table functions, no ``system.*``).
``format`` is ``json`` (default, ClickHouse's JSON: ``meta``, ``data``, ``rows``,
``statistics``), ``csv``, ``ndjson`` or ``parquet``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import sqlglot
from fastapi import APIRouter, Request, Response
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from rtp.engine import QueryError
from rtp.engine.limits import Limits
from rtp.errors import RequestError
from rtp.server.events import read_body
from rtp.server.query import FORMATS, read, refused
from rtp.sql.analysis import analyze

router = APIRouter()

READ_ONLY = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")
_COMMENTS = re.compile(r"\s*(--[^\n]*\n?|/\*.*?\*/)", re.S)
_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.I)


def _first_word(sql: str) -> str:
    head = _COMMENTS.sub(" ", sql).lstrip(" (\n\t")
    return head.split(None, 1)[0].upper() if head.strip() else ""


def check_read_only(sql: str) -> str:
    """The statement without a trailing ``;``. Raises RequestError (RTP400) when it is
    empty, more than one statement, or not a read-only statement."""
    text = sql.strip().rstrip(";").strip()
    word = _first_word(text)
    if not word:
        raise RequestError("the query is empty", code="RTP400", hint="pass ?q=SELECT ...")
    query = True
    if word in ("SELECT", "WITH"):
        facts = analyze(text)  # sqlglot knows queries; SHOW, EXPLAIN ... it can't parse
        single = facts.statements == 1 if facts.parsed else ";" not in text
        query = facts.is_query if facts.parsed else True
    else:
        single = ";" not in text
    if not single:
        raise RequestError("send one statement at a time", code="RTP400")
    if word not in READ_ONLY or not query or _OUTFILE.search(text):
        raise RequestError(
            f"only read-only statements run through /v0/sql, not {word}", code="RTP400",
            hint="SELECT, WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS; change tables with "
            "`rtp deploy` and add rows with POST /v0/events")
    return text


def tables_read(sql: str) -> list[str] | None:
    """The plain tables a read-only statement reads (its CTEs left out), or None when
    it reads anything else (a table function, another database) or isn't a query
    sqlglot can read."""
    if _first_word(sql) not in ("SELECT", "WITH"):
        return None
    try:
        trees = [t for t in sqlglot.parse(sql, read="clickhouse") if t is not None]
    except (ParseError, TokenError, ValueError):
        return None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        return None
    tree = trees[0]
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    names: list[str] = []
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or not isinstance(table.this, exp.Identifier):
            return None
        if table.name not in ctes and table.name not in names:
            names.append(table.name)
    return sorted(names)


def authorize(state, request: Request, sql: str) -> None:
    """ADMIN, or DATASOURCES:READ on every datasource the query reads. Raises
    RequestError 403 (RTP403) otherwise."""
    tables = tables_read(sql)
    if tables is None or any(t not in state.project.datasources for t in tables):
        # only an ADMIN token reads beyond the project's datasources
        grant = state.authorize(request, "DATASOURCES:READ", "*")
        if "ADMIN" not in grant.scopes:
            raise RequestError(f"the token '{grant.name}' may read the project's "
                               "datasources only", code="RTP403", status=403,
                               hint="use an ADMIN token for other tables, table "
                               "functions, SHOW or DESCRIBE")
        return
    first, *rest = tables or ["*"]
    grant = state.authorize(request, "DATASOURCES:READ", first)
    for name in rest:
        if not grant.allows("DATASOURCES:READ", name):
            raise RequestError(f"the token '{grant.name}' has no DATASOURCES:READ scope on "
                               f"'{name}'", code="RTP403", status=403,
                               hint=f"create one with --scope DATASOURCES:READ:{name}")


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
                raise RequestError('the JSON body must be {"q": "...", "format": "..."}',
                                   code="RTP407")
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


def _run(backend, sql: str, fmt: str, deadline: float, limits: Limits) -> bytes:
    try:
        return read(backend, sql, fmt, limits)
    except QueryError as exc:
        raise refused(exc, deadline) from None


async def run_sql(request: Request) -> Response:
    started = time.monotonic()  # the deadline counts from here
    state = request.app.state.rtp
    query, fmt = await _request_values(request)
    if fmt not in FORMATS:
        raise RequestError(f"unknown format '{fmt}'", code="RTP400",
                           hint="format: json, csv, ndjson or parquet")
    sql = check_read_only(query)
    authorize(state, request, sql)
    admin = "ADMIN" in state.grant_of(request).scopes
    limits = state.settings.limits(admin=admin, callers_sql=True)
    body = await state.run_query(_run, state.backend, sql, fmt, limits.deadline, limits=limits,
                                 started=started)
    return Response(body, media_type=FORMATS[fmt][1])


router.add_api_route("/v0/sql", run_sql, methods=["GET", "POST"])
