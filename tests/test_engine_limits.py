"""The engine's own guards on callers' queries (rtp.engine.limits): read-only, final
limits, a deadline that stops the work, confined files, concurrent reads, and chDB's
leak of a failed query's output into the next answer. Through the backends' execution
call, as if rtp's SQL guard had been fooled."""

from __future__ import annotations

import os
import threading
import time

import pytest

from rtp.engine import QueryError
from rtp.engine.embedded import EmbeddedBackend
from rtp.engine.limits import Limits
from rtp.engine.rwlock import RWLock


@pytest.fixture(scope="module")
def engine():
    backend = EmbeddedBackend(":memory:", database="limits_test")
    backend.execute("CREATE TABLE t (s String) ENGINE = MergeTree ORDER BY s")
    backend.execute("INSERT INTO t SELECT toString(number) FROM numbers(10)")
    yield backend
    backend.close()


def caller(limits: Limits | None = None) -> Limits:
    return Limits(callers_sql=True) if limits is None else limits


def refused(engine, sql: str, limits: Limits | None = None) -> QueryError:
    with pytest.raises(QueryError) as info:
        engine.query_bytes(sql, "TabSeparated", caller(limits))
    return info.value


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t SELECT 'x'",
        "INSERT INTO t FORMAT TabSeparated",  # would take rtp's SETTINGS clause as its data
        "INSERT INTO t VALUES ('x')",
        "CREATE TABLE u (x Int8) ENGINE = Memory",
        "DROP TABLE t",
        "ALTER TABLE t DELETE WHERE 1",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    ],
)
def test_writes_fail_readonly_even_past_the_parser(engine, sql):
    error = refused(engine, sql)
    assert error.ch_name in ("READONLY", "ACCESS_DENIED"), error
    assert engine.query("SELECT count() FROM t")[1] == [[10]]
    assert engine.query("EXISTS TABLE u")[1] == [[0]]


def test_writes_fail_readonly_for_endpoint_sql_too(engine):
    # endpoints skip the parse; readonly = 1 in the final clause still refuses
    error = refused(engine, "INSERT INTO t SELECT 'x'", Limits())
    assert error.ch_name == "READONLY"
    assert engine.query("SELECT count() FROM t")[1] == [[10]]


@pytest.mark.parametrize(
    "clause",
    [
        "SETTINGS max_execution_time = 999",
        "SETTINGS max_memory_usage = 0",
        "SETTINGS readonly = 0",
    ],
)
def test_a_callers_settings_cannot_loosen_the_limits(engine, clause):
    error = refused(engine, f"SELECT count() FROM t {clause}")
    assert error.ch_name == "READONLY"
    # in a subquery ClickHouse ignores them: the limits stay rtp's
    body = engine.query_bytes(
        f"SELECT * FROM (SELECT getSetting('max_execution_time') {clause})",
        "TabSeparated",
        Limits().within(3),
    )
    assert body == b"3\n"


@pytest.mark.parametrize("path", ["/etc/passwd", "../owner.json", "owner.json"])
def test_file_is_refused_to_callers(engine, path):
    error = refused(engine, f"SELECT length(file('{path}')) AS n")
    assert error.ch_name == "ACCESS_DENIED"
    assert "file()" in error.detail


def test_reads_still_run(engine):
    limits = caller()
    assert engine.query_bytes("SELECT count() FROM t", "TabSeparated", limits) == b"10\n"
    assert engine.query_bytes("SHOW TABLES", "TabSeparated", limits) == b"t\n"
    assert engine.query_bytes("DESCRIBE t", "TabSeparated", limits).startswith(b"s\tString")
    assert engine.query_bytes("WITH 2 AS x SELECT x", "TabSeparated", limits) == b"2\n"
    assert engine.query_bytes("EXISTS TABLE t", "TabSeparated", limits) == b"1\n"


def test_the_deadline_stops_the_work(engine):
    cpu = os.times()
    started = time.monotonic()
    error = refused(
        engine, "SELECT count() FROM numbers(100000000000)", Limits(max_rows_to_read=0).within(1.0)
    )
    elapsed = time.monotonic() - started
    assert error.ch_name == "TIMEOUT_EXCEEDED"
    assert 0.9 < elapsed < 5, elapsed
    # the engine's threads go quiet: little CPU in the next second
    before = os.times()
    time.sleep(1.0)
    after = os.times()
    assert (after.user + after.system) - (before.user + before.system) < 0.5
    assert (before.user - cpu.user) > 0  # it did work until the deadline


