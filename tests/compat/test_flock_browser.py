"""Tinybird's web-analytics tracker (`@tinybirdco/flock.js`, npm) in headless Chromium,
sending page hits from a real page into `/v0/events` of a real `rtp serve`.

The project is Tinybird's own web-analytics starter kit from the corpus
(tests/compat/projects/web-analytics-starter-kit: the `analytics_events` datasource the
tracker writes to, its materialized views and endpoints), deployed unchanged. The page is
served from another origin (a second port), as a site would be, with the tracker's
script tag pointing `data-host` at rtp: only the base URL changes. The tracker sends a
`page_hit` when the page loads and on each `history.pushState`, and any custom event
through `window.Tinybird.trackEvent`; the test reads the rows back, raw and through the
kit's `analytics_hits` endpoint.

Needs Chromium, chromedriver and selenium (.ci/services/chromium.sh) and the npm package
(.ci/services/node.sh: RTP_NODE_MODULES); without them the test skips and says why.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.browser import chromium, require_browser
from tests.serving import ROOT, free_port, rtp_serve

HERE = Path(__file__).parent
KIT = HERE / "projects" / "web-analytics-starter-kit"
MODULES = Path(os.environ.get("RTP_NODE_MODULES", "/tmp/rtp-node/node_modules"))
FLOCK = MODULES / "@tinybirdco/flock.js/dist/index.js"

require_browser(".ci/services/chromium.sh")
if not FLOCK.is_file():
    pytest.skip(
        f"no {FLOCK}: source .ci/services/node.sh (npm install @tinybirdco/flock.js)",
        allow_module_level=True,
    )

PAGE = """<!doctype html>
<html><head><title>shop</title>
<script defer src="/flock.js" data-host="{host}" data-token="{token}"></script>
</head><body><h1>shop</h1></body></html>
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`rtp serve` on a deployed copy of the starter kit."""
    root = tmp_path_factory.mktemp("flock") / "web-analytics"
    shutil.copytree(KIT, root)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    deploy = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    with rtp_serve(root, env=env, timeout=60) as serving:
        yield serving


@pytest.fixture
def site(tmp_path, served):
    """A page on another origin that loads flock.js with an append-only token."""
    admin = {"Authorization": f"Bearer {served.admin}"}
    created = httpx.post(
        f"{served.base}/v0/tokens",
        params={"name": "tracker_site", "scope": "DATASOURCES:APPEND:analytics_events"},
        headers=admin,
    )
    assert created.status_code == 200, created.text
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy2(FLOCK, folder / "flock.js")
    page = PAGE.format(host=served.base, token=created.json()["token"])
    (folder / "index.html").write_text(page, encoding="utf-8")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output stays readable
        pass


@pytest.fixture
def browser(tmp_path):
    # flock.js sends nothing when navigator.webdriver is true (it skips robots);
    # this flag makes the automated browser look like a person's
    with chromium(tmp_path, "--disable-blink-features=AutomationControlled") as driver:
        yield driver


def rows(served, sql: str) -> list[dict]:
    r = httpx.post(
        f"{served.base}/v0/sql",
        content=sql,
        headers={"Authorization": f"Bearer {served.admin}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def wait_rows(served, sql: str, n: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = rows(served, sql)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_flock_sends_page_hits_from_a_page_into_events(served, site, browser):
    driver = browser
    driver.get(f"{site}/index.html")
    assert driver.execute_script("return navigator.webdriver") is False
    sql = (
        "SELECT action, version, session_id, tenant_id, payload, "
        "dateDiff('second', timestamp, now()) AS age "
        "FROM analytics_events ORDER BY timestamp, action FORMAT JSON"
    )
    assert [r["action"] for r in wait_rows(served, sql, 1)] == ["page_hit"]
    # a single-page app moves on: flock.js hooks history.pushState
    driver.execute_script("history.pushState({}, '', '/pricing?plan=pro')")
    wait_rows(served, sql, 2)
    driver.execute_script("window.Tinybird.trackEvent('add_to_cart', {product: 'p7', qty: 2})")
    events = wait_rows(served, sql, 3)
    assert sorted(e["action"] for e in events) == ["add_to_cart", "page_hit", "page_hit"]
    payloads = {
        (e["action"], json.loads(e["payload"]).get("pathname")): json.loads(e["payload"])
        for e in events
    }
    assert set(payloads) == {
        ("page_hit", "/index.html"),
        ("page_hit", "/pricing"),
        ("add_to_cart", None),
    }
    hit = payloads[("page_hit", "/pricing")]
    assert hit["href"] == f"{site}/pricing?plan=pro"
    assert "Chrome" in hit["user-agent"]
    assert payloads[("add_to_cart", None)] == {"product": "p7", "qty": 2}
    assert {e["version"] for e in events} == {"1"}
    assert all(0 <= int(e["age"]) < 120 for e in events), events  # ISO timestamps, UTC
    sessions = {e["session_id"] for e in events}
    assert len(sessions) == 1 and None not in sessions, sessions  # flock's session cookie
    # the kit's own endpoint reads them back
    hits = httpx.get(
        f"{served.base}/v0/pipes/analytics_hits.json",
        headers={"Authorization": f"Bearer {served.admin}"},
        timeout=30,
    )
    assert hits.status_code == 200, hits.text
    assert sorted(h["pathname"] for h in hits.json()["data"]) == ["/index.html", "/pricing"]
    assert {h["browser"] for h in hits.json()["data"]} == {"chrome"}
