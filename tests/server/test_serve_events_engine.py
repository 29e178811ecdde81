"""Events API bodies checked by the engine (rtp.ingest.bodies): the same rows stored, the
same rows quarantined with the same reasons, exact counts, whichever way a body goes."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.anyio


def ndjson(*events) -> bytes:
    return b"".join((e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n" for e in events)


def ev(ts="2030-02-01 10:00:00", user="u1", **product) -> dict:
    return {"timestamp": ts, "user_id": user, "product": {"id": "p", **product}}


async def post(s, body: bytes, **headers):
    r = await s.client.post(
        "/v0/events",
        params={"name": "events", "wait": "true", "token": s.admin},
        content=body,
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_engine_reads_each_spelling_the_python_checks_read(serve, monkeypatch):
    from rtp.ingest import RowMapper

    s = serve(seed=False)
    assert s.app.state.rtp.batcher.engine_checks(s.app.state.rtp.mappers["events"]) is not None

    def python_check(*args):  # good rows never reach the Python checks
        raise AssertionError("a good row was checked in Python")

    monkeypatch.setattr(RowMapper, "map", python_check)
    body = ndjson(
        ev("2030-02-01T10:00:00.250Z", "a", price=3.5),  # ISO 8601 with Z
        ev("2030-02-01T12:00:00+02:00", "b", price="4.25"),  # an offset; a numeric string
        ev(1893492000, "c"),  # Unix seconds; price absent: NULL (Nullable)
        ev("1893492000.5", "d", price=None),  # Unix seconds as text; an explicit null
        {**ev(user="e"), "qty": 7, "extra": {"ignored": True}},  # qty given; unknown key
        {**ev(user="f"), "qty": "12"},  # an integer as text
        {"timestamp": "2030-02-01 10:00:00", "user_id": 42, "product": {"id": {"x": [1]}}},
        b'  {"timestamp": "2030-02-01 10:00:00", "user_id": "h", "product": {"id": "p"}}  ',
        b"",
    )
    assert await post(s, body) == {"successful_rows": 8, "quarantined_rows": 0}
    assert s.rows(
        "SELECT user_id, toString(timestamp), product_id, price, qty FROM events ORDER BY user_id"
    ) == [
        ["42", "2030-02-01 10:00:00.000", '{"x":[1]}', None, 1],
        ["a", "2030-02-01 10:00:00.250", "p", 3.5, 1],
        ["b", "2030-02-01 10:00:00.000", "p", 4.25, 1],
        ["c", "2030-01-01 10:00:00.000", "p", None, 1],
        ["d", "2030-01-01 10:00:00.500", "p", None, 1],
        ["e", "2030-02-01 10:00:00.000", "p", None, 7],
        ["f", "2030-02-01 10:00:00.000", "p", None, 12],
        ["h", "2030-02-01 10:00:00.000", "p", None, 1],
    ]


async def test_bad_rows_are_quarantined_with_per_column_reasons(serve):
    s = serve(seed=False)
    bad = [
        {**ev(user="q1"), "qty": 300},
        ev("yesterday", "q2"),
        {"timestamp": "2030-02-01 10:00:00", "product": {"id": "p"}},
        {"timestamp": "2030-02-01 10:00:00", "user_id": None, "product": {"id": "p"}},
        ev(user="q5", price="cheap"),
        ev("2400-01-01 00:00:00", "q6"),
        {"timestamp": "2030-02-01 10:00:00", "user_id": "q7", "product": {}},
    ]
    body = ndjson(ev(user="g1"), *bad, ev(user="g2"))
    # twice: the second body skips the clean attempt (the last one had bad rows)
    for _ in range(2):
        assert await post(s, body) == {"successful_rows": 2, "quarantined_rows": 7}
    assert s.rows("SELECT user_id, count() FROM events GROUP BY user_id ORDER BY user_id") == [
        ["g1", 2],
        ["g2", 2],
    ]
    errors = s.rows("SELECT DISTINCT error FROM events_quarantine ORDER BY error")
    assert [e for (e,) in errors] == [
        "column 'price' ($.product.price): expected a number, got \"cheap\"",
        "column 'product_id' ($.product.id): missing, and the column is not Nullable",
        "column 'qty' ($.qty): 300 is out of range for UInt8",
        "column 'timestamp' ($.timestamp): \"2400-01-01 00:00:00\" is outside the DateTime64 "
        "range (1900-01-01 00:00:00 to 2299-12-31 23:59:59 UTC)",
        "column 'timestamp' ($.timestamp): expected a date-time, got \"yesterday\"",
        "column 'user_id' ($.user_id): missing, and the column is not Nullable",
        "column 'user_id' ($.user_id): null, and the column is not Nullable",
    ]
    raws = s.rows("SELECT raw FROM events_quarantine")
    assert sorted(json.loads(r)["user_id"] or "" for (r,) in raws if "user_id" in r) == sorted(
        ["", "", "q1", "q1", "q2", "q2", "q5", "q5", "q6", "q6", "q7", "q7"]
    )
    # a clean body after bad ones is stored whole again
    assert await post(s, ndjson(ev(user="g3"))) == {"successful_rows": 1, "quarantined_rows": 0}


async def test_a_line_holding_two_objects_is_one_bad_row(serve):
    s = serve(seed=False)
    two = json.dumps(ev(user="x1")) + json.dumps(ev(user="x2"))
    body = ndjson(ev(user="a"), two.encode(), ev(user="b"))
    assert await post(s, body) == {"successful_rows": 2, "quarantined_rows": 1}
    assert s.rows("SELECT user_id FROM events ORDER BY user_id") == [["a"], ["b"]]
    ((error, raw),) = s.rows("SELECT error, raw FROM events_quarantine")
    assert error.startswith("not JSON") and raw == two


async def test_group_commit_attributes_each_requests_rows(serve):
    import asyncio

    s = serve(seed=False, batch_wait=0.2)
    bodies = [
        ndjson(*[ev(user=f"r{i}-{j}") for j in range(5)], {**ev(user=f"r{i}"), "qty": -1})
        if i % 2
        else ndjson(*[ev(user=f"r{i}-{j}") for j in range(3)])
        for i in range(6)
    ]
    before = s.app.state.rtp.batcher.flushes
    answers = await asyncio.gather(*(post(s, b) for b in bodies))
    assert answers == [
        {"successful_rows": 5, "quarantined_rows": 1}
        if i % 2
        else {"successful_rows": 3, "quarantined_rows": 0}
        for i in range(6)
    ]
    assert s.app.state.rtp.batcher.flushes - before < 6  # some were inserted together
    assert s.rows("SELECT count() FROM events") == [[24]]
    assert s.rows("SELECT count() FROM events_quarantine") == [[3]]


async def test_a_keyed_retry_with_bad_rows_stores_nothing_twice(serve):
    s = serve(seed=False)
    body = ndjson(ev(user="k1"), {**ev(user="k2"), "qty": 999}, ev(user="k3"))
    for _ in range(3):
        answer = await post(s, body, **{"Idempotency-Key": "batch-1"})
        assert answer == {"successful_rows": 2, "quarantined_rows": 1}
    assert s.rows("SELECT count() FROM events") == [[2]]
    assert s.rows("SELECT count() FROM events_quarantine") == [[1]]


async def test_a_server_target_keeps_the_python_checks_with_the_same_answers(project_factory):
    """ClickHouse 18.16 has no format() table function nor accurateCastOrNull: the rows
    are checked in Python there, and the answer and the quarantine read the same."""
    import os
    import uuid

    import httpx

    from rtp.engine.clickhouse import ClickHouseBackend
    from rtp.project.load import load_project
    from rtp.server import ServerSettings, create_app
    from rtp.sql.ddl import create_table

    url = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
    if not url:
        pytest.skip("RTP_TEST_CLICKHOUSE_URL is unset (source .ci/services/clickhouse.sh)")
    root = project_factory(
        {
            "rtp.yaml": "name: shop\n",
            "datasources/events.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: qty, type: UInt8, default: '1'}
        sorting_key: [user_id]
    """,
        },
        base=None,
    )
    model, problems = load_project(root)
    assert not problems.errors
    backend = ClickHouseBackend(f"{url.rsplit('/', 1)[0]}/rtp_test_ingest_{uuid.uuid4().hex[:8]}")
    try:
        backend.execute(create_table(model.datasources["events"]))
        app = create_app(model, backend, ServerSettings(tokens_file=None))
        assert app.state.rtp.batcher.engine_checks(app.state.rtp.mappers["events"]) is None
        body = ndjson({"user_id": "a"}, {"user_id": "b", "qty": 300}, {"qty": 2})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rtp"
        ) as client:
            r = await client.post("/v0/events?name=events&wait=true", content=body)
        assert r.json() == {"successful_rows": 1, "quarantined_rows": 2}
        assert backend.query("SELECT user_id, qty FROM events")[1] == [["a", 1]]
        assert [
            e for (e,) in backend.query("SELECT error FROM events_quarantine ORDER BY error")[1]
        ] == [
            "column 'qty' ($.qty): 300 is out of range for UInt8",
            "column 'user_id' ($.user_id): missing, and the column is not Nullable",
        ]
    finally:
        backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
        backend.close()


