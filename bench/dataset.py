"""The benchmark dataset: the root project deployed to a folder of its own, with
``examples/generator.py`` files bulk-loaded by the engine itself.

Loading goes through ``INSERT INTO <table> SELECT ... FROM file(..., JSONEachRow)`` in
chDB (not through rtp), so the materialized views fire exactly as they do for events
that arrive over HTTP. A loaded folder is reused when asked (``--workdir``), since 5M
events take a couple of minutes to load.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO, copy_root_project, env, rtp_cmd

DATA_CACHE = REPO / "bench" / "data"


def generate(events: int, seed: int = 7) -> Path:
    """NDJSON files of ``events`` events (cached under bench/data/)."""
    out = DATA_CACHE / f"events-{events}-seed{seed}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "generator.py"),
            "--out",
            str(out),
            "--events",
            str(events),
            "--days",
            "7",
            "--seed",
            str(seed),
        ],
        check=True,
        env=env(),
        stdout=subprocess.DEVNULL,
    )
    (out / "done").write_text("")
    return out


def structure(backend, table: str) -> str:
    _, rows = backend.query(f"DESCRIBE TABLE `{table}`")
    return ", ".join(f"`{r[0]}` {r[1]}" for r in rows)


def bulk_load(backend, table: str, path: Path) -> None:
    """Insert a JSONEachRow file with the engine (views fire per block)."""
    cols = structure(backend, table)
    backend.execute(
        f"INSERT INTO `{table}` SELECT * FROM file('{path}', 'JSONEachRow', "
        f"'{cols.replace(chr(39), chr(92) + chr(39))}')"
    )


def data_path(project: Path) -> str:
    return str(project / ".rtp" / "data")


def prepare(workdir: Path, events: int, log=print) -> dict:
    """A deployed, loaded copy of the root project in ``workdir``; returns facts about it."""
    marker = workdir / "loaded.json"
    if marker.exists():
        facts = json.loads(marker.read_text())
        if facts.get("events_generated") == events:
            log(f"reusing the loaded data in {workdir} (project files refreshed, deployed)")
            _deploy_root_project(workdir)
            return {**facts, **_run_copies(workdir, log)}
    if workdir.exists() and any(workdir.iterdir()) and not marker.exists():
        raise SystemExit(
            f"{workdir} is not empty and holds no benchmark project; "
            "give --workdir a new or a benchmark's folder"
        )
    files = generate(events)
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)  # a benchmark's own folder, with another dataset
    _deploy_root_project(workdir)
    from rtp.engine.embedded import EmbeddedBackend

    backend = EmbeddedBackend(data_path(workdir))
    try:
        t0 = time.perf_counter()
        for table in ("products", "inventory", "events"):
            bulk_load(backend, table, files / f"{table}.ndjson")
        load_s = time.perf_counter() - t0
        _, rows = backend.query("SELECT count(), toString(max(timestamp)) FROM events")
        count, last = int(rows[0][0]), rows[0][1]
        size = (files / "events.ndjson").stat().st_size
    finally:
        backend.close()
    facts = {
        "events_generated": events,
        "events_rows": count,
        "events_ndjson_bytes": size,
        "last_event": last,
        "bulk_load_s": load_s,
        "bulk_load_rows_per_s": count / load_s,
        "files": str(files),
    }
    marker.write_text(json.dumps(facts))
    return {**facts, **_run_copies(workdir, log)}


def _deploy_root_project(workdir: Path) -> None:
    """The repository's root project files in ``workdir``, deployed there."""
    copy_root_project(workdir)
    subprocess.run(
        rtp_cmd("deploy", "-p", str(workdir)), check=True, env=env(), stdout=subprocess.DEVNULL
    )


def _run_copies(workdir: Path, log) -> dict:
    """Run the project's scheduled copy pipes once (``rtp serve`` would run them at its
    start, as their targets are empty, and on their schedule after); their time goes in
    the results."""
    from rtp.deploy.copy import run_scheduled
    from rtp.engine.embedded import EmbeddedBackend
    from rtp.errors import Problems
    from rtp.project.load import load_project
    from rtp.sql.compose import compile_project

    project, _ = load_project(workdir)
    backend = EmbeddedBackend(data_path(workdir))
    try:
        t0 = time.perf_counter()
        rows = run_scheduled(compile_project(project, Problems()), backend)
        seconds = time.perf_counter() - t0
    finally:
        backend.close()
    if rows:
        log(f"copy pipes run once: {rows} in {seconds:.1f} s")
    return {"copies_s": seconds, "copies_rows": rows}
