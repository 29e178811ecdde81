"""Endpoint overhead: ``recommendations`` over HTTP vs the same SQL on the engine.

chDB lets one process open a data folder, so the two sides take turns on the same data:
the benchmark process opens the folder and runs the rendered SQL (exactly what
``run_pipe`` sends, SETTINGS included) on the raw chDB connection; then it closes it,
starts ``rtp serve`` as its own process and a load generator process
(:mod:`bench.loadgen`) calls the endpoint over HTTP with the same parameters. At
concurrency 16 the raw side runs 16 threads on the connection with no lock (what the
engine can do; the queries carry no parameters, so chDB allows it), while the server
serializes its engine calls. Each side opens the engine fresh and warms up for half the
measuring time (ClickHouse compiles hot expressions and fills its caches per process; the
first seconds after a start are slower), and the sides take turns going first in
successive rounds so drift in the shared machine's load hits both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.common import Server, env, latency_summary
from bench.dataset import data_path

PIPE = "recommendations"


def sample_params(backend, n: int, at: str) -> list[dict]:
    """Shoppers of the last day with their session (a mix of busy and light ones)."""
    _, rows = backend.query(
        "SELECT user_id, session_id FROM events "
        "WHERE timestamp > (SELECT max(timestamp) FROM events) - INTERVAL 1 DAY "
        f"GROUP BY user_id, session_id ORDER BY cityHash64(session_id) LIMIT {n}"
    )
    return [{"user_id": u, "session_id": s, "at": at} for u, s in rows]


def render(project_root: Path, params: list[dict]) -> list[str]:
    """The SQL the server sends for each parameter set (captured from run_pipe)."""
    from rtp.project.load import load_project
    from rtp.query import run_pipe
    from rtp.sql.compose import compile_project

    project, problems = load_project(project_root)
    compiled = compile_project(project, problems)

    class Capture:  # stands in for the embedded engine (its version: table CTEs)
        sql = ""

        def version(self) -> str:
            import chdb

            return chdb.__version__

        def query_bytes(self, sql: str, fmt: str) -> bytes:
            self.sql = sql
            return b""

    cap, out = Capture(), []
    for p in params:
        run_pipe(compiled, cap, PIPE, p, "json", timeout=10.0)
        out.append(cap.sql)
    return out


def raw_engine(conn, sqls: list[str], concurrency: int, seconds: float) -> dict:
    """Closed loop on the chDB connection: ``concurrency`` threads, each running the next
    SQL as soon as the previous finished."""
    warm_until = time.perf_counter() + seconds / 2  # as the load generator does
    for sql in sqls:
        conn.query(sql, "JSON")
        if time.perf_counter() > warm_until:
            break
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds

    def worker(i: int) -> None:
        n = i
        while time.perf_counter() < deadline:
            sql = sqls[n % len(sqls)]
            n += concurrency
            t = time.perf_counter()
            conn.query(sql, "JSON").bytes()
            latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "elapsed": time.perf_counter() - start}


def http(url: str, params: list[dict], concurrency: int, seconds: float) -> dict:
    urls = [f"{url}/v0/pipes/{PIPE}.json?{urlencode(p)}" for p in params]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(urls, f)
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "get", f.name, str(concurrency), str(seconds)],
        capture_output=True,
        text=True,
        env=env(),
        check=True,
    )
    Path(f.name).unlink()
    result = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} endpoint calls failed")
    return result


def run(
    project: Path,
    facts: dict,
    *,
    seconds: float,
    rounds: int,
    samples: int = 200,
    concurrencies=(1, 16),
    log=print,
) -> dict:
    from rtp.engine.embedded import EmbeddedBackend

    at = facts["last_event"][:19]
    raw = {c: {"latencies": [], "elapsed": 0.0} for c in concurrencies}
    api = {c: {"latencies": [], "elapsed": 0.0} for c in concurrencies}
    params: list[dict] = []
    sqls: list[str] = []

    def engine_side() -> None:
        nonlocal params, sqls
        backend = EmbeddedBackend(data_path(project))
        try:
            if not params:
                params = sample_params(backend, samples, at)
                sqls = render(project, params)
            for c in concurrencies:
                res = raw_engine(backend._conn, sqls, c, seconds)
                raw[c]["latencies"] += res["latencies"]
                raw[c]["elapsed"] += res["elapsed"]
        finally:
            backend.close()

    def http_side() -> None:
        with Server(project) as server:
            for c in concurrencies:
                res = http(server.url, params, c, seconds)
                api[c]["latencies"] += res["latencies"]
                api[c]["elapsed"] += res["elapsed"]

    for r in range(rounds):
        # the sides take turns going first, so a trend in the machine's load hits both
        sides = (engine_side, http_side) if r % 2 == 0 or not params else (http_side, engine_side)
        for side in sides:
            side()
        log(f"  endpoint round {r + 1}/{rounds} done")
    out: dict = {
        "pipe": PIPE,
        "parameter_sets": len(params),
        "at": at,
        "seconds_per_side_per_round": seconds,
        "rounds": rounds,
    }
    for c in concurrencies:
        e = latency_summary(raw[c]["latencies"], raw[c]["elapsed"])
        h = latency_summary(api[c]["latencies"], api[c]["elapsed"])
        out[f"c{c}"] = {
            "engine": e,
            "http": h,
            "p50_ratio": h["p50_ms"] / e["p50_ms"],
            "p99_ratio": h["p99_ms"] / e["p99_ms"],
            "throughput_ratio": h["throughput_rps"] / e["throughput_rps"],
        }
    return out
