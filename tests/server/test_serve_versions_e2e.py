"""End to end: a real `rtp serve` holds the embedded engine and takes events in a loop
while `rtp deploy --stage`, `promote` and `rollback` run through it. Every acknowledged
event is in the live version and in the kept one, once; the staged version answers
`?__stage=staging` for ADMIN tokens only, and the server serves what it made live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import httpx
from deploy_helpers import SHOP, SHOP_V2, SPENT

from tests.serving import ROOT, rtp_serve

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def rtp(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )


class Loop(threading.Thread):
    """POSTs batches of events until stopped; counts the rows the server acknowledged."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.acked = self.sent = 0
        self.refused: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}) as client:
            while not self.stop.is_set():
                body = "\n".join(
                    json.dumps(
                        {
                            "timestamp": "2024-05-01 10:00:00",
                            "user_id": "u1",
                            "product": {"id": f"p{n + i}", "price": 1.0},
                        }
                    )
                    for i in range(5)
                )
                n += 5
                self.sent += 5
                r = client.post(
                    f"{self.base}/v0/events",
                    params={"name": "events", "wait": "true"},
                    content=body,
                    timeout=60,
                )
                if r.status_code == 200:
                    self.acked += r.json()["successful_rows"]
                else:
                    self.refused.append(r.text)
                time.sleep(0.01)


