"""OpenAPI, Swagger UI, /healthz, /metrics, CORS and rate limits."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


async def test_openapi_types_params_and_columns(serve):
    s = serve()
    r = await s.client.get("/v0/pipes/openapi.json", params={"token": s.admin})
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    op = spec["paths"]["/v0/pipes/recs.json"]["get"]
    assert op["summary"] == "Products a shopper bought, most spent first"
    params = {p["name"]: p for p in op["parameters"]}
    assert params["user_id"]["required"] is True
    assert params["user_id"]["schema"] == {"type": "string"}
    assert params["user_id"]["description"] == "Shopper"
    assert params["limit"]["required"] is False
    assert params["limit"]["schema"] == {
        "type": "integer",
        "default": 10,
        "minimum": 1,
        "maximum": 100,
    }
    row = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"][
        "items"
    ]["properties"]
    assert row == {
        "product_id": {"type": "string"},
        "spent": {"type": "number", "nullable": True},
        "n": {"type": "integer"},
    }
    assert set(op["responses"]) == {"200", "400", "403", "404", "408"}
    csv_op = spec["paths"]["/v0/pipes/recs.csv"]["get"]
    assert list(csv_op["responses"]["200"]["content"]) == ["text/csv"]


async def test_swagger_ui_points_at_the_spec(serve):
    s = serve()
    r = await s.client.get("/docs", params={"token": s.admin})
    assert r.status_code == 200
    assert "swagger-ui" in r.text
    assert f"/v0/pipes/openapi.json?token={s.admin}" in r.text
    r = await s.client.get("/docs", params={"token": "x'</script><script>alert(1)"})
    assert "alert(1)" not in r.text


async def test_healthz_reports_the_engine(serve):
    s = serve()
    r = await s.client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["engine"] == "embedded"
    assert body["version"].split(".")[0].isdigit()
    assert body["endpoints"] == 1


async def test_metrics_count_requests_by_route_and_status(serve):
    s = serve()
    for params in ({"user_id": "u1"}, {"user_id": "u1"}, {}):
        await s.client.get("/v0/pipes/recs.json", params={**params, "token": s.admin})
    await s.client.get("/v0/pipes/zzz.json", params={"token": s.admin})
    text = (await s.client.get("/metrics")).text
    lines = set(text.splitlines())
    assert 'rtp_requests_total{method="GET",route="/v0/pipes/recs",status="200"} 2.0' in lines
    assert 'rtp_requests_total{method="GET",route="/v0/pipes/recs",status="400"} 1.0' in lines
    assert 'rtp_requests_total{method="GET",route="/v0/pipes/<unknown>",status="404"} 1.0' in lines
    assert 'rtp_request_seconds_count{route="/v0/pipes/recs"} 3.0' in lines
    assert 'rtp_request_seconds_bucket{le="+Inf",route="/v0/pipes/recs"} 3.0' in lines
    assert "# TYPE rtp_request_seconds histogram" in lines


async def test_cors_is_configurable(serve):
    s = serve(cors_origins=("https://shop.example",))
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization",
    }
    r = await s.client.options("/v0/pipes/recs.json", headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    r = await s.client.options(
        "/v0/pipes/recs.json", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in r.headers
    r = await s.client.get(
        "/v0/pipes/recs.json",
        params={"user_id": "u1", "token": s.admin},
        headers={"Origin": "https://shop.example"},
    )
    assert r.headers["access-control-allow-origin"] == "https://shop.example"


async def test_rate_limit_is_429(serve):
    s = serve(rate_limit=1.0)  # bursts of 2, then 1 a second
    codes = [
        (
            await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": s.admin})
        ).status_code
        for _ in range(4)
    ]
    assert codes[:2] == [200, 200]
    assert codes[2:] == [429, 429]
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": s.admin})
    assert r.json()["code"] == "RTP406"


async def test_auth_can_be_off_for_local_development(serve):
    s = serve(auth=False)
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u2"})
    assert r.status_code == 200
    assert r.json()["rows"] == 1