async def test_array_indexes_and_deep_paths(serve):
    tagged = """
        columns:
          - {name: id, type: String}
          - {name: second_tag, type: String, json: '$.tags[1]'}
          - {name: city, type: 'Nullable(String)', json: '$.geo.place.city'}
          - {name: score, type: Float32, json: '$.geo.score', default: '0'}
        sorting_key: [id]
    """
    s = serve({"datasources/tagged.yaml": tagged}, seed=False)
    assert s.app.state.rtp.batcher.engine_checks(s.app.state.rtp.mappers["tagged"]) is not None
    body = ndjson(
        {"id": "a", "tags": ["x", "y"], "geo": {"place": {"city": "Oslo"}, "score": 1.5}},
        {"id": "b", "tags": ["x", 7], "geo": {"place": None}},
        {"id": "c", "tags": ["x"]},
        {"id": "d", "tags": ["x", "y"], "geo": {"score": "high"}},
    )
    r = await s.client.post(
        "/v0/events", params={"name": "tagged", "wait": "true", "token": s.admin}, content=body
    )
    assert r.json() == {"successful_rows": 2, "quarantined_rows": 2}
    assert s.rows("SELECT id, second_tag, city, score FROM tagged ORDER BY id") == [
        ["a", "y", "Oslo", 1.5],
        ["b", "7", None, 0],
    ]
    assert [e for (e,) in s.rows("SELECT error FROM tagged_quarantine ORDER BY error")] == [
        "column 'score' ($.geo.score): expected a number, got \"high\"",
        "column 'second_tag' ($.tags[1]): missing, and the column is not Nullable",
    ]
