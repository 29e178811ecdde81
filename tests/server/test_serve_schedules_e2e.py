"""Scheduled copy pipes in a real `rtp serve` process: they run on their cron, failures
are logged and retried, a redeploy's SQL is what runs next, and SIGTERM during a long
copy exits cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from tests.server.conftest import EVENTS
from tests.serving import ROOT, free_port

SNAPSHOT = """
    columns:
      - {name: user_id, type: String}
      - {name: n, type: UInt64}
    sorting_key: [user_id]
"""


def copy_pipe(sql: str, schedule: str) -> str:
    return (
        f"nodes:\n  - name: q\n    sql: {json.dumps(sql)}\n"
        f"type: copy\ntarget: snapshot\nschedule: '{schedule}'\n"
    )


def wait_for(fn, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start(root, **env):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtp.cli.main",
            "serve",
            "--no-auth",
            "-p",
            str(root),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def sql(base: str, query: str) -> list[dict]:
    r = httpx.get(f"{base}/v0/sql", params={"q": query + " FORMAT JSON"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def copies(base: str) -> dict:
    return httpx.get(f"{base}/healthz", timeout=30).json().get("copies", {})


def test_scheduled_copy_runs_fails_is_retried_and_follows_redeploys(project_factory):
    every_2s = "* * * * * */2"  # croniter's 6th field: seconds
    root = project_factory(
        {
            "datasources/events.yaml": EVENTS,
            "datasources/snapshot.yaml": SNAPSHOT,
            "pipes/by_user.yaml": None,
            "pipes/snap.yaml": copy_pipe(
                "SELECT user_id, count() AS n FROM events GROUP BY user_id", every_2s
            ),
        }
    )
    proc, base = start(root)
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, what="server")
        events = "\n".join(
            json.dumps(
                {
                    "timestamp": "2030-01-01 00:00:00",
                    "user_id": u,
                    "product": {"id": "p", "price": 1.0},
                }
            )
            for u in ("u1", "u1", "u2")
        )
        r = httpx.post(f"{base}/v0/events?name=events&wait=true", content=events)
        assert r.json() == {"successful_rows": 3, "quarantined_rows": 0}
        # the copy ran on its own: the target holds the events' per-user counts
        rows = wait_for(
            lambda: sql(
                base,
                "SELECT user_id, toInt32(n) AS n FROM snapshot ORDER BY user_id LIMIT 1 BY user_id",
            ),
            what="a copy",
        )
        assert rows == [{"user_id": "u1", "n": 2}, {"user_id": "u2", "n": 1}]
        snap = wait_for(
            lambda: copies(base)["snap"]["runs"] >= 2 and copies(base)["snap"], what="a second run"
        )
        assert snap["schedule"] == every_2s and snap["last_error"] is None
        assert snap["next_run"] and snap["last_run"] and snap["last_rows"] >= 2

        # a failing copy: logged with the pipe and the error, retried on every fire
        (root / "pipes/snap.yaml").write_text(
            copy_pipe(
                "SELECT user_id, toUInt64(throwIf(count() > 0, 'boom')) AS n FROM events "
                "GROUP BY user_id",
                every_2s,
            )
        )
        assert httpx.post(f"{base}/v0/deploy", json={}, timeout=60).status_code == 200
        failing = wait_for(
            lambda: copies(base)["snap"]["failures"] >= 2 and copies(base)["snap"],
            what="two failures",
        )
        assert "boom" in failing["last_error"] and failing["last_error"].startswith("RTP")

        # fixed by a redeploy: the next fire runs the new SQL (the current project)
        (root / "pipes/snap.yaml").write_text(
            copy_pipe("SELECT user_id, toUInt64(100) AS n FROM events GROUP BY user_id", every_2s)
        )
        assert httpx.post(f"{base}/v0/deploy", json={}, timeout=60).status_code == 200
        wait_for(
            lambda: (
                sql(base, "SELECT toInt32(count()) AS c FROM snapshot WHERE n = 100")[0]["c"] == 2
            ),
            what="the redeployed copy",
        )
        assert wait_for(
            lambda: copies(base)["snap"]["last_error"] is None and copies(base)["snap"],
            what="recovery",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "copy pipe 'snap' failed" in err and "boom" in err
    assert "Traceback" not in err


def test_sigterm_during_a_long_copy_exits_cleanly(project_factory):
    slow = (
        "SELECT toString(sum(number)) AS user_id, toUInt64(1) AS n "
        "FROM numbers(1000000000000)"
    )  # hours of work: only the deadline stops it
    root = project_factory(
        {
            "datasources/events.yaml": EVENTS,
            "datasources/snapshot.yaml": SNAPSHOT,
            "pipes/by_user.yaml": None,
            "pipes/slow.yaml": copy_pipe(slow, "* * * * * *"),
        }
    )
    proc, base = start(root, RTP_COPY_TIMEOUT="8")
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, what="server")
        # fires every second while one run holds the engine: started once, fires skipped
        job = wait_for(
            lambda: (
                copies(base)["slow"]["running"]
                and copies(base)["slow"]["skipped"] >= 1
                and copies(base)["slow"]
            ),
            what="a running copy",
        )
        assert job["runs"] == 0 and job["failures"] == 0
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "waiting for copy pipe 'slow'" in err
    # the engine's deadline (8 s from the run's start) ended the copy, not its hours
    assert took < 30, took
    assert "RTP507" in err and "not started again" in err
    assert not (root / ".rtp/owner.json").exists()


def test_an_empty_copy_target_is_filled_at_start_not_at_the_first_fire(project_factory):
    # fires once a year: whatever fills the target during the test is the catch-up
    yearly = "0 0 1 1 *"
    root = project_factory(
        {
            "datasources/events.yaml": EVENTS,
            "datasources/snapshot.yaml": SNAPSHOT,
            "pipes/by_user.yaml": None,
            "pipes/snap.yaml": copy_pipe(
                "SELECT user_id, count() AS n FROM events GROUP BY user_id", yearly
            ),
        }
    )
    rows = root / "events.ndjson"
    rows.write_text(
        "\n".join(
            json.dumps(
                {
                    "timestamp": "2030-01-01 00:00:00",
                    "user_id": u,
                    "product": {"id": "p", "price": 1},
                }
            )
            for u in ("u1", "u1", "u2")
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["deploy"], ["append", "events", str(rows)]):
        subprocess.run(
            [sys.executable, "-m", "rtp.cli.main", *args, "-p", str(root)],
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
        )

    def caught_up(base: str) -> None:  # empty at start: run at once
        snap = wait_for(
            lambda: copies(base)["snap"]["runs"] == 1 and copies(base)["snap"],
            timeout=30,
            what="the catch-up run",
        )
        assert snap["last_rows"] == 2 and snap["last_error"] is None
        rows = sql(base, "SELECT user_id, toInt32(n) AS n FROM snapshot ORDER BY user_id")
        assert rows == [{"user_id": "u1", "n": 2}, {"user_id": "u2", "n": 1}]

    def waits_for_its_fire(base: str) -> None:  # filled by the first server
        time.sleep(3)
        snap = copies(base)["snap"]
        assert snap["runs"] == 0 and not snap["running"]
        assert snap["next_run"].endswith("-01-01T00:00:00+00:00")

    for check in (caught_up, waits_for_its_fire):
        proc, base = start(root)
        try:
            wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, what="server")  # noqa: B023
            check(base)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
