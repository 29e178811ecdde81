"""Tinybird's Data Sources API on the project's datasources.

- ``GET /v0/datasources``: the datasources the token may read or append to, with their
  columns, engine and row/byte statistics (one ``system.parts`` query).
- ``GET /v0/datasources/<name>``: one of them.
- ``POST /v0/datasources?name=<ds>&mode=append|replace``: rows from a CSV, NDJSON or
  Parquet body (``format=`` or the content type), a multipart field ``csv``/``ndjson``/
  ``parquet``, or ``url=`` (http(s) only, at most ``max_body_bytes``). Rows go through
  the one ingestion path (:mod:`rtp.ingest`): bad rows land in ``<ds>_quarantine``.
  ``POST /v1/datasources/<name>/append|replace`` (Tinybird's CLI 5) is the same.
- ``POST /v0/datasources/<name>/truncate``, ``POST /v0/datasources/<name>/delete``
  (``delete_condition=``, one boolean expression over the datasource's columns).

Scopes: append needs ``DATASOURCES:APPEND:<ds>``; replace, truncate and delete need
ADMIN (Tinybird asks for ``DATASOURCES:CREATE``, a scope rtp doesn't have); reading
needs ``DATASOURCES:READ`` or ``DATASOURCES:APPEND`` on the datasource. Creating or
dropping datasources stays with deploys (``mode=create`` is refused).

Replace: the new rows are loaded into a staging table first (``CREATE TABLE .. AS``),
then, under the backend's exclusive hold, the datasource is truncated and filled from
the staging table with one ``INSERT ... SELECT`` (so materialized views reading it see
the new rows); events arriving meanwhile wait for the hold and land after.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import urllib.parse
import urllib.request
import uuid
from typing import TYPE_CHECKING

import sqlglot
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from rtp.engine import QueryError
from rtp.errors import RequestError, RtpError, SqlError
from rtp.ingest import RowMapper, by_name, insert, read_records, refused_rows
from rtp.server.http import read_body
from rtp.sql.guard import denied, function_name

if TYPE_CHECKING:
    from rtp.engine import Backend

router = APIRouter()

KINDS = ("csv", "ndjson", "parquet")
BATCH = 50_000  # rows per INSERT: well under ClickHouse's max_insert_block_size


# -- descriptions ----------------------------------------------------------------------


def datasource_info(ds, stats: dict | None = None) -> dict:
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "codec": c.codec,
            "default_value": c.default,
            "jsonpath": c.json_path,
            "nullable": c.type.startswith("Nullable("),
            "normalized_name": c.name,
            "description": c.comment,
        }
        for c in ds.columns
    ]
    engine = {
        "engine": ds.engine.type,
        "engine_sorting_key": ", ".join(ds.sorting_key) or None,
        "engine_primary_key": ", ".join(ds.primary_key) or None,
        "engine_partition_key": ds.partition_key,
        "engine_ttl": ds.ttl,
    }
    engine.update({f"engine_{k}": v for k, v in ds.engine.options})
    rows, size = (stats or {}).get(ds.name, (0, 0))
    return {
        "id": ds.name,
        "name": ds.name,
        "description": ds.description or None,
        "type": "ndjson",
        "engine": engine,
        "columns": columns,
        "schema": {"columns": columns},
        "statistics": {"row_count": rows, "bytes": size},
        "created_at": None,
        "updated_at": None,
    }


def table_stats(backend: Backend) -> dict[str, tuple[int, int]]:
    """table -> (rows, bytes) of the active parts in the current database; empty when
    the engine can't say (the listing then shows zeros)."""
    try:
        _, rows = backend.query(
            "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
            "WHERE database = currentDatabase() AND active GROUP BY table"
        )
    except RtpError:
        return {}
    return {str(t): (int(r), int(b)) for t, r, b in rows}


def _datasource(state, name: str):
    ds = state.project.datasources.get(name)
    if ds is None:
        raise RequestError(
            f"there is no datasource '{name}'",
            code="RTP404",
            hint="GET /v0/datasources lists them",
        )
    return ds


