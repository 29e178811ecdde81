"""`rtp dev` as a process: deploy, fixtures, serve, redeploy on change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from tests.server.conftest import EVENTS, RECS
from tests.serving import ROOT, free_port


def wait_for(fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_dev_deploys_loads_fixtures_and_redeploys(project_factory):
    fixture = "\n".join(
        json.dumps(
            {
                "timestamp": "2030-01-01 00:00:00",
                "user_id": "u1",
                "product": {"id": p, "price": 1.0},
            }
        )
        for p in "abb"
    )
    root = project_factory(
        {
            "datasources/events.yaml": EVENTS,
            "pipes/by_user.yaml": None,
            "pipes/recs.yaml": RECS,
            "fixtures/events.ndjson": fixture,
        }
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtp.cli.main",
            "dev",
            "--no-auth",
            "--interval",
            "0.2",
            "--port",
            str(port),
            "-p",
            str(root),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        body = wait_for(
            lambda: httpx.get(f"{base}/v0/pipes/recs.json", params={"user_id": "u1"}).json()
        )
        assert body["data"] == [
            {"product_id": "b", "spent": 2, "n": 2},
            {"product_id": "a", "spent": 1, "n": 1},
        ]
        (root / "pipes" / "total.yaml").write_text(
            "nodes:\n  - name: t\n    sql: SELECT count() AS n FROM events\n"
        )
        total = wait_for(
            lambda: (
                httpx.get(f"{base}/v0/pipes/total.json").status_code == 200
                and httpx.get(f"{base}/v0/pipes/total.json").json()
            )
        )
        assert total["data"] == [{"n": 3}]
        (root / "pipes" / "total.yaml").write_text("nodes:\n  - name: t\n    sql: '{{ x('\n")
        time.sleep(1.0)
        assert proc.poll() is None
        assert httpx.get(f"{base}/v0/pipes/total.json").json()["data"] == [{"n": 3}]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert "fixture events: 3 rows" in output
    assert "RTP300" in output
