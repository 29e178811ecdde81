"""Endpoint requests/s with 1, 2 and 4 ``rtp serve`` processes on a ClickHouse server
target, against the server's own rate for the same SQL:

    python -m bench.workers --target clickhouse://default@127.0.0.1:19000/db \\
        --serve-target clickhouse://rtp_server:rtp_server@127.0.0.1:19000/db \\
        --http http://127.0.0.1:18123 [--rows 1000000] [--seconds 5] [--concurrency 16]

A fresh database (``<db>_bench_<random>``, dropped at the end) gets a datasource of
``--rows`` events and one endpoint (a primary-key lookup and a small aggregate per user).
The base is the ClickHouse server's own HTTP interface answering the very statement the
endpoint renders (same parameters, ``FORMAT JSON``), driven by the same load generator
(:mod:`bench.loadgen`: closed loop, keep-alive connections, warm-up not counted); then
``rtp serve --workers N`` answers the endpoint for N in ``--processes``. Prints a table
and writes ``bench/results/workers-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

from bench.common import REPO, Server, env, machine, pct, rtp_cmd

USERS = 500
PROJECT = {
    "rtp.yaml": "name: bench_workers\n",
    "datasources/events.yaml": (
        "columns:\n"
        "  - {name: timestamp, type: DateTime}\n"
        "  - {name: user_id, type: String}\n"
        "  - {name: product_id, type: String}\n"
        "  - {name: price, type: Float64}\n"
        "sorting_key: [user_id, timestamp]\n"
    ),
    "pipes/by_user.yaml": (
        "nodes:\n"
        "  - name: top\n"
        "    sql: |\n"
        "      SELECT product_id, sum(price) AS spent FROM events\n"
        "      WHERE user_id = {{ String(user_id, 'u1') }}\n"
        "      GROUP BY product_id ORDER BY spent DESC LIMIT 10\n"
    ),
}


def rtp(*args: str) -> str:
    done = subprocess.run(rtp_cmd(*args), capture_output=True, text=True, env=env(), check=False)
    if done.returncode:
        raise SystemExit(f"rtp {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def load(root: Path, deploy_url: str, rows: int) -> None:
    from rtp.engine.clickhouse import ClickHouseBackend

    rtp("deploy", "-p", str(root), "-t", deploy_url)
    backend = ClickHouseBackend(deploy_url)
    try:
        backend.execute(
            "INSERT INTO events SELECT toDateTime('2026-01-01 00:00:00') + number, "
            f"concat('u', toString(number % {USERS})), concat('p', toString(number % 997)), "
            f"(number % 100) / 10 FROM numbers({rows})"
        )
    finally:
        backend.close()


def drive(urls: list[str], concurrency: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(urls, f)
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "get", f.name, str(concurrency), str(seconds)],
        capture_output=True,
        text=True,
        env=env(),
        check=True,
    )
    out = json.loads(done.stdout)
    lat = out["latencies"]
    return {
        "rps": round(len(lat) / out["elapsed"], 1),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "errors": out["errors"],
    }


def serve_rate(root: Path, serve_url: str, processes: int, concurrency: int, seconds: float):
    """The endpoint's rate through ``rtp serve --workers processes`` (``--no-auth``, as
    the other benchmarks: a token check is one dict lookup)."""
    with Server(root, ("-t", serve_url, "--workers", str(processes))) as server:
        time.sleep(1.0)  # every worker up, not only the first to answer /healthz
        urls = [f"{server.url}/v0/pipes/by_user.json?user_id=u{i}" for i in range(USERS)]
        return drive(urls, concurrency, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--target", required=True, help="deploying user's clickhouse:// URL")
    parser.add_argument("--serve-target", required=True, help="serving user's URL")
    parser.add_argument("--http", required=True, help="the server's HTTP interface")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)

    from rtp.engine.clickhouse import ClickHouseBackend, parse_url
    from rtp.ops.build import build

    database = f"{parse_url(args.target)['database']}_bench_{uuid.uuid4().hex[:8]}"
    deploy_url = args.target.rsplit("/", 1)[0] + "/" + database
    serve_url = args.serve_target.rsplit("/", 1)[0] + "/" + database
    serve_user = parse_url(args.serve_target)
    result: dict = {"machine": machine(), "rows": args.rows, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in PROJECT.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        try:
            load(root, deploy_url, args.rows)
            compiled = build(root, check=False).compiled
            engine_urls = []
            for i in range(USERS):
                values = {**compiled.sample_values("by_user"), "user_id": f"u{i}"}
                sql = compiled.compose("by_user", values).sql + "\nFORMAT JSON"
                query = urllib.parse.urlencode(
                    {
                        "database": database,
                        "user": serve_user["user"],
                        "password": serve_user["password"],
                        "query": sql,
                    }
                )
                engine_urls.append(f"{args.http}/?{query}")
            result["engine"] = drive(engine_urls, args.concurrency, args.seconds)
            print(f"engine (HTTP, same SQL): {result['engine']}", flush=True)
            for n in args.processes:
                rate = serve_rate(root, serve_url, n, args.concurrency, args.seconds)
                rate["ratio_to_engine"] = round(rate["rps"] / result["engine"]["rps"], 3)
                result[f"rtp_{n}"] = rate
                print(f"rtp serve --workers {n}: {rate}", flush=True)
        finally:
            admin = ClickHouseBackend(args.target)
            try:
                admin.execute(f"DROP DATABASE IF EXISTS `{database}`")
            finally:
                admin.close()
    one = result.get(f"rtp_{args.processes[0]}", {}).get("rps")
    print("\n| processes | req/s | p50 ms | p99 ms | × one process | × engine |")
    print("|---:|---:|---:|---:|---:|---:|")
    e = result["engine"]
    print(f"| engine (HTTP) | {e['rps']} | {e['p50_ms']} | {e['p99_ms']} | | 1.0 |")
    for n in args.processes:
        r = result[f"rtp_{n}"]
        scale = round(r["rps"] / one, 2) if one else ""
        print(
            f"| {n} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {scale} | "
            f"{r['ratio_to_engine']} |"
        )
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = REPO / "bench" / "results" / f"workers-{stamp}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