def _may_read(grant, name: str) -> bool:
    return grant.allows("DATASOURCES:READ", name) or grant.allows("DATASOURCES:APPEND", name)


@router.get("/v0/datasources")
async def list_datasources(request: Request):
    state = request.app.state.rtp
    grant = state.caller(request)
    stats = await state.run(table_stats, state.backend)
    return {
        "datasources": [
            datasource_info(ds, stats)
            for name, ds in sorted(state.project.datasources.items())
            if _may_read(grant, name)
        ]
    }


@router.get("/v0/datasources/{name}")
async def get_datasource(request: Request, name: str):
    state = request.app.state.rtp
    ds = _datasource(state, name)
    grant = state.caller(request)
    if not _may_read(grant, name):
        state.authorize(request, "DATASOURCES:READ", name)  # raises the usual 403
    return datasource_info(ds, await state.run(table_stats, state.backend))


# -- ingestion -------------------------------------------------------------------------


async def _form(request: Request, body: bytes) -> dict:
    """Fields of a urlencoded or multipart body: name -> (bytes, filename or None)."""
    kind = request.headers.get("content-type", "")
    if "x-www-form-urlencoded" in kind:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"))
        return {k: (v.encode(), None) for k, v in pairs}
    if "multipart/form-data" in kind:  # the stdlib reads it: no python-multipart needed
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + kind.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                fields[name] = (part.get_payload(decode=True) or b"", part.get_filename())
        return fields
    return {}


def _suffix_kind(name: str | None) -> str | None:
    path = (name or "").split("?")[0].lower().removesuffix(".gz")
    for kind, suffixes in (
        ("ndjson", (".ndjson", ".jsonl", ".json")),
        ("csv", (".csv",)),
        ("parquet", (".parquet",)),
    ):
        if path.endswith(suffixes):
            return kind
    return None


def _kind(request: Request, fmt: str, name_hint: str | None) -> str:
    fmt = fmt.lower()
    if fmt in KINDS:
        return fmt
    if fmt:
        raise RequestError(
            f"unknown format '{fmt}'", code="RTP400", hint="format: csv, ndjson or parquet"
        )
    kind = _suffix_kind(name_hint)
    if kind:
        return kind
    content = request.headers.get("content-type", "").lower()
    if "ndjson" in content or "jsonl" in content or "application/json" in content:
        return "ndjson"
    if "parquet" in content:
        return "parquet"
    return "csv"  # Tinybird's default


