"""`/v0/sql`: read-only queries, token scopes, formats, GET ?q= and POST bodies."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from rtp.errors import RequestError
from rtp.server.tokens import TokenStore
from rtp.sql.guard import guard_query

pytestmark = pytest.mark.anyio


async def test_get_and_post_run_a_query(serve):
    s = serve()
    q = "SELECT user_id, count() AS n FROM events GROUP BY user_id ORDER BY user_id"
    r = await s.client.get("/v0/sql", params={"q": q, "token": s.admin})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["meta"] == [{"name": "user_id", "type": "String"}, {"name": "n", "type": "UInt64"}]
    assert body["data"] == [{"user_id": "u1", "n": 3}, {"user_id": "u2", "n": 1}]
    assert body["rows"] == 2
    auth = {"Authorization": f"Bearer {s.admin}"}
    # the query as the body (text), as JSON, as a form; trailing semicolon allowed
    r = await s.client.post("/v0/sql", content=q + ";", headers=auth)
    assert r.json()["data"] == body["data"]
    r = await s.client.post("/v0/sql", json={"q": q, "format": "csv"}, headers=auth)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text == '"user_id","n"\n"u1",3\n"u2",1\n'
    r = await s.client.post("/v0/sql", data={"q": q, "format": "ndjson"}, headers=auth)
    assert r.text.splitlines() == ['{"user_id":"u1","n":3}', '{"user_id":"u2","n":1}']
    r = await s.client.get("/v0/sql", params={"q": q, "format": "parquet"}, headers=auth)
    assert pq.read_table(io.BytesIO(r.content)).to_pylist() == body["data"]


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO events (user_id) VALUES ('x')",
        "DROP TABLE events",
        "SELECT 1; DROP TABLE events",
        "ALTER TABLE events DELETE WHERE 1",
        "SELECT * FROM events INTO OUTFILE '/tmp/x.csv'",
        "  -- sneaky\n TRUNCATE TABLE events",
        "",
    ],
)
async def test_only_read_only_statements(serve, query):
    s = serve()
    r = await s.client.get("/v0/sql", params={"q": query, "token": s.admin})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "RTP400"
    assert s.rows("SELECT count() FROM events") == [[4]]


def test_read_only_statements_pass():
    for query in (
        "SELECT 1",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "SHOW TABLES",
        "DESCRIBE TABLE events",
        "EXPLAIN SELECT 1",
        "EXISTS TABLE events",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "/* why */ SELECT 2;",
    ):
        assert guard_query(query, admin=True).sql  # what an ADMIN may run on /v0/sql
    assert guard_query(
        "WITH m AS (SELECT * FROM events) SELECT * FROM m JOIN products USING id", admin=False
    ).tables == ("events", "products")
    for beyond in ("SELECT * FROM numbers(10)", "SELECT * FROM system.tables"):
        with pytest.raises(RequestError):
            guard_query(beyond, admin=False)


async def test_scopes(serve):
    s = serve({"datasources/other.yaml": "columns:\n  - {name: a, type: String}\n"})
    store = TokenStore(s.root / ".rtp" / "tokens.json")
    reader = store.create("reader", ["DATASOURCES:READ:events"])
    wide = store.create("wide", ["DATASOURCES:READ:*"])
    pipes = store.create("pipes", ["PIPES:READ:recs"])

    async def status(token, q):
        r = await s.client.get("/v0/sql", params={"q": q, "token": token})
        return r.status_code

    assert await status(reader, "SELECT count() FROM events") == 200
    assert await status(reader, "SELECT count() FROM other") == 403
    assert await status(reader, "SELECT * FROM events JOIN other ON 1") == 403
    assert await status(wide, "SELECT * FROM events JOIN other ON 1") == 200
    # beyond the project's datasources: ADMIN only
    for q in ("SELECT * FROM numbers(3)", "SELECT name FROM system.tables", "SHOW TABLES"):
        assert await status(wide, q) == 403
        assert await status(s.admin, q) == 200
    assert await status(pipes, "SELECT count() FROM events") == 403
    assert await status(None, "SELECT 1") == 403


async def test_errors(serve):
    s = serve()
    r = await s.client.get("/v0/sql", params={"q": "SELECT nope FROM events", "token": s.admin})
    assert r.status_code == 400
    assert r.json()["code"] == "RTP304" and "nope" in r.json()["error"]
    r = await s.client.get("/v0/sql", params={"q": "SELECT 1", "format": "xml", "token": s.admin})
    assert r.status_code == 400 and "unknown format 'xml'" in r.json()["error"]


async def test_control_token_is_admin(serve):
    s = serve(control_token="rtp_control_secret")
    r = await s.client.get("/v0/sql", params={"q": "SHOW TABLES", "token": "rtp_control_secret"})
    assert r.status_code == 200
    r = await s.client.get("/v0/sql", params={"q": "SHOW TABLES", "token": "rtp_control_x"})
    assert r.status_code == 403
