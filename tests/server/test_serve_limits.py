"""Limits through HTTP: callers can't loosen them, deadlines count queue time, limits
answer with stable codes, /healthz asks the engine, /readyz says when to stay away."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rtp.server.tokens import TokenStore

pytestmark = pytest.mark.anyio
LONG = "SELECT count() FROM numbers(100000000000)"


async def sql(s, q, token):
    return await s.client.get("/v0/sql", params={"q": q, "token": token})


async def test_a_reader_cannot_change_the_limits(serve):
    s = serve()
    reader = TokenStore(s.root / ".rtp/tokens.json").create("r", ["DATASOURCES:READ:events"])
    r = await sql(s, "SELECT count() AS n FROM events", reader)
    assert r.status_code == 200 and r.json()["data"] == [{"n": 4}]
    # refused by the guard, naming the setting (the engine's readonly = 1 would refuse it
    # too: tests/test_engine_limits.py runs the same statement past the guard)
    r = await sql(s, "SELECT count() FROM events SETTINGS max_execution_time = 999", reader)
    assert r.status_code == 400 and r.json()["code"] == "RTP400"
    assert "max_execution_time" in r.json()["error"]


async def test_admin_sql_has_a_deadline_408(serve):
    s = serve(query_timeout=0.5)
    started = time.monotonic()
    r = await sql(s, LONG, s.admin)
    assert r.status_code == 408 and r.json()["code"] == "RTP507"
    assert "longer than 0.5 s" in r.json()["error"]
    assert time.monotonic() - started < 5


async def test_rows_and_result_limits_answer_rtp508(serve):
    s = serve(max_result_rows=2)
    admin = s.admin  # the same project folder (and tokens) serves twice
    reader = TokenStore(s.root / ".rtp/tokens.json").create("r", ["PIPES:READ:recs"])
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": reader})
    assert r.status_code == 200 and r.json()["rows"] == 2
    s = serve(max_result_rows=1)
    reader = TokenStore(s.root / ".rtp/tokens.json").create("r1", ["PIPES:READ:recs"])
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": reader})
    assert r.status_code == 400 and r.json()["code"] == "RTP410", r.text
    # ADMIN: only the deadline and memory
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": admin})
    assert r.status_code == 200 and r.json()["rows"] == 2


async def test_time_waiting_for_a_worker_counts_against_the_deadline(serve):
    s = serve(query_timeout=1.0, threads=1)
    ran: list[str] = []
    original = s.engine.query_bytes

    def spy(sql, fmt, limits=None, settings=None):
        ran.append(sql)
        return original(sql, fmt, limits, settings)

    s.engine.query_bytes = spy
    try:
        # the only worker is busy for 1.3 s (another request's long work)
        busy = s.state.executor.submit(time.sleep, 1.3)
        started = time.monotonic()
        r = await sql(s, "SELECT 1 AS one", s.admin)
        waited = time.monotonic() - started
        busy.result()
        r2 = await sql(s, "SELECT 1 AS one", s.admin)
    finally:
        del s.engine.query_bytes
    assert r.status_code == 408 and r.json()["code"] == "RTP507", r.text
    assert "waited" in r.json()["error"]
    assert 1.0 <= waited < 5
    assert len(ran) == 1 and r2.status_code == 200  # the first never reached the engine


async def test_healthz_asks_the_engine(serve):
    s = serve()
    calls: list[str] = []
    original = s.engine.query

    def spy(sql, limits=None, settings=None):
        calls.append(sql)
        return original(sql, limits)

    s.engine.query = spy
    try:
        r = await s.client.get("/healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert calls[0] == "SELECT 1"  # (then version(), cached once)

        def broken(sql, limits=None, settings=None):
            raise RuntimeError("engine gone")

        s.engine.query = broken
        r = await s.client.get("/healthz")
        assert r.status_code == 503 and "engine gone" in r.json()["error"]
        r = await s.client.get("/readyz")
        assert r.status_code == 503 and "engine gone" in r.json()["reason"]
    finally:
        del s.engine.query


async def test_readyz_during_a_long_exclusive_hold(serve):
    s = serve(ready_exclusive_max=0.2)
    r = await s.client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    held, release = threading.Event(), threading.Event()

    def deploy():
        with s.engine.exclusive():
            held.set()
            release.wait(10)

    t = threading.Thread(target=deploy)
    t.start()
    try:
        held.wait(5)
        await asyncio.sleep(0.3)
        r = await s.client.get("/readyz")
        assert r.status_code == 503
        assert "deploy has held the engine" in r.json()["reason"]
    finally:
        release.set()
        t.join(10)
    r = await s.client.get("/readyz")
    assert r.status_code == 200
