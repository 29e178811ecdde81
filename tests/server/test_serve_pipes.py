"""Endpoints: formats, typed parameters, the error shape and status codes."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.anyio


async def test_json_has_clickhouse_shape_and_values(serve):
    s = serve()
    r = await s.client.get(
        "/v0/pipes/recs.json",
        params={"user_id": "u1"},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"meta", "data", "rows", "rows_before_limit_at_least", "statistics"}
    assert body["meta"] == [
        {"name": "product_id", "type": "String"},
        {"name": "spent", "type": "Nullable(Float64)"},
        {"name": "n", "type": "UInt64"},
    ]
    assert body["data"] == [
        {"product_id": "p2", "spent": 51, "n": 1},
        {"product_id": "p1", "spent": 20, "n": 2},
    ]
    assert body["rows"] == 2
    assert body["rows_before_limit_at_least"] == 2
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    assert body["statistics"]["rows_read"] >= 4


async def test_csv_ndjson_parquet(serve):
    s = serve()
    auth = {"token": s.admin, "user_id": "u1", "limit": "1"}
    r = await s.client.get("/v0/pipes/recs.csv", params=auth)
    assert r.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["product_id", "spent", "n"],
        ["p2", "51", "1"],
    ]
    r = await s.client.get("/v0/pipes/recs.ndjson", params=auth)
    assert r.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(x) for x in r.text.splitlines()] == [
        {"product_id": "p2", "spent": 51, "n": 1}
    ]
    r = await s.client.get("/v0/pipes/recs.parquet", params=auth)
    assert r.status_code == 200
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("product_id").to_pylist() == ["p2"]
    assert table.column("n").to_pylist() == [1]


async def test_post_json_body_params(serve):
    s = serve()
    r = await s.client.post(
        "/v0/pipes/recs.json",
        json={"user_id": "u2"},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"product_id": "p3", "spent": 99, "n": 1}]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"user_id": "u1", "limit": "abc"}, "parameter 'limit' must be Int32, got 'abc'"),
        ({"user_id": "u1", "limit": "0"}, "parameter 'limit' must be at least 1"),
        ({"user_id": "u1", "limit": "1.5"}, "parameter 'limit' must be Int32"),
        ({"limit": "5"}, "parameter 'user_id' is required (String)"),
    ],
)
async def test_bad_params_are_400_naming_the_param(serve, params, message):
    s = serve()
    r = await s.client.get("/v0/pipes/recs.json", params={**params, "token": s.admin})
    assert r.status_code == 400
    assert r.json()["error"].startswith(message)


async def test_error_shape_is_pinned(serve):
    s = serve()
    r = await s.client.get("/v0/pipes/nope.json", params={"token": s.admin})
    assert r.status_code == 404
    assert r.json() == {
        "error": "there is no endpoint 'nope' (endpoints are pipes/<name>.yaml with "
        "type: endpoint)",
        "code": "RTP404",
        "documentation": "docs/errors.md#RTP404",
    }


async def test_unknown_format_and_route_are_404(serve):
    s = serve()
    r = await s.client.get("/v0/pipes/recs.xml", params={"token": s.admin, "user_id": "u"})
    assert r.status_code == 404
    assert r.json()["code"] == "RTP404"
    r = await s.client.get("/nowhere")
    assert r.status_code == 404
    assert set(r.json()) == {"error", "code", "documentation"}


async def test_timeout_is_408(serve):
    slow = """
        nodes:
          - name: slow
            sql: SELECT count() AS c FROM numbers(100000000000) WHERE {{ Int32(x, 1) }} = 1
    """
    s = serve({"pipes/slow.yaml": slow}, query_timeout=0.2)
    r = await s.client.get("/v0/pipes/slow.json", params={"token": s.admin})
    assert r.status_code == 408
    assert r.json()["code"] == "RTP507"
    assert "longer than 0.2 s" in r.json()["error"]


async def test_engine_refusal_is_400(serve):
    pick = """
        nodes:
          - name: pick
            sql: SELECT {{ column(col, 'product_id') }} AS v FROM events LIMIT 1
    """
    s = serve({"pipes/pick.yaml": pick})
    ok = await s.client.get("/v0/pipes/pick.json", params={"token": s.admin})
    assert ok.status_code == 200
    r = await s.client.get("/v0/pipes/pick.json", params={"token": s.admin, "col": "nope"})
    assert r.status_code == 400
    assert r.json()["code"] == "RTP304"
    assert "nope" in r.json()["error"]


async def test_template_error_call_uses_its_status(serve):
    guard = """
        nodes:
          - name: guard
            sql: |
              {% if not defined(shop) %}{{ error('shop is needed', 400) }}{% end if %}
              SELECT {{ String(shop, '') }} AS shop
    """.replace("{% end if %}", "{% endif %}")
    s = serve({"pipes/guard.yaml": guard})
    r = await s.client.get("/v0/pipes/guard.json", params={"token": s.admin})
    assert r.status_code == 400
    assert r.json()["error"] == "shop is needed"
    r = await s.client.get("/v0/pipes/guard.json", params={"token": s.admin, "shop": "a"})
    assert r.json()["data"] == [{"shop": "a"}]


async def test_non_endpoint_pipes_are_not_served(serve):
    internal = """
        type: internal
        nodes:
          - name: everything
            sql: SELECT * FROM events
    """
    s = serve({"pipes/hidden.yaml": internal})
    r = await s.client.get("/v0/pipes/hidden.json", params={"token": s.admin})
    assert r.status_code == 404


class QueryOnly:
    """The engine's rows formatted the way the ClickHouse server backend formats them
    (rtp.engine.formats: the native protocol gives rows, not format text)."""

    name = "clickhouse"

    def __init__(self, inner):
        self.inner = inner

    def query_bytes(self, sql, fmt, limits=None, settings=None):
        from rtp.engine.formats import format_rows

        return format_rows(*self.inner.query(sql, limits, settings), fmt)

    def version(self):  # the engine's: how pipes are composed follows it
        return self.inner.version()


@pytest.mark.parametrize("fmt", ["json", "csv", "ndjson", "parquet"])
async def test_rows_formatted_like_the_server_backend_match_the_engines_own(serve, fmt):
    from rtp.query import run_pipe

    s = serve()
    params = {"user_id": "u1"}
    raw, media = run_pipe(s.state.compiled, s.engine, "recs", params, fmt)
    built, media_built = run_pipe(s.state.compiled, QueryOnly(s.engine), "recs", params, fmt)
    assert media == media_built
    if fmt == "json":
        a, b = json.loads(raw), json.loads(built)
        assert (a["meta"], a["data"], a["rows"]) == (b["meta"], b["data"], b["rows"])
        assert set(b) == set(a) and set(b["statistics"]) == set(a["statistics"])
    elif fmt == "parquet":
        a, b = pq.read_table(io.BytesIO(raw)), pq.read_table(io.BytesIO(built))
        assert a.to_pylist() == b.to_pylist()
    elif fmt == "csv":
        assert list(csv.reader(io.StringIO(raw.decode()))) == list(
            csv.reader(io.StringIO(built.decode()))
        )
    else:
        assert [json.loads(x) for x in raw.splitlines()] == [
            json.loads(x) for x in built.splitlines()
        ]
