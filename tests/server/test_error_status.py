"""HTTP statuses come from the one mapping in rtp/errors.py (tests/test_error_mapping.py
pins it): each route's answer carries the code's status, through the app a caller uses."""

from __future__ import annotations

import os
import uuid

import pytest

from rtp.project.load import load_project
from rtp.server import ServerSettings, create_app
from rtp.sql.ddl import create_table

pytestmark = pytest.mark.anyio

SHOUT = """
    nodes:
      - name: a
        sql: |
          SELECT {{ Int32(n, 1) }} AS n
          {% if n == 7 %}{{ error('seven is not allowed', 418) }}{% endif %}
"""


async def test_routes_answer_their_codes_status(serve):
    s = serve({"pipes/shout.yaml": SHOUT}, max_body_bytes=1000)
    auth = {"Authorization": f"Bearer {s.admin}"}
    cases = [
        ("GET", "/v0/pipes/nope.json", {}, 404, "RTP404"),
        ("GET", "/v0/pipes/recs.json?user_id=u1", {"Authorization": "Bearer bad"}, 403, "RTP403"),
        ("GET", "/v0/pipes/recs.json?user_id=u1&limit=x", auth, 400, "RTP400"),
        # the engine refused the caller's SQL: a pipe-family code, still the caller's 400
        ("GET", "/v0/sql?q=SELECT+nope+FROM+events", auth, 400, "RTP304"),
        # the template chooses its status (the one per-instance status)
        ("GET", "/v0/pipes/shout.json?n=7", auth, 418, "RTP402"),
    ]
    for method, path, headers, status, code in cases:
        r = await s.client.request(method, path, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), (path, r.text)
    r = await s.client.post("/v0/events?name=events", content=b"x" * 2000, headers=auth)
    assert (r.status_code, r.json()["code"]) == (413, "RTP405")
    r = await s.client.post("/v0/pipes/recs.json", files={"user_id": ("a", b"u1")}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (415, "RTP412")
    r = await s.client.get("/v0/pipes/shout.json?n=2", headers=auth)
    assert r.status_code == 200 and r.json()["data"] == [{"n": 2}]


URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


@pytest.mark.skipif(
    not URL,
    reason="RTP_TEST_CLICKHOUSE_URL is not set (a ClickHouse "
    "server older than 22.2 to refuse idempotent inserts)",
)
async def test_idempotency_key_on_an_old_server_is_engine_501(project_factory):
    import httpx

    from rtp.engine import version_tuple
    from rtp.engine.clickhouse import ClickHouseBackend

    root = project_factory(
        {
            "rtp.yaml": "name: shop\n",
            "datasources/events.yaml": """
        columns:
          - {name: user_id, type: String}
        sorting_key: [user_id]
    """,
        },
        base=None,
    )
    model, problems = load_project(root)
    assert not problems.errors
    backend = ClickHouseBackend(f"{URL.rsplit('/', 1)[0]}/rtp_test_errors_{uuid.uuid4().hex[:8]}")
    try:
        if version_tuple(backend.version()) >= (22, 2):
            pytest.skip(f"ClickHouse {backend.version()} has insert deduplication")
        for ds in model.datasources.values():
            backend.execute(create_table(ds))
        app = create_app(model, backend, ServerSettings(tokens_file=None))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rtp"
        ) as client:
            r = await client.post(
                "/v0/events?name=events&wait=true",
                content=b'{"user_id": "u1"}\n',
                headers={"Idempotency-Key": "k1"},
            )
        assert r.status_code == 501, r.text
        assert r.json()["code"] == "RTP511"  # an engine condition (was RTP409, a 4xx code)
        assert backend.query("SELECT count() FROM events")[1] == [[0]]
    finally:
        backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
        backend.close()
