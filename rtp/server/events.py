"""``POST /v0/events?name=<datasource>``: NDJSON events in, durable rows out.

Requests are batched (group commit): each request queues its body and waits; one flusher
per datasource waits ``batch_wait`` for more requests, inserts everything queued in one
statement (on a worker thread), then answers every waiter. No request is answered 2xx
before its rows are inserted. On the embedded engine the bodies go to ClickHouse as they
came and the engine checks each row's types (rtp.ingest.bodies); elsewhere, and for
datasources with types only Python checks, each request maps and checks its rows first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rtp.deploy.health import refuse_ingest
from rtp.engine import QueryError
from rtp.errors import EngineError, RequestError
from rtp.ingest import RowMapper, insert, supports_tokens
from rtp.ingest.bodies import engine_checks, insert_bodies
from rtp.server.http import read_body

if TYPE_CHECKING:
    from rtp.engine import Backend

router = APIRouter()


@dataclass
class _Entry:
    rows: list[dict]
    bad: list[tuple[str, str]]
    future: asyncio.Future
    body: bytes | None = None  # checked by the engine (rows and bad are empty then)
    mapper: RowMapper | None = None


@dataclass
class _Queue:
    entries: list[_Entry] = field(default_factory=list)
    rows: int = 0
    task: asyncio.Task | None = None
    full: asyncio.Event = field(default_factory=asyncio.Event)


class Batcher:
    """Group commit per datasource. ``run`` runs a blocking call on the engine's
    worker threads and returns its result."""

    def __init__(self, backend: Backend, run, *, wait: float, max_rows: int, max_pending: int):
        self.backend = backend
        self.run = run
        self.wait = wait
        self.max_rows = max_rows
        self.max_pending = max_pending
        self.queues: dict[str, _Queue] = {}
        self.ensured: set[str] = set()  # quarantine tables known to exist
        self._typed: dict[str, tuple[RowMapper, object]] = {}
        self.flushes = 0  # insert rounds, for tests and metrics

    def engine_checks(self, mapper: RowMapper):
        """The engine-side checks of ``mapper``'s datasource, or None when its rows are
        checked in Python (a server target, a type only Python checks). Built once per
        mapper (a reload builds new mappers)."""
        name = mapper.datasource.name
        known = self._typed.get(name)
        if known is None or known[0] is not mapper:
            known = self._typed[name] = (mapper, engine_checks(self.backend, mapper.datasource))
        return known[1]

    async def submit_body(
        self, mapper: RowMapper, body: bytes, token: str | None = None
    ) -> tuple[int, int]:
        """Queue an NDJSON body the engine checks (see :meth:`engine_checks`) and wait
        until it is inserted; returns (inserted, quarantined). Raises as :meth:`submit`."""
        name = mapper.datasource.name
        if token is not None:
            return await self.run(self._insert_keyed_body, mapper, body, token)
        return await self._queue(name, _Entry([], [], None, body, mapper), body.count(b"\n") + 1)

    async def submit(
        self,
        datasource: str,
        rows: list[dict],
        bad: list[tuple[str, str]],
        token: str | None = None,
    ) -> tuple[int, int]:
        """Queue rows and wait until they are inserted; returns (inserted, quarantined).

        A request with an idempotency ``token`` is inserted alone, not group-committed:
        its retry must repeat the same INSERT with the same token, whichever other
        requests arrive with it.

        Raises RequestError 429 when too many rows are already waiting, and whatever the
        insert raised (every waiter of a failed batch gets the error).
        """
        if token is not None:
            return await self.run(self._insert_keyed, datasource, rows, bad, token)
        return await self._queue(datasource, _Entry(rows, bad, None), len(rows) + len(bad))

    async def _queue(self, datasource: str, entry: _Entry, size: int) -> tuple[int, int]:
        queue = self.queues.setdefault(datasource, _Queue())
        if queue.rows + size > self.max_pending and queue.entries:
            raise RequestError(
                f"too many events are waiting to be written to '{datasource}'",
                code="RTP406",
                hint="retry after a short pause",
            )
        entry.future = asyncio.get_running_loop().create_future()
        queue.entries.append(entry)
        queue.rows += size
        if queue.rows >= self.max_rows:
            queue.full.set()
        if queue.task is None or queue.task.done():
            queue.task = asyncio.create_task(self._flusher(datasource, queue))
        return await entry.future

    async def _flusher(self, datasource: str, queue: _Queue) -> None:
        while queue.entries:
            if self.wait and not queue.full.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(queue.full.wait(), self.wait)
            batch, queue.entries, queue.rows = queue.entries, [], 0
            queue.full.clear()
            try:
                results = await self.run(self._flush, datasource, batch)
            except Exception as exc:  # every waiter of this batch gets the error
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                continue
            for entry, result in zip(batch, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)

    def _insert_keyed(
        self, datasource: str, rows: list[dict], bad: list[tuple[str, str]], token: str
    ) -> tuple[int, int]:
        self.flushes += 1
        try:
            return insert(self.backend, datasource, rows, bad, self.ensured, token=token)
        except QueryError as exc:
            raise _not_deployed(datasource, exc) from None

    def _insert_keyed_body(self, mapper: RowMapper, body: bytes, token: str) -> tuple[int, int]:
        self.flushes += 1
        name = mapper.datasource.name
        try:
            typed = self.engine_checks(mapper)
            return insert_bodies(
                self.backend, typed, mapper, [body], token=token, ensured=self.ensured
            )[0]
        except QueryError as exc:
            raise _not_deployed(name, exc) from None

    def _flush(self, datasource: str, batch: list[_Entry]) -> list[tuple[int, int]]:
        bodies = [e for e in batch if e.body is not None]
        if not bodies:
            return self._flush_rows(datasource, batch)
        self.flushes += 1
        mapper = bodies[-1].mapper
        try:
            counts = iter(
                insert_bodies(
                    self.backend,
                    self.engine_checks(mapper),
                    mapper,
                    [e.body for e in bodies],
                    ensured=self.ensured,
                )
            )
        except QueryError as exc:
            raise _not_deployed(datasource, exc) from None
        rest = [e for e in batch if e.body is None]
        rows = iter(self._flush_rows(datasource, rest) if rest else [])
        return [next(counts) if e.body is not None else next(rows) for e in batch]

    def _flush_rows(self, datasource: str, batch: list[_Entry]) -> list[tuple[int, int]]:
        self.flushes += 1
        rows = [r for e in batch for r in e.rows]
        bad = [b for e in batch for b in e.bad]
        try:
            insert(self.backend, datasource, rows, bad, self.ensured, retry_rows=False)
            return [(len(e.rows), len(e.bad)) for e in batch]
        except QueryError as exc:
            if exc.ch_name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
                raise _not_deployed(datasource, exc) from None
            # some row the engine refuses: attribute per request, row by row
            return [insert(self.backend, datasource, e.rows, e.bad, self.ensured) for e in batch]


def _not_deployed(datasource: str, exc: QueryError) -> Exception:
    if exc.ch_name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
        return RequestError(
            f"datasource '{datasource}' is not deployed",
            code="RTP404",
            hint="run `rtp deploy` first",
        )
    return exc


IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_token(
    request: Request, datasource: str, body: bytes, backend: Backend
) -> str | None:
    """The insert deduplication token of a request sending ``Idempotency-Key``, or None.

    The token is the key and a digest of the (expanded) body: a retry (same key, same
    body) is dropped by the engine; the same key with another body is not mistaken for
    a retry and is stored. Raises RequestError 400 (RTP408) for a malformed key and
    EngineError 501 (RTP511) when the engine has no insert deduplication (ClickHouse
    older than 22.2).
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise RequestError(
            f"the {IDEMPOTENCY_HEADER} header must be 1 to 200 printable ASCII characters",
            code="RTP408",
            hint="use a UUID, or a digest of what the request sends",
        )
    if not supports_tokens(backend):
        raise EngineError(
            f"{IDEMPOTENCY_HEADER} needs insert deduplication, which this server's "
            f"ClickHouse ({backend.version()}) lacks (22.2 or newer has it)",
            code="RTP511",
            hint="send the request without the header (a retry may then double rows), "
            "or upgrade ClickHouse",
        )
    digest = hashlib.sha256(body).hexdigest()[:32]
    return f"rtp:{datasource}:{key}:{digest}"


