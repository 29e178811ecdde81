"""Every row of an Events API request is accounted for: stored, or quarantined with the
reason; a body the server can't read whole is refused whole (nothing stored)."""

from __future__ import annotations

import gzip
import json

import pytest

pytestmark = pytest.mark.anyio


def _event(i: int, **extra) -> dict:
    return {
        "timestamp": "2030-02-01 10:00:00",
        "user_id": f"u{i}",
        "product": {"id": f"p{i}", "price": 1.5},
        **extra,
    }


def _ndjson(events) -> bytes:
    return b"".join((e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n" for e in events)


async def _post(s, body: bytes, **headers):
    return await s.client.post(
        "/v0/events",
        params={"name": "events", "wait": "true", "token": s.admin},
        content=body,
        headers=headers,
    )


@pytest.mark.parametrize(
    "bad",
    [
        b'{"timestamp": 1e20, "user_id": "x", "product": {"id": "p"}}',
        b'{"timestamp": -1e300, "user_id": "x", "product": {"id": "p"}}',
        b'{"timestamp": 123456789012345678901234567890, "user_id": "x", "product": {"id": "p"}}',
        b'{"timestamp": "2030-02-01 10:00:00", "user_id": "x", "product": {"id": "p"}, '
        b'"qty": 1e300}',
        b'{"timestamp": "2030-02-01 10:00:00", "user_id": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"timestamp": "2030-02-01 10:00:00", "user_id": "x", "product": {"id": "p", '
        b'"price": "1e999999"}}',
    ],
)
async def test_an_unreadable_value_quarantines_its_row_only(serve, bad):
    s = serve(seed=False)
    events = [_event(i) for i in range(50)] + [bad] + [_event(i) for i in range(50, 100)]
    r = await _post(s, _ndjson(events))
    assert r.status_code == 200, r.text
    assert r.json() == {"successful_rows": 100, "quarantined_rows": 1}
    assert s.rows("SELECT count(), uniqExact(user_id) FROM events") == [[100, 100]]
    [[error, raw]] = s.rows("SELECT error, raw FROM events_quarantine")
    assert raw == bad.decode()
    assert error


async def test_concatenated_gzip_members_are_all_read(serve):
    s = serve(seed=False)
    body = gzip.compress(_ndjson([_event(1), _event(2)])) + gzip.compress(_ndjson([_event(3)]))
    r = await _post(s, body, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.json() == {"successful_rows": 3, "quarantined_rows": 0}
    assert s.rows("SELECT user_id FROM events ORDER BY user_id") == [["u1"], ["u2"], ["u3"]]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda z: z[:-4],  # the length of the trailer cut
        lambda z: z[: len(z) // 2],  # half the stream
        lambda z: z + b"garbage",
        lambda z: z + gzip.compress(b'{"user_id": "late"}\n')[:-3],  # a broken second member
    ],
)
async def test_truncated_or_trailing_garbage_gzip_is_refused_whole(serve, mangle):
    s = serve(seed=False)
    body = mangle(gzip.compress(_ndjson([_event(i) for i in range(200)])))
    r = await _post(s, body, **{"Content-Encoding": "gzip"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "RTP407"
    assert s.rows("SELECT count() FROM events") == [[0]]


async def test_gzip_members_count_together_against_the_limit(serve):
    s = serve(seed=False, max_body_bytes=100_000)
    member = gzip.compress(b"\n" * 60_000)
    r = await _post(s, member, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200
    r = await _post(s, member + member, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413 and r.json()["code"] == "RTP405"


async def test_a_retried_keyed_request_stores_nothing_twice(serve):
    s = serve(seed=False)
    body = _ndjson([_event(i) for i in range(10)] + [b"{bad"])
    key = {"Idempotency-Key": "0f8fad5b-d9cb-469f-a165-70867728950e"}
    for _ in range(3):
        r = await _post(s, body, **key)
        assert r.status_code == 200, r.text
        assert r.json() == {"successful_rows": 10, "quarantined_rows": 1}
    assert s.rows("SELECT count() FROM events") == [[10]]
    assert s.rows("SELECT count() FROM events_quarantine") == [[1]]
    # the same key with another body is not taken for a retry: stored
    r = await _post(s, _ndjson([_event(99)]), **key)
    assert r.json() == {"successful_rows": 1, "quarantined_rows": 0}
    # identical bodies without a key are two requests: both stored
    for _ in range(2):
        await _post(s, _ndjson([_event(7)]))
    assert s.rows("SELECT count() FROM events") == [[13]]


async def test_a_malformed_key_is_400(serve):
    s = serve(seed=False)
    r = await _post(s, _ndjson([_event(1)]), **{"Idempotency-Key": "x" * 201})
    assert r.status_code == 400 and r.json()["code"] == "RTP408"
    assert s.rows("SELECT count() FROM events") == [[0]]
