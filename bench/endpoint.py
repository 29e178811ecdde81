"""Serving: every personalization endpoint over HTTP vs the same SQL on the engine.

For each endpoint (:data:`PIPES`) and each concurrency (1, 16, 64 clients), the same
parameter sets (shopper/session pairs and products of the dataset's last day, ``at`` =
the last event) are sent both ways:

* *engine*: the exact SQL ``run_pipe`` sends (captured, SETTINGS included) on raw chDB
  connections of the benchmark process, CONCURRENCY threads each on its own connection
  (chDB runs one statement at a time per connection: threads sharing one would measure
  that, not the engine; ``rtp serve`` keeps a pool of them too); each call's rows read
  from storage come from chDB's statistics;
* *http*: ``rtp serve`` as its own process, called over loopback by wrk (a Lua script
  rotates through the URLs, :data:`WRK_SCRIPT`), or by :mod:`bench.loadgen` (async httpx)
  when wrk is not installed. Each figure records which generator took it.

chDB lets one process open a data folder, so the two sides take turns on the same data:
each opens the engine fresh and warms up for half the measuring time (ClickHouse compiles
hot expressions and fills its caches per process), and the sides take turns going first
in successive rounds so drift in the shared machine's load hits both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from urllib.parse import urlencode

import httpx

from bench.common import Server, env, latency_summary
from bench.dataset import data_path

PIPES = ("recommendations", "similar_products", "user_profile", "offer", "trending")
CONCURRENCIES = (1, 16, 64)

# wrk: each thread rotates through the paths of the file named after `--`, from its own
# starting point; `done` prints the figures as one JSON line
WRK_SCRIPT = """
local paths = {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  n = math.random(#paths)
end
function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def sample_params(backend, n: int, at: str) -> dict[str, list[dict]]:
    """Parameter sets per endpoint: shoppers of the last day with their session (a mix of
    busy and light ones), products of the last day, ``at`` pinned to the last event."""
    _, rows = backend.query(
        "SELECT user_id, session_id FROM events "
        "WHERE timestamp > (SELECT max(timestamp) FROM events) - INTERVAL 1 DAY "
        f"GROUP BY user_id, session_id ORDER BY cityHash64(session_id) LIMIT {n}"
    )
    _, products = backend.query(
        "SELECT product_id FROM events "
        "WHERE timestamp > (SELECT max(timestamp) FROM events) - INTERVAL 1 DAY "
        f"AND product_id != '' GROUP BY product_id ORDER BY cityHash64(product_id) LIMIT {n}"
    )
    return {
        "recommendations": [{"user_id": u, "session_id": s, "at": at} for u, s in rows],
        "similar_products": [{"product_id": p} for (p,) in products],
        "user_profile": [{"user_id": u, "at": at} for u, _ in rows],
        "offer": [{"user_id": u, "cart_value": 60, "at": at} for u, _ in rows],
        "trending": [{"at": at}],  # the same answer for everyone
    }


def render(project_root: Path, pipe: str, params: list[dict]) -> list[str]:
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
        run_pipe(compiled, cap, pipe, p, "json", timeout=10.0)
        out.append(cap.sql)
    return out


def raw_engine(conns: list, sqls: list[str], seconds: float) -> dict:
    """Closed loop on chDB connections: one thread per connection of ``conns``, each
    running the next SQL as soon as the previous finished; rows read per call from
    chDB's statistics."""
    concurrency = len(conns)
    warm_until = time.perf_counter() + seconds / 2  # as the load generators do
    while time.perf_counter() < warm_until:
        for sql in sqls:
            conns[0].query(sql, "JSON")
            if time.perf_counter() > warm_until:
                break
    latencies: list[float] = []
    rows_read: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds

    def worker(i: int) -> None:
        n = i
        while time.perf_counter() < deadline:
            sql = sqls[n % len(sqls)]
            n += concurrency
            t = time.perf_counter()
            res = conns[i].query(sql, "JSON")
            res.bytes()
            latencies.append(time.perf_counter() - t)
            rows_read.append(res.storage_rows_read())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "elapsed": time.perf_counter() - start, "rows": rows_read}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, paths: list[str], concurrency: int, seconds: float) -> dict:
    """wrk for ``seconds`` after ``seconds / 2`` of warm-up (not counted)."""
    with tempfile.TemporaryDirectory(prefix="rtp-wrk-") as tmp:
        script, listing = Path(tmp) / "rotate.lua", Path(tmp) / "paths.txt"
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        threads = str(min(concurrency, 2))

        def call(duration: float) -> dict:
            out = subprocess.run(
                ["wrk", "-t", threads, "-c", str(concurrency), "-d", f"{max(1, round(duration))}s",
                 "--timeout", "30s", "-s", str(script), url, "--", str(listing)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            line = re.search(r"^\{.*\}$", out.stdout, re.M)
            if not line:
                raise RuntimeError(f"wrk printed no figures: {out.stdout}{out.stderr}")
            return json.loads(line.group(0))

        call(seconds / 2)
        drain(url, paths[0])  # the warm-up's calls still running are not the next figure's
        r = call(seconds)
    if r["errors"]:
        raise RuntimeError(f"{r['errors']} endpoint calls failed under wrk")
    elapsed = r["duration_us"] / 1e6
    return {
        "generator": "wrk",
        "requests": r["requests"],
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "throughput_rps": r["requests"] / elapsed if elapsed else 0.0,
    }


def cache_lookups(url: str, pipe: str) -> dict[str, float]:
    """The server's answer-cache lookups of ``pipe`` so far, by result (hit, miss,
    too_large), from its ``/metrics`` (``rtp_cache_lookups_total``, node ``""``): none
    for a pipe without a ``cache`` setting."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=30).text):
        for sample in family.samples:
            labels = sample.labels
            ours = labels.get("pipe") == pipe and labels.get("node") == ""
            if sample.name == "rtp_cache_lookups_total" and ours:
                out[labels["result"]] = out.get(labels["result"], 0) + sample.value
    return out


def drain(url: str, path: str) -> None:
    """One call after a run: it answers once the calls the generator left in the server's
    queue when it stopped are done, so they don't weigh on the next run."""
    httpx.get(url + path, timeout=300).raise_for_status()


def loadgen(url: str, paths: list[str], concurrency: int, seconds: float) -> dict:
    """The async httpx load generator (bench/loadgen.py), when wrk is missing."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([url + p for p in paths], f)
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
    return {"generator": "httpx", **latency_summary(result["latencies"], result["elapsed"])}


def _merge(figures: list[dict]) -> dict:
    """Rounds of one side into one figure: medians of the percentiles, summed requests."""
    if len(figures) == 1:
        return figures[0]
    return {
        **figures[0],
        "requests": sum(f["requests"] for f in figures),
        "p50_ms": median(f["p50_ms"] for f in figures),
        "p99_ms": median(f["p99_ms"] for f in figures),
        "throughput_rps": median(f["throughput_rps"] for f in figures),
        "cache_hit_rate": _median_or_none([f.get("cache_hit_rate") for f in figures]),
    }


def _median_or_none(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def run(
    project: Path,
    facts: dict,
    *,
    seconds: float,
    rounds: int,
    samples: int = 200,
    pipes=PIPES,
    concurrencies=CONCURRENCIES,
    log=print,
) -> dict:
    from rtp.engine.embedded import EmbeddedBackend

    at = facts["last_event"][:19]
    keys = [(p, c) for p in pipes for c in concurrencies]
    raw: dict = {k: [] for k in keys}
    api: dict = {k: [] for k in keys}
    rows: dict = {p: [] for p in pipes}
    params: dict[str, list[dict]] = {}
    sqls: dict[str, list[str]] = {}
    use_wrk = wrk_available()

    def engine_side() -> None:
        import chdb

        backend = EmbeddedBackend(data_path(project))
        # one connection per client thread (the backend's own first): see the module doc
        conns = [backend._conn]
        conns += [chdb.connect(backend._target) for _ in range(max(concurrencies) - 1)]
        try:
            if not params:
                params.update(sample_params(backend, samples, at))
                for p in pipes:
                    sqls[p] = render(project, p, params[p])
            for p, c in keys:
                res = raw_engine(conns[:c], sqls[p], seconds)
                raw[(p, c)].append(
                    {
                        "generator": "chdb threads, a connection each",
                        **latency_summary(res["latencies"], res["elapsed"]),
                    }
                )
                rows[p] += res["rows"]
        finally:
            for conn in conns[1:]:
                conn.close()
            backend.close()

    def http_side() -> None:
        with Server(project) as server:
            for p, c in keys:
                paths = [f"/v0/pipes/{p}.json?{urlencode(q)}" for q in params[p]]
                call = wrk if use_wrk else loadgen
                before = cache_lookups(server.url, p)
                figure = call(server.url, paths, c, seconds)
                drain(server.url, paths[0])
                after = cache_lookups(server.url, p)
                looked = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                total = sum(looked.values())
                figure["cache_hit_rate"] = looked.get("hit", 0) / total if total else None
                api[(p, c)].append(figure)

    for r in range(rounds):
        # the sides take turns going first, so a trend in the machine's load hits both
        sides = (engine_side, http_side) if r % 2 == 0 or not params else (http_side, engine_side)
        for side in sides:
            side()
        log(f"  endpoint round {r + 1}/{rounds} done")
    out: dict = {
        "at": at,
        "seconds_per_side_per_round": seconds,
        "rounds": rounds,
        "generator": "wrk" if use_wrk else "httpx",
        "pipes": {},
    }
    for p in pipes:
        figures: dict = {
            "parameter_sets": len(params[p]),
            "rows_read_p50": median(rows[p]) if rows[p] else 0,
            "rows_read_max": max(rows[p], default=0),
        }
        for c in concurrencies:
            e, h = _merge(raw[(p, c)]), _merge(api[(p, c)])
            figures[f"c{c}"] = {
                "engine": e,
                "http": h,
                "p50_ratio": h["p50_ms"] / e["p50_ms"],
                "p99_ratio": h["p99_ms"] / e["p99_ms"],
                "throughput_ratio": h["throughput_rps"] / e["throughput_rps"],
            }
        out["pipes"][p] = figures
    return out