@router.post("/v0/events")
async def post_events(request: Request, name: str = "", wait: str = "false"):
    state = request.app.state.rtp
    state.authorize(request, "DATASOURCES:APPEND", name)
    mapper = state.mappers.get(name)
    if mapper is None:
        raise RequestError(
            f"there is no datasource '{name}'",
            code="RTP404",
            hint="pass ?name=<datasource>, one of: " + ", ".join(sorted(state.mappers)),
        )
    refuse_ingest(state.missing_views, name, state.missing_hint)  # RTP508: views missing
    body = await read_body(request, state.settings.max_body_bytes)
    token = idempotency_token(request, name, body, state.backend)
    if state.batcher.engine_checks(mapper) is not None:
        ok, quarantined = await state.batcher.submit_body(mapper, body, token)
        return _answer(state, name, ok, quarantined, wait)
    lines = body.split(b"\n")
    if len(body) > 65536:  # keep the event loop free while big bodies are checked
        rows, bad = await asyncio.to_thread(mapper.map_lines, lines)
    else:
        rows, bad = mapper.map_lines(lines)
    ok, quarantined = await state.batcher.submit(name, rows, bad, token)
    return _answer(state, name, ok, quarantined, wait)


def _answer(state, name: str, ok: int, quarantined: int, wait: str) -> JSONResponse:
    state.metrics.ingested(name, ok, quarantined)
    waited = wait.lower() in ("true", "1", "yes")
    return JSONResponse(
        {"successful_rows": ok, "quarantined_rows": quarantined}, status_code=200 if waited else 202
    )
