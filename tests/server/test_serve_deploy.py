"""`POST /v0/deploy`: the server re-reads its project, plans, applies and serves it."""

from __future__ import annotations

import pytest

from rtp.cli.remote import Server, _error
from rtp.server.tokens import TokenStore

pytestmark = pytest.mark.anyio

TOTAL = "nodes:\n  - name: t\n    sql: SELECT count() AS n FROM events\n"


async def test_plan_then_apply_and_serve_the_new_project(serve):
    s = serve()
    auth = {"Authorization": f"Bearer {s.admin}"}
    (s.root / "pipes" / "total.yaml").write_text(TOTAL)
    (s.root / "datasources" / "extra.yaml").write_text("columns:\n  - {name: a, type: String}\n")
    r = await s.client.post("/v0/deploy", json={"plan_only": True}, headers=auth)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "+ create table extra: new datasource" in answer["plan"]
    assert "+ create table extra: new datasource" in answer["changes"]
    assert answer["applied"] == [] and not answer["up_to_date"]
    assert s.rows("EXISTS TABLE extra") == [[0]]  # a plan changes nothing
    r = await s.client.post("/v0/deploy", json={"plan_only": True, "sql": True}, headers=auth)
    assert "      CREATE TABLE `extra`" in r.json()["plan"]
    assert (await s.client.get("/v0/pipes/total.json", headers=auth)).status_code == 404

    r = await s.client.post("/v0/deploy", json={}, headers=auth)
    assert r.status_code == 200, r.text
    assert "+ create table extra: new datasource" in r.json()["applied"]
    assert s.rows("EXISTS TABLE extra") == [[1]]
    r = await s.client.get("/v0/pipes/total.json", headers=auth)
    assert r.json()["data"] == [{"n": 4}]  # the new endpoint is served at once
    r = await s.client.post("/v0/deploy", json={}, headers=auth)
    assert r.json()["up_to_date"] is True and r.json()["applied"] == []


async def test_destructive_needs_the_flag(serve):
    extra = "columns:\n  - {name: a, type: String}\n  - {name: b, type: String}\n"
    s = serve({"datasources/extra.yaml": extra})
    auth = {"Authorization": f"Bearer {s.admin}"}
    assert (await s.client.post("/v0/deploy", json={}, headers=auth)).status_code == 200
    (s.root / "datasources" / "extra.yaml").write_text(
        extra.replace("  - {name: b, type: String}\n", "")
    )
    r = await s.client.post("/v0/deploy", json={}, headers=auth)
    assert r.status_code == 409
    assert r.json()["code"] == "RTP504"
    assert s.rows(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'extra'"
    ) == [[2]]
    r = await s.client.post("/v0/deploy", json={"allow_destructive": True}, headers=auth)
    assert r.status_code == 200, r.text
    assert [line for line in r.json()["applied"] if "extra" in line]
    assert s.rows(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'extra'"
    ) == [["a"]]


async def test_project_errors_scopes_and_bad_bodies(serve):
    s = serve()
    auth = {"Authorization": f"Bearer {s.admin}"}
    (s.root / "pipes" / "broken.yaml").write_text("nodes:\n  - name: b\n    sql: '{{ x('\n")
    r = await s.client.post("/v0/deploy", json={}, headers=auth)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "RTP109"  # the project has errors; each one in "problems"
    assert body["problems"][0]["code"] == "RTP300"
    assert body["problems"][0]["file"] == "pipes/broken.yaml"
    # what `rtp deploy` makes of it: errors it prints with file, line and column
    error = _error(r, Server({"url": "http://x", "token": "t", "pid": 1}))
    assert error.code == "RTP109" and "the project has 1 error(s)" in error.message
    assert [(str(p.location), p.code) for p in error.problems] == [
        (
            f"pipes/broken.yaml:{body['problems'][0]['line']}:{body['problems'][0]['column'] or 1}",
            "RTP300",
        )
    ]
    reader = TokenStore(s.root / ".rtp" / "tokens.json").create("r", ["PIPES:READ:*"])
    r = await s.client.post(
        "/v0/deploy", json={"plan_only": True}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert r.status_code == 403
    r = await s.client.post("/v0/deploy", json={"plan_only": "yes"}, headers=auth)
    assert r.status_code == 400 and "'plan_only' must be true or false" in r.json()["error"]
    r = await s.client.post("/v0/deploy", content=b"[1]", headers=auth)
    assert r.status_code == 400 and r.json()["code"] == "RTP407"
