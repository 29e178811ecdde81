"""Tinybird's REST API beyond endpoints and events: /v0/pipes (list, info), q= on an
endpoint, /v0/datasources (list, info, append, replace, truncate, delete), /v0/tokens."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rtp.server.tokens import decode_jwt

pytestmark = pytest.mark.anyio

TOTALS = """
    type: internal
    nodes:
      - name: totals
        sql: SELECT user_id, count() AS n FROM events GROUP BY user_id
"""


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# -- /v0/pipes -------------------------------------------------------------------------


async def test_list_pipes_in_tinybirds_shape(serve):
    s = serve({"pipes/totals.yaml": TOTALS})
    r = await s.client.get("/v0/pipes", headers=bearer(s.admin))
    assert r.status_code == 200, r.text
    pipes = {p["name"]: p for p in r.json()["pipes"]}
    assert set(pipes) == {"recs", "totals"}
    recs = pipes["recs"]
    assert recs["type"] == "endpoint" and recs["endpoint"] == "ranked"
    assert recs["url"] == "http://rtp/v0/pipes/recs.json"
    assert [n["name"] for n in recs["nodes"]] == ["mine", "ranked"]
    assert recs["nodes"][0]["dependencies"] == ["events"]
    assert recs["nodes"][1]["dependencies"] == ["mine"]
    assert recs["nodes"][1]["node_type"] == "endpoint"
    assert "GROUP BY product_id" in recs["nodes"][1]["sql"]
    params = {p["name"]: p for p in recs["params"]}
    assert params["user_id"]["required"] is True and params["user_id"]["type"] == "String"
    assert params["limit"]["default"] == 10 and params["limit"]["type"] == "Int32"
    assert pipes["totals"]["type"] == "default" and pipes["totals"]["endpoint"] is None


async def test_list_pipes_shows_only_what_the_token_reads(serve):
    s = serve({"pipes/totals.yaml": TOTALS})
    token = s.state.tokens.create("reader", ["PIPES:READ:recs"])
    r = await s.client.get("/v0/pipes", headers=bearer(token))
    assert [p["name"] for p in r.json()["pipes"]] == ["recs"]
    appender = s.state.tokens.create("appender", ["DATASOURCES:APPEND:events"])
    assert (await s.client.get("/v0/pipes", headers=bearer(appender))).json() == {"pipes": []}
    assert (await s.client.get("/v0/pipes")).status_code == 403


async def test_pipe_info(serve):
    s = serve({"pipes/totals.yaml": TOTALS})
    r = await s.client.get("/v0/pipes/recs", headers=bearer(s.admin))
    assert r.status_code == 200 and r.json()["name"] == "recs"
    assert [p["name"] for p in r.json()["nodes"][0]["params"]] == ["user_id"]
    token = s.state.tokens.create("reader", ["PIPES:READ:recs"])
    assert (await s.client.get("/v0/pipes/totals", headers=bearer(token))).status_code == 403
    missing = await s.client.get("/v0/pipes/nope", headers=bearer(s.admin))
    assert missing.status_code == 404 and missing.json()["code"] == "RTP404"
    # the routes taking /v0/pipes/<something> still answer as before
    assert (
        (await s.client.get("/v0/pipes/openapi.json", headers=bearer(s.admin)))
        .json()["openapi"]
        .startswith("3.")
    )
    assert (
        await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1"}, headers=bearer(s.admin))
    ).json()["rows"] == 2


# -- q= on an endpoint ---------------------------------------------------------------


async def test_q_runs_sql_over_the_endpoints_result(serve):
    s = serve()
    token = s.state.tokens.create("reader", ["PIPES:READ:recs"])
    r = await s.client.get(
        "/v0/pipes/recs.json",
        headers=bearer(token),
        params={"user_id": "u1", "q": "SELECT count() AS c, sum(n) AS total FROM _"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"c": 2, "total": 3}]
    # the pipe's parameters still apply: limit=1 leaves one row under q
    r = await s.client.get(
        "/v0/pipes/recs.csv",
        headers=bearer(token),
        params={"user_id": "u1", "limit": "1", "q": "SELECT product_id FROM _"},
    )
    assert r.text.splitlines() == ['"product_id"', '"p2"']


@pytest.mark.parametrize(
    "q,status",
    [
        ("SELECT * FROM events", 403),
        ("SELECT * FROM _ WHERE product_id IN (SELECT product_id FROM events)", 403),
        ("SELECT file('/etc/passwd') FROM _", 403),
        ("SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')", 403),
        ("SELECT * FROM numbers(10)", 403),
        ("SELECT * FROM system.tables", 403),
        ("SELECT * FROM _ SETTINGS max_execution_time = 1000", 400),
        ("SELECT * FROM _ FORMAT CSV", 400),
        ("DROP TABLE events", 400),
        ("SELECT 1 FROM _; SELECT 2", 400),
        ("INSERT INTO events SELECT * FROM events", 400),
    ],
)
async def test_q_is_confined_to_the_result(serve, q, status):
    s = serve()
    token = s.state.tokens.create("reader", ["PIPES:READ:recs"])
    r = await s.client.get(
        "/v0/pipes/recs.json", headers=bearer(token), params={"user_id": "u1", "q": q}
    )
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "code", "documentation"}
    assert s.rows("SELECT count() FROM events") == [[4]]


async def test_q_with_an_admin_token_may_read_other_tables(serve):
    s = serve()
    r = await s.client.get(
        "/v0/pipes/recs.json",
        headers=bearer(s.admin),
        params={
            "user_id": "u1",
            "q": "SELECT count() AS c FROM _ WHERE product_id IN "
            "(SELECT product_id FROM events WHERE user_id = 'u1')",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"c": 2}]


# -- /v0/datasources -----------------------------------------------------------------


async def test_list_and_info_datasources(serve):
    s = serve()
    r = await s.client.get("/v0/datasources", headers=bearer(s.admin))
    assert r.status_code == 200, r.text
    [ds] = r.json()["datasources"]
    assert ds["name"] == "events"
    assert [c["name"] for c in ds["columns"]] == [
        "timestamp",
        "user_id",
        "product_id",
        "price",
        "qty",
    ]
    assert ds["columns"][2]["jsonpath"] == "$.product.id"
    assert ds["columns"][3]["nullable"] is True
    assert ds["engine"]["engine"] == "MergeTree"
    assert ds["engine"]["engine_sorting_key"] == "user_id, timestamp"
    assert ds["statistics"]["row_count"] == 4
    info = await s.client.get("/v0/datasources/events", headers=bearer(s.admin))
    assert info.json()["columns"] == ds["columns"]
    reader = s.state.tokens.create("reader", ["PIPES:READ:recs"])
    assert (await s.client.get("/v0/datasources", headers=bearer(reader))).json() == {
        "datasources": []
    }
    assert (await s.client.get("/v0/datasources/events", headers=bearer(reader))).status_code == 403
    assert (await s.client.get("/v0/datasources/nope", headers=bearer(s.admin))).status_code == 404


CSV = (
    b"timestamp,user_id,product_id,price,qty\n"
    b"2030-01-02 00:00:00,u9,p9,1.5,2\n"
    b"2030-01-02 00:00:01,u9,p8,,1\n"
    b"not a time,u9,p7,3,1\n"
)


async def test_append_csv_body_quarantines_bad_rows(serve):
    s = serve()
    token = s.state.tokens.create("app", ["DATASOURCES:APPEND:events"])
    r = await s.client.post(
        "/v0/datasources",
        params={"name": "events", "mode": "append", "format": "csv"},
        content=CSV,
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["successful_rows"], body["quarantined_rows"]) == (2, 1)
    assert "error" not in body and body["datasource"]["name"] == "events"
    assert s.rows(
        "SELECT product_id, price, qty FROM events WHERE user_id = 'u9' ORDER BY product_id"
    ) == [["p8", None, 1], ["p9", 1.5, 2]]
    assert s.rows("SELECT count() FROM events_quarantine") == [[1]]


async def test_append_multipart_ndjson_and_parquet(serve):
    s = serve()
    ndjson = b'{"timestamp": "2030-01-03 00:00:00", "user_id": "u7", "product": {"id": "a"}}\n'
    r = await s.client.post(
        "/v0/datasources",
        params={"name": "events", "mode": "append"},
        files={"ndjson": ("rows.ndjson", ndjson)},
        headers=bearer(s.admin),
    )
    assert r.status_code == 200, r.text
    assert r.json()["successful_rows"] == 1
    table = pa.table(
        {
            "timestamp": ["2030-01-03 00:00:01"],
            "user_id": ["u7"],
            "product_id": ["b"],
            "price": [2.0],
            "qty": [3],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    r = await s.client.post(
        "/v0/datasources",
        params={"name": "events", "mode": "append"},
        files={"csv": ("rows.parquet", sink.getvalue())},
        headers=bearer(s.admin),
    )
    assert r.status_code == 200, r.text
    assert s.rows(
        "SELECT product_id, qty FROM events WHERE user_id = 'u7' ORDER BY product_id"
    ) == [["a", 1], ["b", 3]]


async def test_append_from_a_url(serve):
    s = serve()
    served = {"/rows.csv": CSV, "/rows.csv.gz": gzip.compress(CSV)}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            data = served.get(self.path)
            self.send_response(200 if data else 404)
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        r = await s.client.post(
            "/v0/datasources",
            params={"name": "events", "mode": "append"},
            content=f"url={base}/rows.csv.gz".encode(),
            headers={**bearer(s.admin), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["successful_rows"], r.json()["quarantined_rows"]) == (2, 1)
        for url, status in (("file:///etc/passwd", 400), (f"{base}/missing.csv", 400)):
            r = await s.client.post(
                "/v0/datasources",
                headers=bearer(s.admin),
                params={"name": "events", "mode": "append", "url": url},
            )
            assert r.status_code == status, r.text
        small = serve(max_body_bytes=64)
        r = await small.client.post(
            "/v0/datasources",
            headers=bearer(s.admin),
            params={"name": "events", "mode": "append", "url": f"{base}/rows.csv"},
        )
        assert r.status_code == 413 and r.json()["code"] == "RTP405"
    finally:
        httpd.shutdown()


async def test_replace_swaps_rows_and_needs_admin(serve):
    s = serve()
    token = s.state.tokens.create("app", ["DATASOURCES:APPEND:events"])
    params = {"name": "events", "mode": "replace", "format": "csv"}
    r = await s.client.post("/v0/datasources", params=params, content=CSV, headers=bearer(token))
    assert r.status_code == 403
    assert s.rows("SELECT count() FROM events") == [[4]]
    r = await s.client.post("/v0/datasources", params=params, content=CSV, headers=bearer(s.admin))
    assert r.status_code == 200, r.text
    assert (r.json()["successful_rows"], r.json()["quarantined_rows"]) == (2, 1)
    assert s.rows("SELECT DISTINCT user_id FROM events") == [["u9"]]
    assert s.rows("SELECT count() FROM events_quarantine") == [[1]]
    assert not [t for t in s.rows("SHOW TABLES") if "__rtp_replace" in t[0]]
    r = await s.client.post(
        "/v0/datasources", params={**params, "mode": "create"}, content=CSV, headers=bearer(s.admin)
    )
    assert r.status_code == 400


async def test_truncate_and_delete(serve):
    s = serve()
    token = s.state.tokens.create("app", ["DATASOURCES:APPEND:events"])
    r = await s.client.post(
        "/v0/datasources/events/delete",
        headers=bearer(token),
        data={"delete_condition": "user_id = 'u2'"},
    )
    assert r.status_code == 403
    r = await s.client.post(
        "/v0/datasources/events/delete",
        headers=bearer(s.admin),
        data={"delete_condition": "user_id = 'u2'", "dry_run": "true"},
    )
    assert r.status_code == 200 and r.json()["rows_affected"] == 1
    assert s.rows("SELECT count() FROM events") == [[4]]
    r = await s.client.post(
        "/v0/datasources/events/delete",
        headers=bearer(s.admin),
        data={"delete_condition": "user_id = 'u2'"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows_affected"] == 1 and r.json()["status"] == "done"
    assert s.rows("SELECT DISTINCT user_id FROM events") == [["u1"]]
    for bad in (
        "user_id IN (SELECT user_id FROM events)",
        "1) OR (1",
        "",
        "DROP TABLE events",
        "user_id = file('/etc/passwd')",
    ):
        r = await s.client.post(
            "/v0/datasources/events/delete", headers=bearer(s.admin), data={"delete_condition": bad}
        )
        assert r.status_code == 400, (bad, r.text)
    assert s.rows("SELECT count() FROM events") == [[3]]
    assert (
        await s.client.post("/v0/datasources/events/truncate", headers=bearer(token))
    ).status_code == 403
    r = await s.client.post("/v0/datasources/events/truncate", headers=bearer(s.admin))
    assert r.status_code == 200
    assert s.rows("SELECT count() FROM events") == [[0]]


# -- /v0/tokens ----------------------------------------------------------------------


async def test_tokens_list_create_delete(serve):
    s = serve()
    r = await s.client.post(
        "/v0/tokens?name=reader&scope=PIPES:READ:recs&scope=DATASOURCES:READ:events",
        headers=bearer(s.admin),
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["name"] == "reader" and created["token"].startswith("rtp_")
    assert {"type": "PIPES:READ", "resource": "recs"} in created["scopes"]
    ok = await s.client.get(
        "/v0/pipes/recs.json", params={"user_id": "u1"}, headers=bearer(created["token"])
    )
    assert ok.status_code == 200
    listed = (await s.client.get("/v0/tokens", headers=bearer(s.admin))).json()["tokens"]
    assert {t["name"] for t in listed} == {"admin", "reader"}
    assert all(t["token"] is None for t in listed)  # rtp keeps hashes only
    assert (await s.client.get("/v0/tokens", headers=bearer(created["token"]))).status_code == 403
    r = await s.client.delete("/v0/tokens/reader", headers=bearer(s.admin))
    assert r.status_code == 204
    s.state.tokens._checked = 0  # re-read the file now, not within the second
    assert (
        await s.client.get(
            "/v0/pipes/recs.json", params={"user_id": "u1"}, headers=bearer(created["token"])
        )
    ).status_code == 403
    assert (await s.client.delete("/v0/tokens/reader", headers=bearer(s.admin))).status_code == 404
    bad = await s.client.post("/v0/tokens?name=x&scope=NOPE", headers=bearer(s.admin))
    assert bad.status_code == 400


async def test_create_jwt_as_the_typescript_sdk_does(serve):
    s = serve()
    body = {
        "name": "shopper",
        "scopes": [{"type": "PIPES:READ", "resource": "recs", "fixed_params": {"user_id": "u2"}}],
    }
    r = await s.client.post(
        "/v0/tokens/?expiration_time=4102444800", json=body, headers=bearer(s.admin)
    )
    assert r.status_code == 200, r.text
    jwt = r.json()["token"]
    assert decode_jwt(jwt, s.state.tokens.jwt_secret)["exp"] == 4102444800
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1"}, headers=bearer(jwt))
    assert [row["product_id"] for row in r.json()["data"]] == ["p3"]  # fixed to u2
    admin_jwt = {"name": "x", "scopes": [{"type": "ADMIN"}]}
    r = await s.client.post(
        "/v0/tokens?expiration_time=4102444800", json=admin_jwt, headers=bearer(s.admin)
    )
    assert r.status_code == 400
    assert json.loads(r.text)["code"] == "RTP400"