def fetch_url(url: str, limit: int) -> bytes:
    """The bytes at an http(s) ``url``. Raises RequestError 400 (RTP400) for another
    scheme, 413 (RTP405) past ``limit`` bytes, 400 (RTP407) when it can't be read."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise RequestError(f"url must be http or https, not '{scheme or url}'", code="RTP400")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - checked
            data = response.read(limit + 1)
    except (OSError, ValueError) as exc:
        raise RequestError(f"cannot fetch {url}: {exc}", code="RTP407") from None
    if len(data) > limit:
        raise RequestError(
            f"the file at url is larger than {limit} bytes",
            code="RTP405",
            hint="split it, or use rtp append",
        )
    if data[:2] == b"\x1f\x8b":
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise RequestError(f"the file at url is not valid gzip: {exc}", code="RTP407") from None
        if len(data) > limit:
            raise RequestError(
                f"the file at url is larger than {limit} bytes expanded", code="RTP405"
            )
    return data


def _load(backend: Backend, name: str, rows: list[dict], bad: list, mode: str) -> tuple[int, int]:
    """Insert mapped rows (append) or swap them in (replace); returns (ok, quarantined)."""
    if mode == "append":
        ok = quarantined = 0
        for start in range(0, max(len(rows), 1), BATCH):
            done, failed = insert(
                backend, name, rows[start : start + BATCH], bad if start == 0 else []
            )
            ok, quarantined = ok + done, quarantined + failed
        return ok, quarantined
    if getattr(backend, "cluster", None):  # a staging table here would be a Distributed one
        raise RequestError(
            "mode=replace is not supported on a cluster target",
            code="RTP400",
            hint="append with mode=append, or replace rows with a copy pipe (mode: replace)",
        )
    staging = f"{name}__rtp_replace_{uuid.uuid4().hex[:8]}"
    backend.execute(f"CREATE TABLE `{staging}` AS `{name}`")
    try:
        bad = list(bad)
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            try:
                backend.insert_json(staging, batch)
            except QueryError:  # find the refused rows; they go to the quarantine
                bad += [
                    (f"rejected by ClickHouse: {err.detail}", json.dumps(batch[i], default=str))
                    for i, err in refused_rows(backend, staging, batch)
                ]
        with backend.exclusive():
            backend.execute(f"TRUNCATE TABLE `{name}`")
            backend.execute(f"INSERT INTO `{name}` SELECT * FROM `{staging}`")
        ok = int(backend.query(f"SELECT count() FROM `{staging}`")[1][0][0])
    finally:
        backend.execute(f"DROP TABLE IF EXISTS `{staging}`")
    if bad:
        insert(backend, name, [], bad)
    return ok, len(bad)


async def _ingest(request: Request, name: str, mode: str, fmt: str) -> JSONResponse:
    state = request.app.state.rtp
    if mode == "create":
        raise RequestError(
            "datasources are created by deploys, not through this API",
            code="RTP400",
            hint="add datasources/<name>.yaml and run `rtp deploy`; then append with mode=append",
        )
    if mode not in ("append", "replace"):
        raise RequestError(f"unknown mode '{mode}'", code="RTP400", hint="mode: append or replace")
    if not name:
        raise RequestError("pass ?name=<datasource>", code="RTP400")
    ds = _datasource(state, name)
    if mode == "append":
        state.authorize(request, "DATASOURCES:APPEND", name)
    else:
        grant = state.authorize(request, "DATASOURCES:APPEND", name)
        if "ADMIN" not in grant.scopes:
            raise RequestError(
                f"the token '{grant.name}' may append to '{name}' but not replace its rows",
                code="RTP403",
                hint="replace, truncate and delete need an ADMIN token",
            )
    limit = state.settings.max_body_bytes
    body = await read_body(request, limit)
    form = await _form(request, body)
    url = request.query_params.get("url") or (form["url"][0].decode() if "url" in form else None)
    hint = url
    if url:
        data = await state.run(fetch_url, url, limit)
    elif any(k in form for k in KINDS):
        field = next(k for k in KINDS if k in form)
        data, filename = form[field]
        # the file's extension before the field's name: Tinybird's TypeScript SDK sends
        # every file, NDJSON and Parquet too, as the field "csv"
        hint = filename if _suffix_kind(filename) else f"x.{field}"
    elif form:
        raise RequestError(
            "send the rows as the body, as a csv/ndjson/parquet form field, or url=", code="RTP407"
        )
    else:
        data = body
    kind = _kind(request, fmt, hint)
    mapper = RowMapper(ds, by_name=by_name(kind))
    try:
        records = list(read_records(data, kind, exact=mapper.exact))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"cannot read the {kind} data: {exc}", code="RTP407") from None
    except RtpError as exc:  # unreadable Parquet
        raise RequestError(exc.message, code="RTP407") from None
    rows, bad = await state.run(mapper.map_records, records)
    try:
        ok, quarantined = await state.run(_load, state.backend, name, rows, bad, mode)
    except QueryError as exc:
        if exc.ch_name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
            raise RequestError(
                f"datasource '{name}' is not deployed",
                code="RTP404",
                hint="run `rtp deploy` first",
            ) from None
        raise
    state.metrics.ingested(name, ok, quarantined)
    import_id = uuid.uuid4().hex
    info = datasource_info(ds, await state.run(table_stats, state.backend))
    # no "error" key on success: Tinybird's CLI client treats its presence as a failure
    return JSONResponse(
        {
            "id": import_id,
            "import_id": import_id,
            "datasource": info,
            "successful_rows": ok,
            "quarantined_rows": quarantined,
            "quarantine_rows": quarantined,
            "invalid_lines": 0,
            "mode": mode,
        }
    )


@router.post("/v0/datasources")
async def post_datasources(
    request: Request, name: str = "", mode: str = "create", format: str = ""
):  # noqa: A002 - Tinybird's parameter name
    return await _ingest(request, name, mode.lower(), format)


@router.post("/v1/datasources/{name}/{mode}")
async def post_datasource_v1(request: Request, name: str, mode: str, format: str = ""):  # noqa: A002
    return await _ingest(request, name, mode.lower(), format)


# -- truncate and delete ---------------------------------------------------------------


def _admin(state, request: Request, name: str, what: str) -> None:
    grant = state.caller(request)
    if "ADMIN" not in grant.scopes:
        raise RequestError(
            f"the token '{grant.name}' may not {what} '{name}'",
            code="RTP403",
            hint="this needs an ADMIN token",
        )


@router.post("/v0/datasources/{name}/truncate")
async def truncate_datasource(request: Request, name: str):
    state = request.app.state.rtp
    _datasource(state, name)
    _admin(state, request, name, "truncate")
    await state.run(state.backend.execute, f"TRUNCATE TABLE `{name}`")
    return {}


def check_condition(condition: str) -> str:
    """The condition's text if it is one boolean expression reading nothing but the
    row's columns. Raises RequestError 400 (RTP400) otherwise."""
    text = condition.strip()
    if not text:
        raise RequestError(
            "delete_condition is required",
            code="RTP400",
            hint="e.g. delete_condition=user_id = 'u1'",
        )
    try:
        tree = sqlglot.parse_one(text, read="clickhouse")
    except (ParseError, TokenError, ValueError) as exc:
        raise RequestError(
            f"cannot read delete_condition: {str(exc).splitlines()[0]}", code="RTP400"
        ) from None
    if (
        tree is None
        or isinstance(tree, exp.Query | exp.Command)
        or not isinstance(tree, exp.Expression)
        or tree.find(exp.Query, exp.Table, exp.Subquery)
    ):
        raise RequestError(
            "delete_condition must be one expression over the datasource's "
            "columns, with no subquery",
            code="RTP400",
        )
    for func in tree.find_all(exp.Func):
        if denied(func):
            raise RequestError(
                f"function {function_name(func)}() is not allowed in delete_condition",
                code="RTP400",
            )
    return text


