"""`rtp dev` watches the whole project: a Tinybird Forward layout (no rtp.yaml, files
under endpoints/) redeploys when a file there changes; the engine's own writes under
.rtp/ and files outside the project's kinds don't."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from rtp.server.dev import relevant
from tests.server.test_serve_dev_e2e import wait_for
from tests.serving import ROOT, free_port

EVENTS = """\
SCHEMA >
    `user_id` String `json:$.user_id`,
    `n` UInt32 `json:$.n`

ENGINE "MergeTree"
ENGINE_SORTING_KEY "user_id"
"""


def endpoint(sql: str) -> str:
    return f"NODE q\nSQL >\n    {sql}\n\nTYPE endpoint\n"


def test_dev_redeploys_on_an_edit_under_endpoints(project_factory):
    root = project_factory(
        {
            "tinyb": "{}\n",
            "datasources/events.datasource": EVENTS,
            "endpoints/total.pipe": endpoint("SELECT 1 AS v"),
        },
        base=None,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtp.cli.main",
            "dev",
            "--no-auth",
            "--port",
            str(port),
            "-p",
            str(root),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        body = wait_for(lambda: httpx.get(f"{base}/v0/pipes/total.json").json())
        assert body["data"] == [{"v": 1}]
        # the engine writes under .rtp/ all the time; that is no reason to redeploy
        r = httpx.post(
            f"{base}/v0/events?name=events&wait=true", content='{"user_id": "u1", "n": 5}\n'
        )
        assert r.json()["successful_rows"] == 1
        (root / "notes.txt").write_text("not a project file\n")
        time.sleep(1.5)
        (root / "endpoints/total.pipe").write_text(
            endpoint("SELECT toInt32(sum(n)) AS v FROM events")
        )
        changed = wait_for(
            lambda: httpx.get(f"{base}/v0/pipes/total.json").json()["data"] == [{"v": 5}],
            timeout=30,
        )
        assert changed
        # a new file in a folder created after the start (Forward's copies/) is seen too
        (root / "copies").mkdir()
        (root / "copies/also.pipe").write_text(endpoint("SELECT 2 AS w"))
        wait_for(lambda: httpx.get(f"{base}/v0/pipes/also.json").status_code == 200, timeout=30)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert output.count("redeployed") == 2, output
    assert "Traceback" not in output


def test_relevant_files(tmp_path):
    yes = [
        "rtp.yaml",
        "tinyb",
        "pipes/a.yaml",
        "endpoints/a.pipe",
        "x/y/z.datasource",
        "connections/k.connection",
        "includes/i.incl",
        "datasources/a.yml",
    ]
    no = [
        ".rtp/data/store/x.bin",
        ".rtp/owner.json",
        "endpoints/a.pipe~",
        "notes.txt",
        ".git/a.yaml",
        "__pycache__/a.pipe",
        "node_modules/p/a.yaml",
        "tests/t.yaml",
        "fixtures/events.ndjson",
        "storefront/index.html",
        "a/.hidden/b.pipe",
    ]
    assert [p for p in yes if not relevant(tmp_path, tmp_path / p)] == []
    assert [p for p in no if relevant(tmp_path, tmp_path / p)] == []
