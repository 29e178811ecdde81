"""``python -m bench.isolation``: does one heavy caller hurt everyone else?

Against a real ``rtp serve`` process of a small project:

- p99 of a light endpoint on an idle server, then while a ~30 s CPU-bound ``/v0/sql``
  query runs (target: within 2x of idle);
- the long query is cut at its deadline (408);
- the server's peak memory (VmHWM) before and after a read token's query that would
  need ~20 GB (``groupArray`` of 2e9 strings), which its memory limit stops.

Figures are printed and written to ``bench/results/<UTC>-isolation.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx

from bench.common import REPO, env, free_port, latency_summary, machine, rtp_cmd, versions

FILES = {
    "rtp.yaml": "name: isolation\n",
    "datasources/events.yaml": """
        columns:
          - {name: timestamp, type: DateTime}
          - {name: user_id, type: String}
          - {name: price, type: Float64}
        sorting_key: [user_id, timestamp]
    """,
    "pipes/light.yaml": """
        nodes:
          - name: mine
            sql: |
              SELECT count() AS n, sum(price) AS spent FROM events
              WHERE user_id = {{ String(user_id, 'u1') }}
    """,
}
# CPU-bound on every core until its deadline (an ADMIN query: rows unlimited)
LONG = "SELECT count() FROM numbers_mt(1000000000000) WHERE NOT ignore(sipHash64(number))"
# ~20 GB if it were allowed to finish: 2e9 strings in one array
HUGE = (
    "SELECT length(groupArray(concat(user_id, toString(r)))) FROM events "
    "ARRAY JOIN range(20000) AS r"
)  # 1e5 rows x 2e4
# memory that grows as it goes: 1e10 joined rows into one array (~80 GB if allowed)
GROWING = (
    "SELECT length(groupArray(rowNumberInAllBlocks())) FROM events AS a CROSS JOIN events AS b"
)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def write_project(root: Path) -> None:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


class Serve:
    """``rtp serve`` with authentication on a free port; tokens made before it starts."""

    def __init__(self, root: Path, *args: str):
        from rtp.cli.token import tokens_file
        from rtp.server.tokens import TokenStore

        store = TokenStore(tokens_file(root))
        self.admin = store.ensure_admin()
        self.reader = store.create(
            f"reader{time.time_ns()}", ["DATASOURCES:READ:events", "PIPES:READ:light"]
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(root / "serve.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            rtp_cmd("serve", "-p", str(root), "--port", self.url.rsplit(":", 1)[1], *args),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env(),
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rtp serve did not start: see {root / 'serve.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def light_latencies(client: httpx.Client, token: str, seconds: float) -> list[float]:
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        r = client.get("/v0/pipes/light.json", params={"user_id": "u7", "token": token})
        samples.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"light endpoint answered {r.status_code}: {r.text}")
    return samples


def run(
    long_seconds: float = 30.0, idle_seconds: float = 10.0, rows: int = 100_000, log=print
) -> dict:
    result: dict = {
        "machine": machine(),
        "versions": versions(),
        "long_query_deadline_s": long_seconds,
    }
    with tempfile.TemporaryDirectory(prefix="rtp-isolation-") as tmp:
        root = Path(tmp)
        write_project(root)
        subprocess.run(
            rtp_cmd("deploy", "-p", str(root)),
            env=env(),
            check=True,
            capture_output=True,
            timeout=120,
        )
        server = Serve(root, "--timeout", str(long_seconds))
        try:
            pid = server.proc.pid
            client = httpx.Client(base_url=server.url, timeout=long_seconds + 30)
            events = "\n".join(
                json.dumps(
                    {"timestamp": "2030-01-01 00:00:00", "user_id": f"u{i % 1000}", "price": i % 7}
                )
                for i in range(rows)
            )
            r = client.post(
                "/v0/events",
                params={"name": "events", "wait": "true", "token": server.admin},
                content=events,
            )
            r.raise_for_status()
            log(f"server pid {pid}: {rows:,} events loaded; RSS {vm_rss_kib(pid) / 1024:.0f} MiB")
            light_latencies(client, server.reader, 1.0)  # warm
            idle = light_latencies(client, server.reader, idle_seconds)
            result["idle"] = latency_summary(idle, idle_seconds)
            log(
                f"idle: p50 {result['idle']['p50_ms']:.1f} ms, "
                f"p99 {result['idle']['p99_ms']:.1f} ms"
            )

            answer: dict = {}

            def long_query():
                t = time.monotonic()
                resp = client.get("/v0/sql", params={"q": LONG, "token": server.admin})
                answer.update(
                    status=resp.status_code,
                    seconds=time.monotonic() - t,
                    code=resp.json().get("code"),
                )

            thread = threading.Thread(target=long_query)
            thread.start()
            time.sleep(0.5)
            busy = light_latencies(client, server.reader, max(1.0, long_seconds - 2))
            thread.join()
            result["during_long_query"] = latency_summary(busy, long_seconds - 2)
            result["long_query"] = answer
            result["p99_ratio"] = result["during_long_query"]["p99_ms"] / result["idle"]["p99_ms"]
            log(
                f"during a {long_seconds:g} s query: p50 "
                f"{result['during_long_query']['p50_ms']:.1f} ms, p99 "
                f"{result['during_long_query']['p99_ms']:.1f} ms "
                f"({result['p99_ratio']:.2f}x idle); long query: {answer}"
            )

            before = vm_hwm_kib(pid)
            t = time.monotonic()
            r = client.get("/v0/sql", params={"q": HUGE, "token": server.reader})
            result["huge_query"] = {
                "status": r.status_code,
                "code": r.json().get("code"),
                "seconds": time.monotonic() - t,
                "error": r.json().get("error", "")[:200],
                "peak_rss_before_mib": before / 1024,
                "peak_rss_after_mib": vm_hwm_kib(pid) / 1024,
            }
            log(
                f"~20 GB query by a read token: {r.status_code} {r.json().get('code')} "
                f"in {result['huge_query']['seconds']:.1f} s; peak RSS "
                f"{before / 1024:.0f} -> {vm_hwm_kib(pid) / 1024:.0f} MiB"
            )
            t = time.monotonic()
            r = client.get("/v0/sql", params={"q": GROWING, "token": server.reader})
            result["growing_query"] = {
                "status": r.status_code,
                "code": r.json().get("code"),
                "seconds": time.monotonic() - t,
                "error": r.json().get("error", "")[:200],
                "peak_rss_after_mib": vm_hwm_kib(pid) / 1024,
            }
            log(
                f"growing query by a read token: {r.status_code} {r.json().get('code')} "
                f"in {result['growing_query']['seconds']:.1f} s; peak RSS "
                f"{vm_hwm_kib(pid) / 1024:.0f} MiB: {result['growing_query']['error'][:90]}"
            )
            ok = client.get("/v0/pipes/light.json", params={"token": server.reader})
            result["after"] = {"light_status": ok.status_code}
        finally:
            server.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.isolation", description=__doc__)
    parser.add_argument("--long", type=float, default=30.0, help="the long query's seconds")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle probes")
    args = parser.parse_args(argv)
    result = run(args.long, args.idle, log=lambda m: print(m, file=sys.stderr, flush=True))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{stamp}-isolation.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("machine", "versions")}, indent=2)
    )
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
