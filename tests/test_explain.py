"""`rtp explain PIPE key=value ...` through the CLI, on the embedded engine and on a
ClickHouse server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

FILES = {
    "rtp.yaml": "name: shop\n",
    "datasources/events.yaml": """
        columns:
          - {name: product_id, type: String}
          - {name: user_id, type: String}
          - {name: n, type: UInt32}
        sorting_key: [product_id]
        settings: {index_granularity: 1024}
    """,
    "pipes/top.yaml": """
        nodes:
          - name: totals
            cache: {ttl: 60}
            sql: |
              SELECT product_id, sum(n) AS total FROM events
              GROUP BY product_id ORDER BY total DESC, product_id
          - name: mine
            sql: |
              SELECT product_id, count() AS c FROM events
              WHERE product_id = {{ String(product, 'p1') }} GROUP BY product_id
          - name: out
            sql: SELECT product_id, c, total FROM mine JOIN totals USING product_id
    """,
    "pipes/one.yaml": """
        nodes:
          - name: mine
            sql: |
              SELECT product_id, count() AS c FROM events
              WHERE product_id = {{ String(product, 'p1') }} GROUP BY product_id
    """,
}
FILL = (
    "INSERT INTO events SELECT concat('p', toString(number % 100)), 'u', number "
    "FROM numbers(100000)"
)


def _rtp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *map(str, args)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _project(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return tmp_path


def test_explain_profiles_each_node_on_the_embedded_engine(tmp_path):
    root = _project(tmp_path)
    for args in (("deploy",), ("sql", FILL)):
        done = _rtp(*args, "-p", root)
        assert done.returncode == 0, done.stdout + done.stderr
    done = _rtp("explain", "top", "product=p7", "-p", root, "--format", "json", "--runs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["pipe"] == "top" and result["values"] == {"product": "p7"}
    nodes = {n["node"]: n for n in result["nodes"]}
    assert list(nodes) == ["totals", "mine", "out"]
    totals, mine, out = nodes["totals"], nodes["mine"], nodes["out"]
    # the cached node scans the table (no key condition), once per ttl
    assert totals["cache_ttl"] == 60 and totals["substituted"] is True
    assert totals["rows"] == 100 and totals["rows_read"] == 100_000
    [read] = totals["reads"]
    assert read["table"].endswith("events") and read["condition"] == "true"
    assert read["granules"][0] == read["granules"][1] > 1
    # a primary-key lookup: a granule or two of all
    [read] = mine["reads"]
    assert read["condition"] != "true" and read["granules"][0] < read["granules"][1]
    assert read["keys"] == ["product_id"]
    assert mine["rows"] == 1 and mine["rows_read"] < 5_000 and mine["cache_ttl"] is None
    # the output reads the cached node as a literal: no second scan of the table
    assert out["rows_read"] < 5_000 and len(out["reads"]) == 1

    done = _rtp("explain", "top", "product=p7", "-p", root, "--runs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if "totals" in x)
    assert "(no key)" in line and "60 s" in line


def test_explain_refuses_bad_values_and_unknown_pipes(tmp_path):
    root = _project(tmp_path)
    done = _rtp("explain", "top", "product", "-p", root)
    assert done.returncode == 2 and "RTP400 'product' is not name=value" in done.stderr
    done = _rtp("explain", "nope", "-p", root, "--format", "json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["problems"][0]["code"] == "RTP404"


SERVER = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


@pytest.mark.skipif(not SERVER, reason="RTP_TEST_CLICKHOUSE_URL (a ClickHouse server) is not set")
def test_explain_on_a_clickhouse_server(tmp_path):
    root = _project(tmp_path)
    (root / "pipes/top.yaml").unlink()  # 18.16 composes no table CTEs yet
    database = f"rtp_explain_{uuid.uuid4().hex[:8]}"
    admin = SERVER.rsplit("/", 1)[0]
    url = f"{admin}/{database}"
    created = _rtp("sql", f"CREATE DATABASE {database}", "-p", root, "-t", f"{admin}/default")
    assert created.returncode == 0, created.stderr
    try:
        for args in (("deploy",), ("sql", FILL)):
            done = _rtp(*args, "-p", root, "-t", url)
            assert done.returncode == 0, done.stdout + done.stderr
        done = _rtp("explain", "one", "product=p7", "-p", root, "-t", url, "-f", "json")
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)
        [node] = result["nodes"]
        assert result["target"] == "clickhouse" and node["rows"] == 1
        assert 0 < node["rows_read"] < 100_000  # the key narrowed the read
    finally:
        _rtp("sql", f"DROP DATABASE IF EXISTS {database}", "-p", root, "-t", f"{admin}/default")
