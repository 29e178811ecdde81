"""The consumer loop shared by every stream source: poll, map, insert, commit.

Each poll's messages are grouped by partition; each partition's run of offsets is one
insert through :func:`rtp.ingest.insert` with the token
``rtp:<source>:<datasource>:<topic>:<partition>:<first>-<last>``; the ranges are recorded
in the source before the inserts (``begin``) and committed after them (``commit``). A
partition with a range begun by a crashed consumer waits until the whole range is read
again, then inserts exactly it (same token: the engine drops what it already has).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from typing import TYPE_CHECKING

import orjson

from rtp.connect import Message, Part
from rtp.ingest import RowError, RowMapper, insert, supports_tokens
from rtp.project.model import KAFKA_META_COLUMNS

if TYPE_CHECKING:
    from rtp.engine import Backend

log = logging.getLogger("rtp.connect")


def group_id(project, ds) -> str:
    return ds.kafka.group_id or f"rtp_{project.name}_{ds.name}"


def meta_columns(ds) -> set[str]:
    """The datasource's columns that take the message's metadata (``__topic`` ...): a
    metadata column's name, without a JSON path of its own."""
    return {
        c.name for c in ds.columns if c.name in KAFKA_META_COLUMNS and c.json_path == f"$.{c.name}"
    }


def to_event(ds, msg: Message, meta: set[str]) -> dict:
    """The JSON object the datasource's columns read, with Tinybird's metadata columns
    (``__topic`` ...) set from the message. Raises RowError for a value that is not a
    JSON object (unless every column is a metadata column)."""
    text = msg.value or b""
    if len(meta) == len(ds.columns):
        event = {}
    else:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise RowError(f"not JSON: {exc}") from None
        if not isinstance(event, dict):
            raise RowError("the message's value must be a JSON object")
    if meta:
        values = {
            "__topic": msg.topic,
            "__partition": msg.partition,
            "__offset": msg.offset,
            "__timestamp": dt.datetime.fromtimestamp(msg.timestamp or 0, dt.timezone.utc),
            "__key": (msg.key or b"").decode("utf-8", errors="replace"),
            "__value": text.decode("utf-8", errors="replace") if ds.kafka.store_raw_value else "",
        }
        for name in meta:
            event[name] = values[name]
    return event


