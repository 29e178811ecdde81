"""Deploy state, kept in the target itself: what rtp created there, with hashes.

``_rtp_state`` is an append-only log (one row per deployed version of an object); the
newest row per name wins. Every machine deploying to the target reads the same state.
``live_hash`` is the hash of ClickHouse's own ``create_table_query`` right after rtp
changed the object: when it differs later, someone changed the object by hand (drift).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend

STATE_TABLE = "_rtp_state"
STATE_DDL = (
    f"CREATE TABLE IF NOT EXISTS `{STATE_TABLE}` (name String, kind String, hash String, "
    "spec String, live_hash String, deleted UInt8, version UInt64, deployed_at DateTime) "
    "ENGINE = MergeTree ORDER BY (name, version)"
)


@dataclass(frozen=True)
class Record:
    name: str
    kind: str  # "table" or "view"
    hash: str
    spec: dict = field(default_factory=dict, compare=False)
    live_hash: str = ""


@dataclass(frozen=True)
class Live:
    """An object as ClickHouse has it now."""

    name: str
    engine: str
    create_query: str
    columns: tuple[tuple[str, str], ...] = ()

    @property
    def hash(self) -> str:
        # UUIDs change on every rename; whitespace is formatting
        text = re.sub(r"\s+UUID\s+'[0-9a-f-]+'", "", self.create_query)
        return digest(" ".join(text.split()))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def has_state(backend: Backend) -> bool:
    return bool(
        backend.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            f"AND name = {quote_string(STATE_TABLE)}"
        )[1]
    )


def read_state(backend: Backend) -> dict[str, Record]:
    """The newest record per object rtp deployed (deleted ones left out)."""
    if not has_state(backend):
        return {}
    _, rows = backend.query(
        "SELECT name, argMax(kind, version), argMax(hash, version), argMax(spec, version), "
        f"argMax(live_hash, version), argMax(deleted, version) FROM `{STATE_TABLE}` "
        "GROUP BY name ORDER BY name"
    )
    return {
        r[0]: Record(r[0], r[1], r[2], json.loads(r[3] or "{}"), r[4])
        for r in rows
        if not int(r[5])
    }


def write_record(backend: Backend, record: Record, *, deleted: bool = False) -> None:
    backend.execute(STATE_DDL)
    backend.insert_json(
        STATE_TABLE,
        [
            {
                "name": record.name,
                "kind": record.kind,
                "hash": record.hash,
                "spec": json.dumps(record.spec, sort_keys=True),
                "live_hash": record.live_hash,
                "deleted": int(deleted),
                "version": time.time_ns(),
                "deployed_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            }
        ],
    )


def read_live(backend: Backend) -> dict[str, Live]:
    """Every table and view of the target's database, with its columns."""
    _, tables = backend.query(
        "SELECT name, engine, create_table_query FROM system.tables "
        "WHERE database = currentDatabase()"
    )
    _, columns = backend.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase()"
    )
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, name, ctype in columns:
        by_table.setdefault(table, []).append((name, ctype))
    return {
        name: Live(name, engine, query, tuple(by_table.get(name, ())))
        for name, engine, query in tables
    }
