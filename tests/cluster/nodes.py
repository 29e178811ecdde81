"""The test cluster (.ci/services/cluster.sh: 2 shards x 2 replicas of 18.16 with
ZooKeeper): where its nodes are, queries on one node, killing and restarting a node."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
URL = os.environ.get("RTP_TEST_CLUSTER_URL")
CLUSTER = os.environ.get("RTP_TEST_CLUSTER_NAME", "rtp_cluster")
HOME = os.environ.get("RTP_TEST_CLUSTER_HOME", "/tmp/rtp-cluster")
BASE = (urlparse(URL).port or 12181) - 1 if URL else 0
NODES = (1, 2, 3, 4)  # node n: port BASE + n; 1, 2 = shard 1; 3, 4 = shard 2

needs_cluster = pytest.mark.skipif(
    not URL,
    reason="RTP_TEST_CLUSTER_URL is not set; source .ci/services/cluster.sh to start "
    "a ClickHouse cluster",
)


def client(node: int, database: str = "default"):
    from clickhouse_driver import Client

    return Client("127.0.0.1", port=BASE + node, database=database, connect_timeout=2)


def on_node(node: int, sql: str) -> list[tuple]:
    """``sql``'s rows on cluster node ``node`` (1..4)."""
    c = client(node)
    try:
        return c.execute(sql)
    finally:
        c.disconnect()


def service(*args: str) -> None:
    """Run .ci/services/cluster.sh with a command (kill-node N, start-node N)."""
    env = {**os.environ, "CLUSTER_BASE_PORT": str(BASE), "CLUSTER_HOME": HOME}
    subprocess.run(
        ["bash", str(ROOT / ".ci/services/cluster.sh"), *args], env=env, check=True, timeout=120
    )


def ddl_queue() -> int:
    """How many ON CLUSTER statements the cluster has ever queued."""
    return on_node(
        1, "SELECT count() FROM system.zookeeper WHERE path = '/clickhouse/task_queue/ddl'"
    )[0][0]


def wait_until(check, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