def _sql(base: str, token: str, query: str) -> list:
    r = httpx.post(
        f"{base}/v0/sql", json={"q": query}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    return [list(row.values()) for row in r.json()["data"]]


def _spent(base: str, token: str, stage: str | None = None) -> tuple[float, int]:
    params = {"user_id": "u1", **({"__stage": stage} if stage else {})}
    r = httpx.get(
        f"{base}/v0/pipes/spent.json",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    row = r.json()["data"][0]
    return float(row["total"]), int(row["n"])


def test_events_keep_flowing_through_stage_promote_rollback(project_factory):
    root = project_factory({**SHOP, "pipes/spent.yaml": SPENT}, base=None)
    assert rtp("deploy", "-p", root).returncode == 0
    with rtp_serve(root, env=ENV) as served:
        base, admin = served.base, served.admin
        loop = Loop(base, admin)
        loop.start()
        try:
            time.sleep(0.5)
            for rel, text in SHOP_V2.items():
                (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
            staged = rtp("deploy", "--stage", "-p", root)
            assert staged.returncode == 0, staged.stdout + staged.stderr
            assert "through the server" in staged.stdout
            assert "staged version 2" in staged.stdout
            time.sleep(0.5)
            # the staged version answers with its own query, live with the old one
            total, n = _spent(base, admin, "staging")
            assert total == 2 * n and n > 0
            total, n = _spent(base, admin)
            assert total == n
            anonymous = httpx.get(f"{base}/v0/pipes/spent.json?__stage=staging")
            assert anonymous.status_code == 403
            # a token scoped to the staged endpoint reads it, and not live
            made = rtp("token", "create", "ci", "--scope", "STAGING:READ:spent", "-p", root)
            assert made.returncode == 0, made.stderr
            ci = made.stdout.strip()
            total, n = _spent(base, ci, "staging")
            assert total == 2 * n
            live = httpx.get(
                f"{base}/v0/pipes/spent.json", headers={"Authorization": f"Bearer {ci}"}
            )
            assert live.status_code == 403
            bad = httpx.get(
                f"{base}/v0/pipes/spent.json?__stage=tomorrow",
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert bad.status_code == 400 and "RTP400" in bad.text
            header = httpx.get(
                f"{base}/v0/sql",
                params={"q": "SELECT count() AS c FROM events WHERE country = 'es'"},
                headers={"Authorization": f"Bearer {admin}", "X-RTP-Stage": "staging"},
            )
            assert header.status_code == 200 and header.json()["data"][0]["c"] > 0

            requests = root / "requests.txt"
            requests.write_text("/v0/pipes/spent.json?user_id=u1\n")
            diffed = rtp("deploy", "diff", requests, "-p", root)
            assert diffed.returncode == 0, diffed.stdout + diffed.stderr
            assert "1 request(s), 1 differ" in diffed.stdout, diffed.stdout
            # the requests the server answered last (the token left out, staged ones too)
            diffed = rtp("deploy", "diff", "--recent", "3", "-p", root)
            assert diffed.returncode == 0, diffed.stdout + diffed.stderr
            assert "DIFF /v0/pipes/spent.json?user_id=u1\n" in diffed.stdout, diffed.stdout
            assert "token" not in diffed.stdout and "__stage" not in diffed.stdout

            promoted = rtp("deploy", "promote", "-p", root)
            assert promoted.returncode == 0, promoted.stdout + promoted.stderr
            total, n = _spent(base, admin)  # served from the promoted version at once
            assert total == 2 * n
            time.sleep(0.5)
            back = rtp("deploy", "rollback", "-p", root)
            assert back.returncode == 0, back.stdout + back.stderr
            total, n = _spent(base, admin)
            assert total == n
            time.sleep(0.5)
        finally:
            loop.stop.set()
            loop.join(timeout=60)
        assert loop.refused == []
        acked = loop.acked
        assert acked >= 20
        # live (version 1 again) and the kept version 2: every row once
        assert _sql(base, admin, "SELECT count() FROM events") == [[acked]]
        assert _sql(base, admin, "SELECT count() FROM events__rtp_v2") == [[acked]]
        assert _sql(base, admin, "SELECT sum(n), sum(total) FROM spend") == [[acked, acked]]
        assert _sql(base, admin, "SELECT sum(n), sum(total) FROM spend__rtp_v2") == [
            [acked, 2 * acked]
        ]
        listed = rtp("deploy", "ls", "-p", root)
        assert "1  live" in listed.stdout and "2  previous" in listed.stdout, listed.stdout


SERVER_URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


def _until(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        assert time.monotonic() < deadline, "the server did not follow"
        time.sleep(0.2)


def test_a_server_follows_versions_changed_by_another_process(project_factory, tmp_path):
    """`rtp serve` on a ClickHouse server, `rtp deploy --stage|promote|rollback` run
    directly on the target by another process: the server answers from the staged and
    then the promoted version within seconds, without a restart."""
    import uuid

    import pytest

    if not SERVER_URL:
        pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set (a ClickHouse server to deploy to)")
    url = SERVER_URL.rsplit("/", 1)[0] + f"/rtp_test_follow_{uuid.uuid4().hex[:8]}"
    root = project_factory({**SHOP, "pipes/spent.yaml": SPENT}, base=None)
    assert rtp("deploy", "-p", root, "--target", url).returncode == 0
    data = tmp_path / "e.ndjson"
    data.write_text(
        json.dumps(
            {
                "timestamp": "2024-05-01 10:00:00",
                "user_id": "u1",
                "product": {"id": "p", "price": 1.0},
            }
        )
        + "\n"
    )
    assert rtp("append", "events", data, "-p", root, "--target", url).returncode == 0
    try:
        with rtp_serve(root, "--target", url, env=ENV) as served:
            base, admin = served.base, served.admin
            for rel, text in SHOP_V2.items():
                (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
            staged = rtp("deploy", "--stage", "-p", root, "--target", url)
            assert staged.returncode == 0, staged.stdout + staged.stderr
            assert _until(lambda: _spent(base, admin, "staging") == (2.0, 1))
            assert rtp("deploy", "promote", "-p", root, "--target", url).returncode == 0
            assert _until(lambda: _spent(base, admin) == (2.0, 1))
            assert rtp("deploy", "rollback", "-p", root, "--target", url).returncode == 0
            # version 1 was deployed before the first stage and keeps no files: the
            # server keeps version 2's pipes (their SQL is the same here) on version 1's
            # tables, which the rename made live
            assert _until(lambda: _spent(base, admin) == (1.0, 1))
    finally:
        from rtp.engine.clickhouse import ClickHouseBackend

        backend = ClickHouseBackend(url)
        backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
        backend.close()