class Consumer:
    """One datasource's consumer, on its own thread (``start``/``stop``)."""

    def __init__(
        self,
        project,
        ds,
        backend: Backend,
        *,
        metrics=None,
        batch: int = 5000,
        wait: float = 0.2,
        source=None,
    ) -> None:
        self.project, self.ds, self.backend, self.metrics = project, ds, backend, metrics
        self.batch, self.wait = batch, wait
        self.connection = project.connections[ds.kafka.connection]
        self.group_id = group_id(project, ds)
        self.mapper = RowMapper(ds)
        self.meta = meta_columns(ds)
        self._source = source
        self._buffers: dict[Part, list[Message]] = {}
        self._ensured: set = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lag: dict[Part, int] = {}
        self.rows = self.quarantined = 0
        self.error: str | None = None
        self.last_message = time.monotonic()  # when a poll last returned messages

    # -- the loop -------------------------------------------------------------------------

    def _open(self):
        if self._source is None:
            from rtp.connect import module

            self._source = module(self.connection).consumer(
                self.connection, self.ds.kafka, self.group_id, on_revoke=self._revoked
            )
        return self._source

    def _revoked(self, parts: list[Part]) -> None:
        # nothing of theirs is in flight (this runs inside poll); uncommitted messages
        # are read again by the partition's next owner
        for part in parts:
            self._buffers.pop(part, None)
            self.lag.pop(part, None)

    def step(self) -> int:
        """One poll and the inserts it allows; returns the rows inserted + quarantined."""
        source = self._open()
        msgs = source.poll(self.batch, self.wait)
        if msgs or not getattr(source, "assigned", True):
            self.last_message = time.monotonic()  # idle only counts once partitions come
        for msg in msgs:
            self._buffers.setdefault((msg.topic, msg.partition), []).append(msg)
        ranges: dict[Part, tuple[int, int]] = {}
        takes: dict[Part, list[Message]] = {}
        for part, buf in self._buffers.items():
            if not buf:
                continue
            end = source.pending(part)
            if end is not None:
                if buf[-1].offset < end:
                    continue  # the range begun before is not all read again yet
                takes[part] = [m for m in buf if m.offset <= end]
                self._buffers[part] = [m for m in buf if m.offset > end]
            else:
                takes[part], self._buffers[part] = buf, []
            ranges[part] = (takes[part][0].offset, takes[part][-1].offset)
        if not ranges:
            return 0
        source.begin(ranges)
        tokens = supports_tokens(self.backend)
        done = 0
        for part, msgs in takes.items():
            first, last = ranges[part]
            token = (
                (f"rtp:{self.connection.type}:{self.ds.name}:{part[0]}:{part[1]}:{first}-{last}")
                if tokens
                else None
            )
            rows, bad = self._map(msgs)
            ok, quarantined = insert(
                self.backend, self.ds.name, rows, bad, self._ensured, token=token
            )
            self.rows += ok
            self.quarantined += quarantined
            done += ok + quarantined
            if self.metrics is not None:
                self.metrics.ingested(self.ds.name, ok, quarantined)
        source.commit(ranges)
        return done

    def _map(self, msgs: list[Message]) -> tuple[list[dict], list[tuple[str, str]]]:
        rows, bad = [], []
        for msg in msgs:
            try:
                rows.append(self.mapper.map(to_event(self.ds, msg, self.meta)))
            except RowError as exc:
                where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
                bad.append(
                    (f"{where}: {exc}", (msg.value or b"").decode("utf-8", errors="replace"))
                )
        return rows, bad

    def run(self) -> None:
        """Consume until ``stop()``; errors are logged and retried after a pause (the
        uncommitted range is read again, so a retry stores nothing twice)."""
        last_lag = 0.0
        while not self._stop.is_set():
            try:
                self.step()
                self.error = None
                if time.monotonic() - last_lag > 2:
                    self.lag = self._open().lag()
                    last_lag = time.monotonic()
            except Exception as exc:  # noqa: BLE001 — a consumer thread must not die
                self.error = str(exc)
                log.error("consumer of %s: %s; retrying", self.ds.name, exc)
                self._restart()
                self._stop.wait(1.0)
        if self._source is not None:
            self._source.close()

    def _restart(self) -> None:
        """After a failed insert or commit: leave the group and join again, so the
        partitions are read from their committed offsets (and recorded ranges)."""
        self._buffers.clear()
        if self._source is not None:
            with contextlib.suppress(Exception):  # closing a broken client
                self._source.close()
            self._source = None

    def start(self) -> Consumer:
        self._thread = threading.Thread(
            target=self.run, name=f"rtp-connect-{self.ds.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


class Consumers(list):
    """The consumers of one process, one per stream datasource; :meth:`update` makes
    them follow a reloaded project."""

    def __init__(self, backend: Backend, *, metrics=None, **options) -> None:
        super().__init__()
        self.backend, self.metrics, self.options = backend, metrics, options

    def update(self, project, only: str | None = None) -> dict[str, list[str]]:
        """Run the consumers ``project`` asks for: a datasource whose stream source, columns
        or connection changed gets a new consumer (the old one stops first: it commits
        nothing more, the new one reads on from the group's committed offsets), a removed
        one stops, a new one starts; the others keep running. Changes the list in place
        (``/metrics`` holds it). Returns the datasource names ``started``, ``restarted``
        and ``stopped``."""
        from rtp.connect import active

        wanted = {ds.name: ds for ds in active(project, only)}
        keep, done = [], {"started": [], "restarted": [], "stopped": []}
        for consumer in self:
            ds = wanted.get(consumer.ds.name)
            same = ds is not None and (ds, project.connections[ds.kafka.connection]) == (
                consumer.ds,
                consumer.connection,
            )
            if same:
                keep.append(consumer)
                del wanted[ds.name]
                continue
            consumer.stop()
            done["restarted" if ds is not None else "stopped"].append(consumer.ds.name)
        for ds in wanted.values():
            if ds.name not in done["restarted"]:
                done["started"].append(ds.name)
            keep.append(
                Consumer(project, ds, self.backend, metrics=self.metrics, **self.options).start()
            )
        self[:] = keep
        return done

    def stop(self) -> None:
        for consumer in self:
            consumer._stop.set()
        for consumer in self:
            consumer.stop()

    def lag(self) -> dict[tuple[str, str, int], int]:
        """(datasource, topic, partition) -> messages not yet committed."""
        return {(c.ds.name, t, p): n for c in self for (t, p), n in c.lag.items()}
