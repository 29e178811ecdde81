"""Freshness: from an event's POST being acknowledged to its effect in ``recommendations``.

While a background generator (``examples/generator.py`` live) sends shopper events to
``rtp serve``, each probe is a new shopper in a new session who views one product of a
category; after the POST (``wait=true``) is acknowledged, the probe polls the endpoint
back to back until the top recommendation is of that category with reason ``session``.
Freshness is the time from the acknowledgement to that answer (so it includes at least one
endpoint call); a probe whose category already led before its event is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import REPO, Server, env, pct


def catalogue(files: Path) -> dict[str, dict]:
    """One product per category."""
    out: dict[str, dict] = {}
    for line in (files / "products.ndjson").read_text().splitlines():
        p = json.loads(line)
        out.setdefault(p["category"], p)
    return out


def events_stored(client: httpx.Client) -> int:
    """Rows in ``events`` now (the Query API of the server under test)."""
    r = client.get("/v0/sql", params={"q": "SELECT count() AS n FROM events FORMAT JSON"})
    r.raise_for_status()
    return int(r.json()["data"][0]["n"])


def run(
    project: Path, facts: dict, *, probes: int, rate: float, timeout: float = 10.0, log=print
) -> dict:
    products = list(catalogue(Path(facts["files"])).values())
    samples: list[float] = []
    polls: list[int] = []
    skipped = timeouts = 0
    with Server(project) as server:
        background = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "examples" / "generator.py"),
                "--url",
                server.url,
                "--token",
                "none",
                "--rate",
                str(rate),
                "--no-catalogue",
                "--duration",
                "0",
            ],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                first = events_stored(client)
                since = time.perf_counter()
                stamp = int(time.time())
                for i in range(probes):
                    product = products[i % len(products)]
                    user, session = f"bench_u{stamp}_{i}", f"bench_s{stamp}_{i}"
                    params = {"user_id": user, "session_id": session, "limit": 3}

                    def shows(params=params, product=product) -> bool:
                        return recommends(client, params, product)

                    if shows():
                        skipped += 1
                        continue
                    event = probe_view(user, session, product)
                    r = client.post(
                        "/v0/events",
                        params={"name": "events", "wait": "true"},
                        content=json.dumps(event) + "\n",
                    )
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
                achieved = (events_stored(client) - first - len(samples)) / (
                    time.perf_counter() - since
                )
        finally:
            background.terminate()
            background.wait()
    log(f"  {len(samples)} freshness probes done")
    return {
        "probes": len(samples),
        "skipped": skipped,
        "timeouts": timeouts,
        "background_rate_events_per_s": rate,
        "background_achieved_events_per_s": achieved,
        "p50_ms": pct(samples, 50) * 1000,
        "p99_ms": pct(samples, 99) * 1000,
        "max_ms": max(samples, default=0) * 1000,
        "polls_p50": pct([float(p) for p in polls], 50),
    }


def recommends(client, params: dict, product: dict) -> bool:
    """Whether ``recommendations`` puts ``product``'s category first, for the session."""
    r = client.get("/v0/pipes/recommendations.json", params=params)
    r.raise_for_status()
    data = r.json()["data"]
    return (
        bool(data)
        and data[0]["category"] == product["category"]
        and (data[0]["reason"] == "session")
    )


def probe_view(user: str, session: str, product: dict) -> dict:
    """A view of ``product`` by a new shopper, stamped now: a freshness probe's event."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return {
        "timestamp": now[:-3],
        "event_type": "view",
        "user_id": user,
        "session_id": session,
        "product_id": product["product_id"],
        "category": product["category"],
        "brand": product["brand"],
        "price": product["price"],
        "referrer": "bench",
    }
