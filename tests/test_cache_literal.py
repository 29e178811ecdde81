"""A cached node's result read back as a literal (rtp.query.cache.node_literal) gives the
same columns, types, values and order as the node's SQL, on the embedded engine and on a
ClickHouse server (RTP_TEST_CLICKHOUSE_URL; that half skips when it is unset), under the
read-only limits every caller's query runs with."""

from __future__ import annotations

import os
import uuid

import pytest

from rtp.engine import Backend
from rtp.engine.embedded import EmbeddedBackend
from rtp.engine.limits import Limits
from rtp.query import cache as cache_module
from rtp.query.cache import node_literal

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
TABLE = (
    "CREATE TABLE t (id UInt64, name String, at DateTime, tags Array(String), "
    "price Nullable(Float64), big Int64) ENGINE = MergeTree ORDER BY id"
)
FILL = (
    "INSERT INTO t SELECT number, concat('it''s \\\\ \\n', toString(number)), "
    "toDateTime('2030-01-01 00:00:00') + number, ['a''b', 'c'], "
    "if(number % 2 = 0, NULL, number / 4), -9000000000000000000 + number FROM numbers(50)"
)
NODE = "SELECT id, name, at, tags, price, big, 'x' AS k FROM t ORDER BY id DESC LIMIT 20"


@pytest.fixture(params=["embedded", "clickhouse"])
def backend(request):
    name = f"rtp_test_literal_{uuid.uuid4().hex[:8]}"
    b: Backend
    if request.param == "embedded":
        b = EmbeddedBackend(":memory:", database=name)
    else:
        if not URL:
            pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test")
        from rtp.engine.clickhouse import ClickHouseBackend

        b = ClickHouseBackend(f"{URL.rsplit('/', 1)[0]}/{name}")
    b.execute(TABLE)
    b.execute(FILL)
    yield b
    b.execute(f"DROP DATABASE IF EXISTS `{name}`")
    b.close()


def test_literal_reads_back_as_the_node(backend):
    limits = Limits()
    literal = node_literal(lambda sql: backend.query(sql, limits), NODE)
    assert literal is not None and "FROM t" not in literal
    assert backend.query(literal, limits) == backend.query(NODE, limits)
    empty = f"SELECT * FROM ({NODE}) WHERE id > 1000"
    literal = node_literal(lambda sql: backend.query(sql, limits), empty)
    assert backend.query(literal, limits) == backend.query(empty, limits)
    assert backend.query(literal, limits)[1] == []


def test_a_result_too_large_is_not_substituted(backend, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_LITERAL_BYTES", 100)
    assert node_literal(lambda sql: backend.query(sql), NODE) is None
    assert node_literal(lambda sql: backend.query(sql), f"{NODE[:-2]}1") is not None
