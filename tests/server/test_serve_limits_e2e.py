"""Through a real `rtp serve` process: a long /v0/sql query no longer blocks the others,
and it is cut off at its deadline with 408."""

from __future__ import annotations

import threading
import time

import httpx

from tests.serving import deploy, rtp_serve

LONG = "SELECT count() FROM numbers_mt(1000000000000) WHERE NOT ignore(sipHash64(number))"


def test_a_light_endpoint_answers_while_a_long_query_runs(project_factory):
    root = project_factory()  # MINIMAL: events + by_user
    deploy(root)
    with rtp_serve(root, "--timeout", "4") as served:
        admin, base = served.admin, served.base
        long: dict = {}

        def run_long():
            started = time.monotonic()
            r = httpx.get(f"{base}/v0/sql", params={"q": LONG, "token": admin}, timeout=60)
            long.update(
                status=r.status_code, code=r.json()["code"], seconds=time.monotonic() - started
            )

        thread = threading.Thread(target=run_long)
        thread.start()
        time.sleep(0.5)
        answers = []
        while thread.is_alive():
            r = httpx.get(
                f"{base}/v0/pipes/by_user.json",
                params={"user_id": "u1", "token": admin},
                timeout=10,
            )
            answers.append((r.status_code, time.monotonic()))
            time.sleep(0.1)
        thread.join()
        assert long["status"] == 408 and long["code"] == "RTP507", long
        assert 3.5 < long["seconds"] < 15, long
        # before: the engine's single lock held every endpoint until the long query ended
        assert len(answers) >= 5 and all(status == 200 for status, _ in answers), answers
        assert httpx.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}


def test_calls_whose_caller_hung_up_while_queued_never_run(project_factory):
    """One worker thread, busy with a 2.9 s query; five callers give up after 0.3 s while
    queued behind it. Their queries never start (499 RTP413, a 4xx in /metrics), so the
    next caller is answered once the first query ends, not 5 x 2.9 s later."""
    slow = "SELECT count() FROM numbers(29) WHERE NOT ignore(sleepEachRow(0.1))"
    root = project_factory()
    deploy(root)
    with rtp_serve(root, "--threads", "1") as served:
        base, admin = served.base, served.admin
        first = threading.Thread(
            target=httpx.get,
            args=(f"{base}/v0/sql",),
            kwargs={"params": {"q": slow, "token": admin}, "timeout": 30},
        )
        first.start()
        time.sleep(1)  # the first query holds the one worker
        for _ in range(5):
            try:
                httpx.get(f"{base}/v0/sql", params={"q": slow, "token": admin}, timeout=0.3)
                raise AssertionError("a queued call was answered within 0.3 s")
            except httpx.TimeoutException:
                pass
        started = time.monotonic()
        r = httpx.get(f"{base}/v0/sql", params={"q": "SELECT 1 AS x", "token": admin}, timeout=30)
        waited = time.monotonic() - started
        first.join()
        assert r.status_code == 200 and waited < 5, (r.status_code, waited)
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        sql = {
            line.split('status="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('rtp_requests_total{method="GET",route="/v0/sql"')
        }
        assert sql == {"200": 2, "4xx": 5}, sql
