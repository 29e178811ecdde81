"""Deploy state, kept in the target itself: what rtp created there, with hashes.

``_rtp_state`` is an append-only log (one row per deployed version of an object); the
newest row per name wins. Every machine deploying to the target reads the same state.
``live_hash`` is the hash of ClickHouse's own ``create_table_query`` right after rtp
changed the object: when it differs later, someone changed the object by hand (drift).

On a cluster the state table is replicated to every node, and the live objects are read
from every node: a datasource is its Distributed table and its node-local table together,
and an object that differs between nodes (or is missing on some) is reported with the
nodes where it differs (:attr:`Live.where`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtp.sql.ddl import LOCAL, own_table
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend

STATE_TABLE = "_rtp_state"
STATE_COLUMNS = (
    "name String, kind String, hash String, spec String, live_hash String, deleted UInt8, "
    "version UInt64, deployed_at DateTime"
)
STATE_DDL = own_table(STATE_TABLE, STATE_COLUMNS, "(name, version)", None)


def own_ddl(backend: Backend, name: str, columns: str, order: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one of rtp's tables on ``backend``: replicated
    to every node of a cluster (rtp.sql.ddl.own_table)."""
    spec = backend.spec() if getattr(backend, "cluster", None) else None  # type: ignore[attr-defined]
    return own_table(name, columns, order, spec)


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
    where: str = ""  # on a cluster: " on <nodes>" where it differs from the others

    @property
    def hash(self) -> str:
        # UUIDs change on every rename; whitespace is formatting. An object that
        # differs between nodes matches no recorded hash.
        text = re.sub(r"\s+UUID\s+'[0-9a-f-]+'", "", self.create_query)
        return digest(" ".join(text.split()) + self.where)


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
    if not has_state(backend):
        backend.execute(own_ddl(backend, STATE_TABLE, STATE_COLUMNS, "(name, version)"))
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


_TABLES = "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db}"
_COLUMNS = "SELECT table, name, type FROM system.columns WHERE database = {db}"


def read_live(backend: Backend) -> dict[str, Live]:
    """Every table and view of the target's database, with its columns (on a cluster:
    as every reachable node has them, see the module doc)."""
    if getattr(backend, "cluster", None):
        return _read_cluster(backend)
    _, tables = backend.query(_TABLES.format(db="currentDatabase()"))
    _, columns = backend.query(_COLUMNS.format(db="currentDatabase()"))
    return _lives(tables, columns)


def _lives(tables: list, columns: list) -> dict[str, Live]:
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, name, ctype in columns:
        by_table.setdefault(table, []).append((name, ctype))
    return {
        name: Live(name, engine, query, tuple(by_table.get(name, ())))
        for name, engine, query in tables
    }


def _logical(lives: dict[str, Live]) -> dict[str, Live]:
    """A node's objects as rtp names them: a Distributed table and its ``__local``
    table are one datasource."""
    out: dict[str, Live] = {}
    for name, live in lives.items():
        part = lives.get(name + LOCAL)
        if live.engine == "Distributed" and part is not None:
            out[name] = Live(
                name, part.engine, live.create_query + "\n" + part.create_query, live.columns
            )
        elif not name.endswith(LOCAL):
            out[name] = live
    return out


def _read_cluster(backend: Backend) -> dict[str, Live]:
    db = quote_string(backend.database)
    tables, _ = backend.on_nodes(_TABLES.format(db=db))  # type: ignore[attr-defined]
    columns, _ = backend.on_nodes(_COLUMNS.format(db=db))  # type: ignore[attr-defined]
    nodes = {n: _logical(_lives(tables[n], columns[n])) for n in tables if n in columns}
    out: dict[str, Live] = {}
    for name in sorted({name for lives in nodes.values() for name in lives}):
        by_node = {n: lives.get(name) for n, lives in nodes.items()}
        hashes = [live.hash for live in by_node.values() if live is not None]
        common = max(set(hashes), key=hashes.count)
        live = next(v for v in by_node.values() if v is not None and v.hash == common)
        odd = [
            f"{n}" + (" (missing)" if v is None else "")
            for n, v in by_node.items()
            if v is None or v.hash != common
        ]
        out[name] = live if not odd else Live(**{**live.__dict__, "where": f" on {', '.join(odd)}"})
    return out
