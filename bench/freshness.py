<<<<<<< HEAD
"""Freshness: how long after an event is accepted does `recommendations` reflect it?

Starts `rtp dev` (embedded engine, fixtures loaded) on a copy of the root project, then
for each of ``--events`` new shoppers sends one `view` of an in-stock product exactly as
the storefront does (``POST /v0/events?name=events&wait=true``) and polls
``recommendations`` for that shopper's session until the answer shows the view (the
viewed product is left out and a product is recommended for "this session"). Reported:

- ``ingest``: POST sent -> 200 received (the event is accepted and durable)
- ``visible``: 200 received -> the end of the first `recommendations` answer showing it
- ``click``: POST sent -> that answer (what a shopper sees: the storefront's figure)
- ``polls``: how many `recommendations` calls it took (1 = visible on the first read)

    python3 -m bench.freshness --events 50 [--background 50]

``--background RATE`` runs examples/generator.py against the same server at RATE
events/s meanwhile (its own 2,000-product catalogue; live shoppers in every view).
=======
"""Freshness: from an event's POST being acknowledged to its effect in ``recommendations``.

While a background generator (``examples/generator.py`` live) sends shopper events to
``rtp serve``, each probe is a new shopper in a new session who views one product of a
category; after the POST (``wait=true``) is acknowledged, the probe polls the endpoint
back to back until the top recommendation is of that category with reason ``session``.
Freshness is the time from the acknowledgement to that answer (so it includes at least one
endpoint call); a probe whose category already led before its event is skipped.
>>>>>>> bench
"""

from __future__ import annotations

<<<<<<< HEAD
import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
=======
import datetime as dt
import json
import subprocess
import sys
>>>>>>> bench
import time
from pathlib import Path

import httpx

<<<<<<< HEAD
ROOT = Path(__file__).resolve().parent.parent


def start_dev(folder: Path) -> tuple[subprocess.Popen, str, str]:
    """`rtp dev` on a copy of the root project; returns (process, base URL, token)."""
    shutil.copy2(ROOT / "rtp.yaml", folder / "rtp.yaml")
    for name in ("datasources", "pipes", "fixtures", "examples/storefront"):
        shutil.copytree(ROOT / name, folder / name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtp.cli.main", "dev", "--port", str(port), "-p", str(folder)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        found = re.search(r"open (http://\S+)/storefront/\?token=(\S+)", line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            for _ in range(100):  # the URL is printed just before uvicorn binds
                try:
                    httpx.get(found.group(1) + "/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            return proc, found.group(1), found.group(2)
    raise SystemExit("rtp dev stopped before printing its storefront URL")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def measure(base: str, token: str, events: int, seed: int) -> dict[str, list[float]]:
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                          timeout=30)
    products = client.get("/v0/pipes/catalogue.json", params={"per_category": 100}).json()
    products = [p for p in products["data"] if p["stock"]]
    rng = random.Random(seed)
    out: dict[str, list[float]] = {"ingest": [], "visible": [], "click": [], "polls": []}
    for i in range(events):
        p = rng.choice(products)
        user, session = f"u_fresh_{seed}_{i}", f"s_fresh_{seed}_{i}"
        row = {"timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
               "event_type": "view", "user_id": user, "session_id": session,
               "product_id": p["product_id"], "category": p["category"], "brand": p["brand"],
               "price": p["price"], "query": "", "referrer": ""}
        sent = time.perf_counter()
        res = client.post("/v0/events", params={"name": "events", "wait": "true"},
                          content=json.dumps(row) + "\n",
                          headers={"Content-Type": "application/x-ndjson"})
        accepted = time.perf_counter()
        res.raise_for_status()
        polls = 0
        while True:
            polls += 1
            recs = client.get("/v0/pipes/recommendations.json",
                              params={"user_id": user, "session_id": session, "limit": 8})
            seen = time.perf_counter()
            data = recs.json()["data"]
            if (p["product_id"] not in {r["product_id"] for r in data}
                    and any(r["reason"] == "session" for r in data)):
                break
            if seen - accepted > 10:
                raise SystemExit(f"event {i} not visible after 10 s: {data}")
            time.sleep(0.005)
        out["ingest"].append(accepted - sent)
        out["visible"].append(seen - accepted)
        out["click"].append(seen - sent)
        out["polls"].append(polls)
        time.sleep(0.05)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--background", type=float, default=0,
                        help="events/s from examples/generator.py meanwhile")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtp-freshness-") as tmp:
        proc, base, token = start_dev(Path(tmp))
        generator = None
        try:
            if args.background:
                generator = subprocess.Popen(
                    [sys.executable, str(ROOT / "examples" / "generator.py"), "--url", base,
                     "--token", token, "--rate", str(args.background)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(15)  # the catalogue and stock go first
            result = measure(base, token, args.events, args.seed)
        finally:
            if generator:
                generator.terminate()
                generator.wait()
            proc.terminate()
            proc.wait(timeout=30)
    load = os.getloadavg()[0]
    print(f"{args.events} events, background {args.background:g} events/s, "
          f"load average {load:.1f}")
    for name in ("ingest", "visible", "click"):
        values = [v * 1000 for v in result[name]]
        print(f"  {name:8} p50 {pct(values, 0.5):7.1f} ms   p99 {pct(values, 0.99):7.1f} ms"
              f"   max {max(values):7.1f} ms   mean {statistics.mean(values):7.1f} ms")
    polls = result["polls"]
    print(f"  polls    visible on the first read in {polls.count(1)}/{len(polls)}, "
          f"max {max(polls)}")


if __name__ == "__main__":
    main()
=======
from bench.common import REPO, Server, env, pct


def catalogue(files: Path) -> dict[str, dict]:
    """One product per category."""
    out: dict[str, dict] = {}
    for line in (files / "products.ndjson").read_text().splitlines():
        p = json.loads(line)
        out.setdefault(p["category"], p)
    return out


def run(project: Path, facts: dict, *, probes: int, rate: float, timeout: float = 10.0,
        log=print) -> dict:
    products = list(catalogue(Path(facts["files"])).values())
    samples: list[float] = []
    polls: list[int] = []
    skipped = timeouts = 0
    with Server(project) as server:
        background = subprocess.Popen(
            [sys.executable, str(REPO / "examples" / "generator.py"), "--url", server.url,
             "--token", "none", "--rate", str(rate), "--no-catalogue", "--duration", "0"],
            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                stamp = int(time.time())
                for i in range(probes):
                    product = products[i % len(products)]
                    user, session = f"bench_u{stamp}_{i}", f"bench_s{stamp}_{i}"
                    params = {"user_id": user, "session_id": session, "limit": 3}

                    def shows(params=params, product=product) -> bool:
                        r = client.get("/v0/pipes/recommendations.json", params=params)
                        r.raise_for_status()
                        data = r.json()["data"]
                        return bool(data) and data[0]["category"] == product["category"] \
                            and data[0]["reason"] == "session"

                    if shows():
                        skipped += 1
                        continue
                    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
                    event = {"timestamp": now[:-3], "event_type": "view", "user_id": user,
                             "session_id": session, "product_id": product["product_id"],
                             "category": product["category"], "brand": product["brand"],
                             "price": product["price"], "referrer": "bench"}
                    r = client.post("/v0/events", params={"name": "events", "wait": "true"},
                                    content=json.dumps(event) + "\n")
                    r.raise_for_status()
                    acked = time.perf_counter()
                    n = 0
                    while True:
                        n += 1
                        if shows():
                            samples.append(time.perf_counter() - acked)
                            polls.append(n)
                            break
                        if time.perf_counter() - acked > timeout:
                            timeouts += 1
                            break
        finally:
            background.terminate()
            background.wait()
    log(f"  {len(samples)} freshness probes done")
    return {"probes": len(samples), "skipped": skipped, "timeouts": timeouts,
            "background_rate_events_per_s": rate,
            "p50_ms": pct(samples, 50) * 1000, "p99_ms": pct(samples, 99) * 1000,
            "max_ms": max(samples, default=0) * 1000,
            "polls_p50": pct([float(p) for p in polls], 50)}
>>>>>>> bench