def _delete(backend: Backend, name: str, condition: str, dry_run: bool) -> int:
    where = f"WHERE (\n{condition}\n)"
    with backend.exclusive():
        count = int(backend.query(f"SELECT count() FROM `{name}` {where}")[1][0][0])
        if count and not dry_run:
            # mutations_sync=1 (ClickHouse 19.14+) waits for the rows to be gone;
            # older servers run the mutation in the background
            from rtp.engine import version_tuple

            sync = (
                " SETTINGS mutations_sync = 1"
                if version_tuple(backend.version()) >= (19, 14)
                else ""
            )
            backend.execute(f"ALTER TABLE `{name}` DELETE {where}{sync}")
    return count


@router.post("/v0/datasources/{name}/delete")
async def delete_rows(request: Request, name: str):
    state = request.app.state.rtp
    _datasource(state, name)
    _admin(state, request, name, "delete rows of")
    body = await read_body(request, state.settings.max_body_bytes)
    form = {k: v.decode("utf-8", "replace") for k, (v, _) in (await _form(request, body)).items()}
    condition = form.get("delete_condition") or request.query_params.get("delete_condition", "")
    dry_run = (form.get("dry_run") or request.query_params.get("dry_run", "")).lower() in (
        "true",
        "1",
        "yes",
    )
    text = check_condition(condition)
    try:
        count = await state.run(_delete, state.backend, name, text, dry_run)
    except QueryError as exc:
        raise SqlError(
            f"the engine refused the delete_condition: {exc.detail}", code="RTP304"
        ) from None
    job = uuid.uuid4().hex
    return {
        "id": job,
        "job_id": job,
        "delete_id": job,
        "kind": "delete_data",
        "status": "done",
        "delete_condition": condition,
        "dry_run": dry_run,
        "rows_affected": count,
        "datasource": {"id": name, "name": name},
    }
