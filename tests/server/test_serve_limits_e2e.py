"""Through a real `rtp serve` process: a long /v0/sql query no longer blocks the others,
and it is cut off at its deadline with 408."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.serving import rtp_serve

ROOT = Path(__file__).resolve().parents[2]
LONG = "SELECT count() FROM numbers_mt(1000000000000) WHERE NOT ignore(sipHash64(number))"


def test_a_light_endpoint_answers_while_a_long_query_runs(project_factory):
    root = project_factory()  # MINIMAL: events + by_user
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with rtp_serve(root, "--timeout", "4", env=env) as served:
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
