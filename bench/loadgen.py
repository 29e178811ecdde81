"""The load generator, run as its own process so its CPU is not the server's:

    python -m bench.loadgen get URL_LIST.json CONCURRENCY SECONDS
    python -m bench.loadgen post URL BODIES_DIR CONCURRENCY

``get``: closed loop, CONCURRENCY keep-alive connections each sending the next URL of the
list as soon as the previous answer arrived, for SECONDS (after SECONDS / 2 of warm-up,
not counted). ``post``: CONCURRENCY senders share the files of BODIES_DIR (NDJSON bodies)
and POST each to URL. Both print JSON: per-request latencies (s), elapsed (s), errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx


async def get(urls: list[str], concurrency: int, seconds: float) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        # warm-up: every connection open, the server's caches warm (not counted)
        warm_until = time.perf_counter() + seconds / 2
        while True:
            await asyncio.gather(*(client.get(urls[i % len(urls)]) for i in range(concurrency)))
            if time.perf_counter() > warm_until:
                break
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(i: int) -> None:
            nonlocal errors
            n = i
            while time.perf_counter() < deadline:
                url = urls[n % len(urls)]
                n += concurrency
                t = time.perf_counter()
                r = await client.get(url)
                if r.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "elapsed": elapsed, "errors": errors}


async def post(url: str, bodies: list[bytes], concurrency: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors, rows, quarantined = 0, 0, 0
    queue = list(reversed(bodies))
    headers = {"content-type": "application/x-ndjson"}
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal errors, rows, quarantined
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                r = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                if r.status_code not in (200, 202):
                    errors += 1
                else:
                    answer = r.json()
                    rows += answer["successful_rows"]
                    quarantined += answer["quarantined_rows"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "errors": errors,
        "rows": rows,
        "quarantined": quarantined,
    }


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "get":
        urls = json.loads(Path(argv[1]).read_text())
        out = asyncio.run(get(urls, int(argv[2]), float(argv[3])))
    else:
        bodies = [p.read_bytes() for p in sorted(Path(argv[2]).glob("*.ndjson"))]
        out = asyncio.run(post(argv[1], bodies, int(argv[3])))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
