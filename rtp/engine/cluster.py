"""A ClickHouse cluster as a target: ``clickhouse://host:9000/db?cluster=name``.

The URL's server is the entry node: rtp's statements, reads and inserts go through it
(DDL as ``ON CLUSTER``, rows through Distributed tables). The cluster's other nodes come
from the entry node's ``system.clusters``; rtp connects to each one only to read what it
has (a plan compares every node, and names the nodes it cannot reach).

Reads run with ``distributed_product_mode = 'global'`` (see :meth:`_rows`).

Inserts are synchronous (``insert_distributed_sync = 1``): an insert returns once every
shard stored its rows, so a 2xx means stored, and Distributed tables never hold blocks
waiting to be sent (rtp may recreate them on a column change). Servers without insert
deduplication tokens (before 22.2) insert with ``insert_deduplicate = 0``: a Replicated
table would otherwise drop a block identical to a recent one, i.e. the same rows sent
twice on purpose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from rtp.engine import MIN_VERSIONS, QueryError, version_tuple
from rtp.engine.clickhouse import ClickHouseBackend, parse_url
from rtp.errors import EngineError
from rtp.sql.ddl import ClusterSpec
from rtp.sql.escape import quote_string

DEFAULT_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
READY_WAIT = 30.0  # seconds a plan waits for a restarted node's replicas


@dataclass(frozen=True)
class Node:
    """One server of the cluster, as ``system.clusters`` lists it."""

    host: str
    port: int
    shard: int
    replica: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (shard {self.shard}, replica {self.replica})"


class ClusterBackend(ClickHouseBackend):
    """The entry node of a cluster (see module doc). Raises EngineError RTP501 when the
    entry node can't be reached or doesn't define the cluster."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        args = parse_url(url)
        self.cluster = args["cluster"]
        self.on_cluster = f" ON CLUSTER `{self.cluster}`"
        self._args = args
        self._nodes: dict[Node, ClickHouseBackend | None] = {}
        self.down: list[str] = []  # what kept nodes out of the last on_nodes
        super().__init__(url, **kwargs)
        _, rows = self.query(
            "SELECT shard_num, replica_num, host_name, port FROM system.clusters "
            f"WHERE cluster = {quote_string(self.cluster)} ORDER BY shard_num, replica_num"
        )
        if not rows:
            _, names = self.query("SELECT DISTINCT cluster FROM system.clusters")
            raise EngineError(
                f"cluster '{self.cluster}' is not defined on {self._where}",
                code="RTP501",
                hint="clusters there (system.clusters): "
                + (", ".join(sorted(r[0] for r in names)) or "none"),
            )
        self.nodes = [Node(str(h), int(p), int(s), int(r)) for s, r, h, p in rows]

    def spec(self) -> ClusterSpec:
        """How rtp's DDL names this cluster's tables (rtp.sql.ddl)."""
        return ClusterSpec(
            str(self.cluster),
            self.database,
            self._args["zookeeper_path"] or DEFAULT_PATH,
            self._args["replica"] or "{replica}",
        )

    def write_settings(self) -> dict[str, Any]:
        settings = {**super().write_settings(), "insert_distributed_sync": 1}
        if version_tuple(self.version()) < MIN_VERSIONS["insert deduplication tokens"]:
            settings["insert_deduplicate"] = 0
        return settings

    def _rows(
        self, sql: str, limits: Any, settings: dict[str, Any] | None
    ) -> tuple[list[tuple[str, str]], list[list[Any]], Any]:
        # A pipe's IN and JOIN subqueries read Distributed tables too; ClickHouse refuses
        # that by default (Double-distributed IN/JOIN subqueries is denied). GLOBAL: the
        # subquery runs once, over every shard, and its result goes to each shard, so
        # the answer is the one a single server gives.
        return super()._rows(
            sql, limits, {"distributed_product_mode": "global", **(settings or {})}
        )

    def on_nodes(self, sql: str) -> tuple[dict[Node, list[list[Any]]], list[str]]:
        """``sql``'s rows on every node (it runs in database ``default``; name the
        database), and what keeps the other nodes out: unreachable, or replicated tables
        still read-only (a restarted server waits for its old ZooKeeper session to
        expire, about ``session_timeout_ms``; this waits up to ``READY_WAIT`` seconds for
        it; kept in :attr:`down` too). Raises QueryError when a node refuses the query."""
        rows: dict[Node, list[list[Any]]] = {}
        down: list[str] = []
        for node in self.nodes:
            backend = self._node(node)
            try:
                if backend is None:
                    raise EngineError("unreachable", code="RTP501")
                if not self._ready(backend):
                    down.append(f"{node} has replicated tables not active yet (not ready)")
                    continue
                rows[node] = backend.query(sql)[1]
            except QueryError:
                raise
            except EngineError:
                self._forget(node)
                down.append(f"{node} is unreachable")
        self.down = down
        return rows, down

    def _ready(self, backend: ClickHouseBackend) -> bool:
        deadline = time.monotonic() + READY_WAIT
        while True:
            # A restarted server's replicas stay inactive until its old ZooKeeper session
            # expires, yet show is_readonly = 0; their queue was not updated since the
            # start (absolute_delay counts from 1970). An ALTER ON CLUSTER then fails on
            # that node (Cannot enqueue replicated DDL query for a replicated shard).
            _, rows = backend.query(
                "SELECT count() FROM system.replicas WHERE is_readonly OR is_session_expired "
                "OR absolute_delay > uptime()"
            )
            if not rows[0][0]:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)

    def _node(self, node: Node) -> ClickHouseBackend | None:
        if self._nodes.get(node) is None:
            a = self._args
            auth = quote(a["user"], safe="") + (
                ":" + quote(a["password"], safe="") if a["password"] else ""
            )
            scheme = "clickhouses" if a["secure"] else "clickhouse"
            try:
                self._nodes[node] = ClickHouseBackend(
                    f"{scheme}://{auth}@{node.host}:{node.port}/default", connect_timeout=2
                )
            except EngineError:
                return None
        return self._nodes[node]

    def _forget(self, node: Node) -> None:
        backend = self._nodes.pop(node, None)
        if backend is not None:
            backend.close()

    def close(self) -> None:
        for node in list(self._nodes):
            self._forget(node)
        super().close()
