"""Tinybird's own client libraries against a real `rtp serve` process, changing only the
base URL: ``tinybird-python-sdk`` (PyPI, package ``tb``: ``Datasource`` buffers NDJSON
events to /v0/events, ``API`` is its generic REST client) and, when a Python with
Tinybird's CLI package (``tinybird``, client class ``TinyB``) is named in
``RTP_TINYBIRD_PYTHON``, that client too (it pins exact versions of pydantic, click,
urllib3, PyJWT ... that would replace those of rtp's environment, so it runs in its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.server.conftest import EVENTS, RECS
from tests.serving import ROOT, rtp_serve

tb_api = pytest.importorskip("tb.api", reason="pip install tinybird-python-sdk (dev extra)")
tb_datasource = pytest.importorskip("tb.datasource")

CSV = (
    "timestamp,user_id,product_id,price,qty\n"
    "2030-01-02 00:00:00,u9,p9,1.5,2\n"
    "2030-01-02 00:00:01,u9,p8,,1\n"
)

# a Python with `pip install tinybird` (.ci/run makes /tmp/tbvenv)
TINYBIRD_PYTHON = os.environ.get("RTP_TINYBIRD_PYTHON", "/tmp/tbvenv/bin/python")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, admin token) of `rtp serve` on a deployed two-file project."""
    root = tmp_path_factory.mktemp("clients")
    for rel, text in {
        "rtp.yaml": "name: clients\n",
        "datasources/events.yaml": EVENTS,
        "pipes/recs.yaml": RECS,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    with rtp_serve(root, env=env) as served:
        admin, base = served.admin, served.base
        yield base, admin


def test_python_sdk_sends_events_and_reads_everything(server):
    base, admin = server
    # Datasource: its buffer flushes NDJSON to /v0/events?mode=append&name=...&wait=false
    with tb_datasource.Datasource("events", admin, api_url=base) as ds:
        for i in range(3):
            ds << {
                "timestamp": f"2030-01-01 00:00:0{i}",
                "user_id": "u1",
                "product": {"id": f"p{i % 2}", "price": 2.0},
            }
    api = tb_api.API(admin, api_url=base)
    rows = api.get("/sql", params={"q": "SELECT count() AS n FROM events WHERE user_id = 'u1'"})
    assert rows.json()["data"] == [{"n": 3}]
    answer = api.get("/pipes/recs.json", params={"user_id": "u1"}).json()
    assert answer["data"] == [
        {"product_id": "p0", "spent": 4, "n": 2},
        {"product_id": "p1", "spent": 2, "n": 1},
    ]
    over = api.get("/pipes/recs.json", params={"user_id": "u1", "q": "SELECT sum(n) AS n FROM _"})
    assert over.json()["data"] == [{"n": 3}]
    pipes = api.get("/pipes").json()["pipes"]
    assert [(p["name"], p["type"]) for p in pipes] == [("recs", "endpoint")]
    assert api.get("/pipes/recs").json()["endpoint"] == "ranked"
    datasources = api.get("/datasources").json()["datasources"]
    assert [d["name"] for d in datasources] == ["events"]
    # a CSV body appended through the Data Sources API
    appended = api.post(
        "/datasources",
        params={"name": "events", "mode": "append", "format": "csv"},
        data=CSV.encode(),
    )
    assert appended.json()["successful_rows"] == 2
    rows = api.post("/sql", data="SELECT count() AS n FROM events WHERE user_id = 'u9'")
    assert rows.json()["data"] == [{"n": 2}]
    token = api.post("/tokens", params={"name": "reader", "scope": "PIPES:READ:recs"}).json()
    reader = tb_api.API(token["token"], api_url=base)
    assert reader.get("/pipes/recs.json", params={"user_id": "u9"}).json()["rows"] == 2
    assert [t["name"] for t in api.get("/tokens").json()["tokens"]] == ["admin", "reader"]
    deleted = api.post("/datasources/events/delete", data={"delete_condition": "user_id = 'u9'"})
    assert deleted.json()["rows_affected"] == 2
    assert reader.get("/pipes/recs.json", params={"user_id": "u9"}).json()["rows"] == 0
    assert api.post("/datasources/events/truncate").json() == {}
    assert api.get("/datasources/events").json()["statistics"]["row_count"] == 0


TINYB_SCRIPT = """
import json, sys, tempfile
from tinybird.tb.client import TinyB
base, token, csv = sys.argv[1:4]
tb = TinyB(token, host=base)
out = {}
out["pipes"] = [p["name"] for p in tb.pipes()]
out["pipe_nodes"] = [n["name"] for n in tb.pipe("recs")["nodes"]]
out["datasources"] = [d["name"] for d in tb.datasources()]
out["datasource_columns"] = [c["name"] for c in tb.get_datasource("events")["columns"]]
out["query"] = tb.query("SELECT 1 AS one FORMAT JSON")["data"]
out["pipe_data"] = tb.pipe_data("recs", sql="SELECT count() AS c FROM _",
                                params={"user_id": "u9"})["data"]
with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
    f.write(csv)
out["append"] = tb.datasource_append_data("events", f.name)["successful_rows"]
out["delete"] = tb.datasource_delete_rows("events", "user_id = 'u9'")["rows_affected"]
out["tokens"] = sorted(t["name"] for t in tb.tokens())
out["create_token"] = tb.create_token("cli", ["DATASOURCES:READ:events"], None)["name"]
out["truncate"] = tb.datasource_truncate("events")
print(json.dumps(out))
"""


@pytest.mark.skipif(
    not Path(TINYBIRD_PYTHON).is_file(),
    reason="set RTP_TINYBIRD_PYTHON to a Python with `pip install tinybird` "
    "(its pinned dependencies clash with rtp's, so it isn't a dev extra)",
)
def test_tinybird_cli_client(server):
    base, admin = server
    result = subprocess.run(
        [TINYBIRD_PYTHON, "-c", TINYB_SCRIPT, base, admin, CSV],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["pipes"] == ["recs"] and out["pipe_nodes"] == ["mine", "ranked"]
    assert out["datasources"] == ["events"]
    assert out["datasource_columns"][:2] == ["timestamp", "user_id"]
    assert out["query"] == [{"one": 1}]
    assert out["append"] == 2
    assert out["delete"] >= 2
    assert "admin" in out["tokens"] and out["create_token"] == "cli"
    assert out["truncate"] == {}
