"""Stream sources: consume -> ingest, offsets committed only after durable inserts.

A source type is one module (``kafka.py``; Kinesis and Pub/Sub are planned) registered
in :data:`SOURCES`, whose ``consumer(...)`` returns a :class:`Source`: it hands out
batches of :class:`Message`, records the offset range it is about to insert (``begin``)
and commits it once the rows are durable (``commit``). The
shared :class:`~rtp.connect.runner.Consumer` does the rest the same way for every source:
messages -> rtp's ingestion path (``RowMapper``, quarantine with the message's place in
the reason) -> one insert per partition range, deduplicated by a token naming that range.

Exactly-once effect: the range is recorded in the source before the insert (Kafka: the
committed offset's metadata), so a consumer restarted after a crash, or the one that takes
the partition over in a rebalance, re-reads exactly that range and re-inserts it with the
same token, which the engine drops (ClickHouse 22.2+, tables with
``non_replicated_deduplication_window``; older servers: at least once). docs/connectors.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rtp.engine import Backend

Part = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: float | None  # seconds since the epoch, None when the source has none
    key: bytes | None
    value: bytes | None


class Source(Protocol):
    """What the consumer loop needs from a stream source."""

    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages, in offset order per partition."""

    def pending(self, part: Part) -> int | None:
        """The last offset of a range begun but not committed (by a crashed consumer),
        which must be re-inserted as the same range; None when there is none."""

    def begin(self, ranges: dict[Part, tuple[int, int]]) -> None:
        """Record the (first, last) offsets about to be inserted, durably."""

    def commit(self, ranges: dict[Part, tuple[int, int]]) -> None:
        """The ranges are durable in the engine: consume after them from now on."""

    def lag(self) -> dict[Part, int]:
        """Messages not yet committed, per assigned partition."""

    def close(self) -> None: ...


SOURCES = {"kafka": "rtp.connect.kafka"}  # connection type -> the module implementing it


def module(connection):
    """The module implementing ``connection``'s type (docs/connectors.md lists what it
    provides: ``consumer``, ``reachable``, ``describe``, ``sample``, ``group_lag``)."""
    import importlib

    return importlib.import_module(SOURCES[connection.type])


def active(project, only: str | None = None) -> list:
    """The datasources with a stream source whose connection is active (has brokers)."""
    out = []
    for ds in project.datasources.values():
        if ds.kafka is None or (only is not None and ds.name != only):
            continue
        conn = project.connections.get(ds.kafka.connection)
        if conn is not None and conn.bootstrap_servers:
            out.append(ds)
    return out


def start(project, backend: Backend, *, metrics=None, only: str | None = None, **options):
    """Start a consumer thread for each active stream datasource; returns the
    :class:`~rtp.connect.runner.Consumers` (``update(project)`` after a reload, ``stop()``)."""
    from rtp.connect.runner import Consumers

    consumers = Consumers(backend, metrics=metrics, **options)
    consumers.update(project, only)
    return consumers
