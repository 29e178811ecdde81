"""`rtp deploy`, `rtp sql`, `rtp append` and `rtp copy run` on the embedded engine
(data under the project's .rtp/, as a user runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from deploy_helpers import SHOP

from rtp.engine import owner

COPY = """
    nodes:
      - name: daily
        sql: SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id
    type: copy
    target: spend_copy
    mode: replace
    schedule: "0 * * * *"
"""
SPEND_COPY = SHOP["datasources/spend.yaml"].replace("SummingMergeTree", "MergeTree")


@pytest.fixture
def shop(project_factory):
    return project_factory(
        {**SHOP, "pipes/daily.yaml": COPY, "datasources/spend_copy.yaml": SPEND_COPY}, base=None
    )


def test_plan_deploy_append_sql_copy(shop, cli, tmp_path):
    result = cli("deploy", "--plan", "-p", shop)
    assert result.exit_code == 0, result.output
    assert "+ create table events: new datasource" in result.output
    assert "4 create." in result.output
    result = cli("deploy", "-p", shop)
    assert result.exit_code == 0, result.output
    assert "deployed 4 change(s) to embedded:default" in result.output
    assert not owner.owner_file(shop).exists()  # released when the command ends
    assert "up to date, nothing to do" in cli("deploy", "-p", shop).output

    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text(
        '{"timestamp": "2030-01-01 10:00:00", "user_id": "u1", "product": {"id": "p1", '
        '"price": 2}}\n{"timestamp": "oops", "user_id": "u2"}\n',
        encoding="utf-8",
    )
    result = cli("append", "events", ndjson, "-p", shop)
    assert result.exit_code == 1  # some rows were quarantined
    assert "appended 1 row(s) to events" in result.output
    assert "1 row(s) quarantined" in result.output
    csv = tmp_path / "events.csv"
    csv.write_text(
        "timestamp,user_id,product_id,price\n2030-01-01 11:00:00,u2,p2,3.5\n", encoding="utf-8"
    )
    assert cli("append", "events", csv, "-p", shop).exit_code == 0
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    parquet = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": ["2030-01-01 12:00:00"],
                "user_id": ["u1"],
                "product": [{"id": "p3", "price": 4.0}],
            }
        ),
        parquet,
    )
    assert cli("append", "events", parquet, "-p", shop).exit_code == 0

    result = cli(
        "sql",
        "SELECT user_id, total, n FROM spend FINAL ORDER BY user_id",
        "-p",
        shop,
        "-f",
        "json",
    )
    assert json.loads(result.output)["data"] == [
        {"user_id": "u1", "total": 6, "n": 2},
        {"user_id": "u2", "total": 3.5, "n": 1},
    ]
    result = cli("sql", "SELECT count() AS c FROM events_quarantine", "-p", shop, "-f", "csv")
    assert result.output == "c\n1\n"
    result = cli("copy", "run", "daily", "-p", shop)
    assert result.exit_code == 0, result.output
    assert "spend_copy has 2 row(s)" in result.output
    assert "2 row(s)" in cli("copy", "run", "daily", "-p", shop).output  # replace, not append
    result = cli("sql", "SELECT nope FROM events", "-p", shop)
    assert result.exit_code == 1 and "RTP500" in result.output


def test_held_database_names_the_process(shop):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path = owner.owner_file(shop)
        path.parent.mkdir(parents=True)
        path.write_text(
            json.dumps({"pid": holder.pid, "command": "rtp serve", "url": "http://127.0.0.1:7181"})
        )
        result = subprocess.run(
            [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(shop)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert result.returncode == 1
        assert (
            f"held by process {holder.pid} (rtp serve); it serves http://127.0.0.1:7181"
        ) in result.stderr
        assert "BAD_ARGUMENTS" not in result.stderr + result.stdout
    finally:
        holder.kill()
        holder.wait()
    # a file left by a dead process doesn't block
    owner.claim(shop, "test")
    assert json.loads(owner.owner_file(shop).read_text())["pid"] == os.getpid()
    owner.release(shop)
    assert not owner.owner_file(shop).exists()


def test_unknown_target_and_unreachable_server(shop, cli):
    result = cli("deploy", "-p", shop, "--target", "prod")
    # a bad --target is a usage error (RTP110, exit 2); an engine that fails, exit 1
    assert result.exit_code == 2 and "RTP110 unknown target 'prod'" in result.output
    result = cli("deploy", "-p", shop, "--target", "clickhouse://u:secret@127.0.0.1:1/db")
    assert result.exit_code == 1
    assert "RTP501 ClickHouse at 127.0.0.1:1 is unreachable" in result.output
    assert "secret" not in result.output


def test_append_from_url_and_unreadable_sources(shop, cli, tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "e.ndjson").write_text(
        '{"timestamp": "2030-01-01 10:00:00", "user_id": "u9", "product": {"id": "p", '
        '"price": 1}}\n',
        encoding="utf-8",
    )
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "web")
    )
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert cli("deploy", "-p", shop).exit_code == 0
        url = f"http://127.0.0.1:{httpd.server_address[1]}/e.ndjson"
        result = cli("append", "events", url, "-p", shop)
        assert result.exit_code == 0 and "appended 1 row(s) to events" in result.output
        result = cli("append", "events", url.replace("e.ndjson", "gone.ndjson"), "-p", shop)
        # the caller's input (RTP411, a 4xx code) can't be read: exit 2
        assert result.exit_code == 2 and "RTP411 cannot read" in result.output
    finally:
        httpd.shutdown()
    result = cli("append", "events", tmp_path / "data.xlsx", "-p", shop)
    assert result.exit_code == 2 and "can't tell the format" in result.output
    result = cli("append", "nope", tmp_path / "x.csv", "-p", shop)
    assert result.exit_code == 2 and "unknown datasource 'nope'" in result.output