def test_memory_is_capped(engine):
    error = refused(
        engine,
        "SELECT groupArray(toString(number)) FROM numbers(2000000000)",
        Limits(max_memory_usage=256 * 1024**2, max_rows_to_read=0),
    )
    assert error.ch_code == 241, error  # MEMORY_LIMIT_EXCEEDED


def test_rows_read_and_result_rows_are_capped(engine):
    assert (
        refused(engine, "SELECT count() FROM numbers(1000)", Limits(max_rows_to_read=100)).ch_code
        == 158
    )
    assert (
        refused(engine, "SELECT number FROM numbers(1000)", Limits(max_result_rows=100)).ch_code
        == 396
    )


@pytest.mark.parametrize("limits", [None, Limits(max_result_rows=1000)])
def test_a_failed_querys_output_never_answers_the_next_query(engine, limits):
    # chDB returns a query's partial output as the NEXT answer on a connection when the
    # query fails mid-way; the backend drains the connection first
    failing = (
        "SELECT number FROM numbers(1000000)"
        if limits
        else "SELECT throwIf(number = 500000) FROM numbers(1000000) SETTINGS max_block_size = 1000"
    )
    for _ in range(3):
        with pytest.raises(QueryError):
            engine.query_bytes(failing, "TabSeparated", limits)
        assert engine.query_bytes("SELECT 42", "TabSeparated", limits) == b"42\n"
        assert engine.query("SELECT 43")[1] == [[43]]


def test_reads_run_concurrently_and_each_gets_its_own_answer(engine):
    threads, per_thread = 8, 40
    errors: list = []
    inserted = threading.Event()

    def reader(i: int):
        try:
            for j in range(per_thread):
                n = 1000 + i * per_thread + j
                body = engine.query_bytes(
                    f"SELECT {i} AS i, {j} AS j, sum(number) FROM numbers({n})",
                    "TabSeparated",
                    caller(),
                )
                assert body == f"{i}\t{j}\t{n * (n - 1) // 2}\n".encode(), (i, j, body)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def writer():
        engine.execute("CREATE TABLE IF NOT EXISTS w (n UInt64) ENGINE = MergeTree ORDER BY n")
        for k in range(20):
            engine.insert_json("w", [{"n": k * 10 + m} for m in range(10)])
        inserted.set()

    workers = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
    workers.append(threading.Thread(target=writer))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors[:3]
    assert inserted.is_set()
    assert engine.query("SELECT count(), sum(n) FROM w")[1] == [[200, 19900]]
    assert len(engine._all_readers) <= threads + 1


def test_exclusive_waits_for_reads_and_holds_them_off():
    lock = RWLock()
    log: list[str] = []
    reading = threading.Event()

    def read(name: str, hold: float):
        with lock.shared():
            reading.set()
            log.append(f"{name}+")
            time.sleep(hold)
            log.append(f"{name}-")

    first = threading.Thread(target=read, args=("r1", 0.3))
    first.start()
    reading.wait()
    second = None

    def deploy():
        with lock.exclusive():
            log.append("x+")
            assert lock.held_exclusively_for() >= 0
            with lock.shared(), lock.exclusive():  # its own statements re-enter
                pass
            time.sleep(0.2)
            log.append("x-")

    d = threading.Thread(target=deploy)
    d.start()
    time.sleep(0.1)
    second = threading.Thread(target=read, args=("r2", 0))
    second.start()  # arrives while the deploy waits: it must wait for the deploy
    for t in (first, d, second):
        t.join(5)
    assert log == ["r1+", "r1-", "x+", "x-", "r2+", "r2-"]
    assert lock.held_exclusively_for() == 0.0


def test_reads_pass_during_an_insert_but_not_during_exclusive(engine):
    done = threading.Event()

    def read():
        engine.query_bytes("SELECT 1", "TabSeparated", caller())
        done.set()

    with engine.exclusive():
        t = threading.Thread(target=read)
        t.start()
        assert not done.wait(0.3)
    assert done.wait(5)
    t.join()


