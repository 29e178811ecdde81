"""Ingestion: NDJSON through ``POST /v0/events`` vs a raw ``INSERT ... FORMAT JSONEachRow``.

The same bodies (``chunk`` rows each, taken from the generated events file) are inserted
both ways into the same deployed project, so the materialized views do the same work:
raw, by the benchmark process on the chDB connection, one body after another; through
rtp, by ``senders`` concurrent connections of a load generator process to ``rtp serve``
(``wait=true``; a 2xx means the rows are in). Rates count the NDJSON bytes and rows sent.
The sides take turns (``rounds`` times each, every round inserting all the bodies again)
and each keeps its best round: on a shared machine the load moves between rounds.

With ``bad_every=10`` every tenth row of the bodies is bad (alternately a price that is
not a number and a missing ``user_id``): rtp quarantines those with their reason. The
raw insert then takes the same bodies before the bad rows were mixed in (the engine
has no quarantine: with ``input_format_allow_errors_ratio`` it drops unreadable rows
unrecorded, one exception each, ~4x slower here, and stores the rows lacking
``user_id`` with an empty one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from bench.common import Server, env
from bench.dataset import data_path


def bodies(events_file: Path, rows: int, chunk: int) -> list[bytes]:
    out = []
    with open(events_file, "rb") as f:
        lines = list(islice(f, rows))
    for i in range(0, len(lines), chunk):
        out.append(b"".join(lines[i : i + chunk]))
    return out


def with_bad_rows(parts: list[bytes], every: int) -> tuple[list[bytes], int]:
    """``parts`` with every ``every``-th row made bad; and how many rows are bad."""
    out, n, bad = [], 0, 0
    for body in parts:
        lines = body.split(b"\n")
        for i, line in enumerate(lines):
            if not line:
                continue
            n += 1
            if n % every == 0:
                row = json.loads(line)
                if bad % 2:
                    row.pop("user_id", None)
                else:
                    row["price"] = "n/a"
                lines[i] = json.dumps(row, separators=(",", ":")).encode()
                bad += 1
        out.append(b"\n".join(lines))
    return out, bad


def raw_insert(project: Path, parts: list[bytes]) -> float:
    from rtp.engine.embedded import EmbeddedBackend

    backend = EmbeddedBackend(data_path(project))
    try:
        conn = backend._conn
        start = time.perf_counter()
        for body in parts:
            conn.query("INSERT INTO events FORMAT JSONEachRow\n" + body.decode(), "TabSeparated")
        return time.perf_counter() - start
    finally:
        backend.close()


def http_insert(project: Path, parts: list[bytes], senders: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        for i, body in enumerate(parts):
            (Path(tmp) / f"{i:06d}.ndjson").write_bytes(body)
        with Server(project) as server:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.loadgen",
                    "post",
                    f"{server.url}/v0/events?name=events&wait=true",
                    tmp,
                    str(senders),
                ],
                capture_output=True,
                text=True,
                env=env(),
                check=True,
            )
    result = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} ingest requests failed")
    return result


def run(
    project: Path,
    facts: dict,
    *,
    rows: int,
    chunk: int = 5000,
    senders: int = 4,
    bad_every: int = 0,
    rounds: int = 2,
    log=print,
) -> dict:
    clean = bodies(Path(facts["files"]) / "events.ndjson", rows, chunk)
    parts, nbad = with_bad_rows(clean, bad_every) if bad_every else (clean, 0)
    nrows = sum(p.count(b"\n") for p in parts)
    nbytes = sum(len(p) for p in parts)
    raw_times, api_times = [], []
    for _ in range(rounds):  # the sides take turns; each keeps its best round
        raw_times.append(raw_insert(project, clean))
        log("  raw insert done")
        res = http_insert(project, parts, senders)
        log("  HTTP ingest done")
        if (res["rows"], res.get("quarantined", nbad)) != (nrows - nbad, nbad):
            raise RuntimeError(
                f"the server took {res['rows']} of {nrows - nbad} good rows "
                f"and quarantined {res.get('quarantined')} of {nbad} bad ones"
            )
        api_times.append(res["elapsed"])
    raw_s, api_s = min(raw_times), min(api_times)
    raw = {"seconds": raw_s, "rows_per_s": nrows / raw_s, "mb_per_s": nbytes / raw_s / 1e6}
    api = {"seconds": api_s, "rows_per_s": nrows / api_s, "mb_per_s": nbytes / api_s / 1e6}
    return {
        "rows": nrows,
        "bytes": nbytes,
        "bad_rows": nbad,
        "rows_per_request": chunk,
        "senders": senders,
        "rounds": rounds,
        "engine": raw,
        "http": api,
        "ratio": api["rows_per_s"] / raw["rows_per_s"],
    }


def plain_project(root: Path) -> Path:
    """The root project's ``events`` datasource alone (no views), deployed: what rtp's
    ingestion path costs when the engine has nothing else to do."""
    import shutil

    from bench.common import REPO, rtp_cmd

    if root.exists():
        shutil.rmtree(root)
    (root / "datasources").mkdir(parents=True)
    (root / "rtp.yaml").write_text("name: events_only\n")
    shutil.copy(REPO / "datasources" / "events.yaml", root / "datasources" / "events.yaml")
    shutil.copytree(REPO / "connections", root / "connections")  # events' Kafka source
    subprocess.run(
        rtp_cmd("deploy", "-p", str(root)), check=True, env=env(), stdout=subprocess.DEVNULL
    )
    return root
