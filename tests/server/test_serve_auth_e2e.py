"""End to end on a real `rtp serve` process: one authorization path for every route (the
control token reads /v0/pipes/openapi.json), private files while the server inserts, and
/metrics whose series stay bounded whatever callers send."""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from tests.server.conftest import EVENTS, RECS
from tests.server.test_serve_remote_e2e import ENV, rtp
from tests.serving import free_port, wait_healthy
from tests.test_private_files import open_to_others, tree

OTHER = "nodes:\n  - {name: o, sql: SELECT 1 AS one}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    files = {
        "rtp.yaml": "name: shop\n",
        "datasources/events.yaml": EVENTS,
        "pipes/recs.yaml": RECS,
        "pipes/other.yaml": OTHER,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    r = rtp("deploy", "-p", root)
    assert r.returncode == 0, r.stdout + r.stderr
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
        control = json.loads((root / ".rtp/owner.json").read_text())["token"]
        yield {"root": root, "base": base, "admin": admin, "control": control}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def paths(spec: dict) -> set[str]:
    return {p.rsplit(".", 1)[0] for p in spec["paths"]}


def test_openapi_authorizes_like_every_route(server):
    url = f"{server['base']}/v0/pipes/openapi.json"
    for token in (server["control"], server["admin"]):
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert paths(r.json()) == {"/v0/pipes/recs", "/v0/pipes/other"}
    r = rtp("token", "create", "reader", "--scope", "PIPES:READ:recs", "-p", server["root"])
    reader = r.stdout.strip().splitlines()[-1]
    for _ in range(30):  # a running server re-reads tokens.json within a second
        r = httpx.get(url, params={"token": reader})
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert paths(r.json()) == {"/v0/pipes/recs"}
    for params in ({}, {"token": "rtp_nope"}, {"token": "a.b.c"}):
        r = httpx.get(url, params=params)
        assert (r.status_code, r.json()["code"]) == (403, "RTP403")


def test_files_stay_private_while_the_server_inserts(server):
    root = server["root"]
    data = root / ".rtp" / "data"
    before = len(tree(data))
    auth = {"Authorization": f"Bearer {server['admin']}"}
    for i in range(5):
        event = {
            "timestamp": f"2030-01-01 00:00:0{i}",
            "user_id": f"u{i}",
            "product": {"id": "p", "price": 1.0},
        }
        r = httpx.post(
            f"{server['base']}/v0/events?name=events&wait=true",
            content=json.dumps(event),
            headers=auth,
        )
        assert r.status_code == 200, r.text
    assert len(tree(data)) > before  # new parts were written
    assert open_to_others(root / ".rtp") == []


def test_metrics_series_stay_bounded(server):
    base = server["base"]

    def series() -> set[str]:
        """Each series once: its name and labels, without the value."""
        text = httpx.get(f"{base}/metrics").text
        return {
            line.rsplit(" ", 1)[0]
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    rng = random.Random(7)
    with httpx.Client(base_url=base) as client:
        # every route and status the server has once, so the baseline holds the label sets
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            for path in (
                "/nope",
                "/v0/pipes/nope.json",
                "/v0/pipes/recs.json",
                "/healthz",
                "/v0/events",
                "/v0/sql",
                "/docs",
                "/metrics",
            ):
                client.request(method, path)
        first = series()
        for _ in range(500):
            method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 9)))
            word = "".join(rng.choices(string.ascii_lowercase, k=8))
            path = rng.choice(
                [
                    f"/{word}",
                    f"/v0/pipes/{word}.json",
                    f"/v0/{word}",
                    f"/v0/pipes/{word}",
                    f"/{word}/{word}",
                ]
            )
            client.request(rng.choice([method, "GET", "POST"]), path)
        after = series()
    assert any(s.startswith("rtp_requests_total{") for s in after)
    assert len(after - first) <= 10, "\n".join(sorted(after - first))
