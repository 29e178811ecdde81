"""End to end: while `rtp serve` holds the embedded database, `rtp sql`, `rtp append` and
`rtp deploy` (with --plan) work through it; when it can't be reached they say who holds
the database and what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.server.conftest import EVENTS, RECS
from tests.serving import ROOT, free_port, wait_healthy

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def rtp(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


def test_commands_work_through_the_running_server(project_factory, tmp_path):
    root = project_factory(
        {"datasources/events.yaml": EVENTS, "pipes/by_user.yaml": None, "pipes/recs.yaml": RECS}
    )
    assert rtp("deploy", "-p", root).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtp.cli.main", "serve", "-p", str(root), "--port", str(port)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        admin = proc.stdout.readline().strip()
        wait_healthy(base, proc)

        data = tmp_path / "in"
        data.mkdir()
        (data / "e.ndjson").write_text(
            "\n".join(
                [
                    json.dumps(
                        {
                            "timestamp": "2030-01-01 10:00:00",
                            "user_id": "u1",
                            "product": {"id": "p1", "price": 2.0},
                        }
                    ),
                    json.dumps(
                        {
                            "timestamp": "2030-01-01 10:00:01",
                            "user_id": "u1",
                            "product": {"id": "p2", "price": 5.0},
                            "qty": 2,
                        }
                    ),
                    json.dumps({"timestamp": "soon", "user_id": "u2"}),
                ]
            )
            + "\n"
        )
        result = rtp("append", "events", data / "e.ndjson", "-p", root)
        assert result.returncode == 1, result.stdout + result.stderr  # one quarantined
        assert "appended 2 row(s) to events" in result.stdout
        assert "1 row(s) quarantined" in result.stdout
        # CSV by column name, converted to JSON events with the datasource's JSON paths
        (data / "e.csv").write_text(
            "timestamp,user_id,product_id,price,qty\n2030-01-01 11:00:00,u2,p3,1.5,\n"
        )
        result = rtp("append", "events", data / "e.csv", "-p", root)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "appended 1 row(s) to events" in result.stdout

        result = rtp(
            "sql",
            "SELECT user_id, product_id, price, qty FROM events ORDER BY timestamp",
            "-p",
            root,
            "-f",
            "json",
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["data"] == [
            {"user_id": "u1", "product_id": "p1", "price": 2, "qty": 1},
            {"user_id": "u1", "product_id": "p2", "price": 5, "qty": 2},
            {"user_id": "u2", "product_id": "p3", "price": 1.5, "qty": 1},
        ]
        result = rtp("sql", "SELECT count() AS c FROM events_quarantine", "-p", root, "-f", "csv")
        assert result.stdout == "c\n1\n", result.stderr
        result = rtp("sql", "DROP TABLE events", "-p", root)
        assert result.returncode == 2  # RTP4xx: a usage error (docs/errors.md)
        assert "RTP400 only read-only statements run through /v0/sql" in result.stderr

        # edit a pipe and add a datasource: plan, then deploy through the server
        recs = root / "pipes" / "recs.yaml"
        recs.write_text(recs.read_text().replace("count() AS n", "count() AS times"))
        (root / "datasources" / "extra.yaml").write_text("columns:\n  - {name: a, type: String}\n")
        result = rtp("deploy", "--plan", "-p", root)
        assert result.returncode == 0, result.stderr
        assert f"through the server of process {proc.pid} (rtp serve)" in result.stdout
        assert "+ create table extra: new datasource" in result.stdout
        assert "1 create." in result.stdout
        result = rtp("deploy", "-p", root)
        assert result.returncode == 0, result.stderr
        assert "deployed 1 change(s) to embedded:default" in result.stdout
        r = httpx.get(f"{base}/v0/pipes/recs.json", params={"user_id": "u1", "token": admin})
        assert r.json()["data"] == [
            {"product_id": "p2", "spent": 10, "times": 1},
            {"product_id": "p1", "spent": 2, "times": 1},
        ]
        result = rtp("sql", "EXISTS TABLE extra", "-p", root, "-f", "csv")
        assert result.stdout.splitlines()[1] == "1"
        assert "up to date, nothing to do" in rtp("deploy", "-p", root).stdout
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_unreachable_holder_is_named(project_factory):
    root = project_factory()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = root / ".rtp" / "owner.json"
        path.parent.mkdir()
        url = f"http://127.0.0.1:{free_port()}"
        path.write_text(
            json.dumps(
                {"pid": holder.pid, "command": "rtp serve", "url": url, "token": "rtp_control_x"}
            )
        )
        for args in (("sql", "SELECT 1"), ("deploy",), ("deploy", "--plan")):
            result = rtp(*args, "-p", root)
            assert result.returncode == 1, result.stdout
            assert (
                f"RTP501 the embedded database of this project is held by process "
                f"{holder.pid} (rtp serve), but its server at {url} does not answer"
            ) in result.stderr
            assert f"stop it (kill {holder.pid})" in result.stderr
            assert "BAD_ARGUMENTS" not in result.stdout + result.stderr
    finally:
        holder.kill()
        holder.wait()
