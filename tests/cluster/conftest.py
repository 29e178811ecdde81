"""The cluster tests: a real ClickHouse cluster (tests/cluster/nodes.py). Skipped,
saying why, when RTP_TEST_CLUSTER_URL is not set. Each test deploys into its own
database, dropped ON CLUSTER afterwards."""

from __future__ import annotations

import uuid

import pytest

from tests.cluster.nodes import CLUSTER, NODES, URL, on_node, service


@pytest.fixture
def cluster_url():
    """A cluster target URL with a fresh database; dropped ON CLUSTER afterwards (with
    every node back up)."""
    database = f"rtp_test_{uuid.uuid4().hex[:8]}"
    yield f"{URL.rsplit('/', 1)[0]}/{database}?cluster={CLUSTER}"
    for node in NODES:
        service("start-node", str(node))
    on_node(1, f"DROP DATABASE IF EXISTS `{database}` ON CLUSTER `{CLUSTER}`")