def test_limits_values_are_checked():
    with pytest.raises(ValueError):
        Limits(deadline=0)
    with pytest.raises(ValueError):
        Limits(max_memory_usage=-1)
    settings = Limits().within(2.5).settings({"max_query_size": 10, "readonly": 0})
    assert settings["readonly"] == 1 and settings["max_execution_time"] == 2.5
    assert settings["max_query_size"] == 10
    assert list(settings)[0] == "max_query_size"


SERVER = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


@pytest.mark.skipif(not SERVER, reason="RTP_TEST_CLICKHOUSE_URL names no ClickHouse server")
def test_server_backend_applies_the_limits_and_serves_threads():
    from rtp.engine.clickhouse import ClickHouseBackend

    backend = ClickHouseBackend(SERVER)
    try:
        backend.execute("CREATE TABLE IF NOT EXISTS lim (n UInt64) ENGINE = Memory")
        for sql in (
            "SELECT 1 SETTINGS max_execution_time = 999",
            "CREATE TABLE lim2 (n UInt64) ENGINE = Memory",
            "INSERT INTO lim SELECT 1",
        ):
            with pytest.raises(QueryError) as info:
                backend.query(sql, Limits())
            assert info.value.ch_code == 164, info.value  # READONLY
        with pytest.raises(QueryError) as info:  # 0.4 s is not 0 (= unlimited) on 18.16
            backend.query(
                "SELECT count() FROM system.numbers", Limits(max_rows_to_read=0).within(0.4)
            )
        assert info.value.ch_code == 159
        results: list = []

        def work(i):
            for j in range(20):
                rows = backend.query(f"SELECT {i} * 100 + {j}", Limits())[1]
                results.append(rows == [[i * 100 + j]])

        workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert len(results) == 120 and all(results)
        assert backend.query("SELECT count() FROM lim")[1] == [[0]]
    finally:
        backend.execute("DROP TABLE IF EXISTS lim")
        backend.close()


SERVE_URL = os.environ.get("RTP_TEST_CLICKHOUSE_SERVE_URL")


@pytest.mark.skipif(
    not (SERVER and SERVE_URL),
    reason="RTP_TEST_CLICKHOUSE_URL and "
    "RTP_TEST_CLICKHOUSE_SERVE_URL (the rtp_server user that "
    ".ci/services/clickhouse.sh adds) name no ClickHouse server",
)
def test_the_serving_user_reads_and_ingests_but_changes_no_table():
    from urllib.parse import urlparse

    from rtp.engine.clickhouse import ClickHouseBackend
    from rtp.errors import EngineError

    # the database and table come from the deploying user (default)
    database = urlparse(SERVER).path.strip("/")
    serve_url = SERVE_URL.rsplit("/", 1)[0] + "/" + database
    admin = ClickHouseBackend(SERVER)
    admin.execute("DROP TABLE IF EXISTS served")
    admin.execute("CREATE TABLE served (n UInt32) ENGINE = MergeTree ORDER BY n")
    try:
        try:
            backend = ClickHouseBackend(serve_url)
        except EngineError as exc:
            pytest.skip(
                f"no rtp_server user on this server (started before "
                f".ci/services/clickhouse.sh added it): {exc}"
            )
        try:
            backend.insert_json("served", [{"n": 1}, {"n": 2}])  # ingestion works
            assert backend.query("SELECT sum(n) FROM served", Limits())[1] == [[3]]
            for sql in (
                "CREATE TABLE x (n UInt8) ENGINE = Memory",
                "DROP TABLE served",
                "TRUNCATE TABLE served",
            ):
                with pytest.raises(QueryError) as info:
                    backend.execute(sql)
                assert info.value.ch_code == 392, info.value  # QUERY_IS_PROHIBITED
            with pytest.raises(QueryError) as info:  # a caller's write: READONLY
                backend.query("INSERT INTO served SELECT 3", Limits())
            assert info.value.ch_code == 164
            assert admin.query("SELECT count() FROM served")[1] == [[2]]
        finally:
            backend.close()
    finally:
        admin.execute("DROP TABLE IF EXISTS served")
        admin.close()
