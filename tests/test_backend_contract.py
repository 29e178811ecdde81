"""One contract, two backends: every test here runs against the embedded engine (chDB)
and a ClickHouse server (RTP_TEST_CLICKHOUSE_URL; that half skips, saying so, when it
is unset). The protocol is rtp.engine.Backend: what one backend answers, the other
answers too — types, every output format, inserts all-or-none, exclusive holds, the
read-only limits and their deadline."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import threading
import time
import uuid

import pytest

from rtp.engine import Backend, QueryError, version_tuple
from rtp.engine.embedded import EmbeddedBackend
from rtp.engine.limits import TIMEOUT_EXCEEDED, Limits

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
TABLE = (
    "CREATE TABLE t (ts DateTime, user_id String, n UInt8, note String DEFAULT 'none', "
    "tags Array(String), price Nullable(Float64)) ENGINE = MergeTree ORDER BY ts"
)


@pytest.fixture(params=["embedded", "clickhouse"])
def backend(request):
    name = f"rtp_test_contract_{uuid.uuid4().hex[:8]}"
    b: Backend
    if request.param == "embedded":
        b = EmbeddedBackend(":memory:", database=name)
    else:
        if not URL:
            pytest.skip(
                "RTP_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test "
                "(source .ci/services/clickhouse.sh)"
            )
        from rtp.engine.clickhouse import ClickHouseBackend

        b = ClickHouseBackend(f"{URL.rsplit('/', 1)[0]}/{name}")
    yield b
    b.execute(f"DROP DATABASE IF EXISTS `{name}`")
    b.close()


def test_name_database_and_version(backend):
    assert backend.name in ("embedded", "clickhouse")
    assert backend.database.startswith("rtp_test_contract_")
    assert version_tuple(backend.version()) >= (18, 0)
    assert backend.version() == backend.query("SELECT version()")[1][0][0]


# -- query: types round-trip ---------------------------------------------------------

ROWS_SQL = (
    "SELECT * FROM (SELECT toUInt8(1) AS n, toUInt64(12345678901) AS big, "
    "'a,\"b' AS s, toDate('2030-01-02') AS d, toDateTime('2030-01-02 03:04:05') AS t, "
    "2.5 AS f, ['x', 'y'] AS tags, CAST(NULL AS Nullable(Int32)) AS maybe "
    "UNION ALL SELECT toUInt8(2), toUInt64(3), 'c', toDate('2030-01-03'), "
    "toDateTime('2030-01-03 00:00:00'), -1.25, emptyArrayString(), "
    "CAST(7 AS Nullable(Int32))) ORDER BY n"
)
COLUMNS = [
    ("n", "UInt8"),
    ("big", "UInt64"),
    ("s", "String"),
    ("d", "Date"),
    ("t", "DateTime"),
    ("f", "Float64"),
    ("tags", "Array(String)"),
    ("maybe", "Nullable(Int32)"),
]
ANSWER = [
    [1, 12345678901, 'a,"b', "2030-01-02", "2030-01-02 03:04:05", 2.5, ["x", "y"], None],
    [2, 3, "c", "2030-01-03", "2030-01-03 00:00:00", -1.25, [], 7],
]


def test_query_returns_typed_columns_and_plain_values(backend):
    columns, rows = backend.query(ROWS_SQL)
    assert columns == COLUMNS
    assert rows == ANSWER


def test_execute_then_query_round_trips(backend):
    backend.execute(TABLE)
    backend.execute(
        "INSERT INTO t (ts, user_id, n, tags, price) "
        "SELECT toDateTime('2030-01-01 10:00:00'), 'u1', 7, ['a'], 1.5"
    )
    assert backend.query("SELECT user_id, n, note, tags, price FROM t")[1] == [
        ["u1", 7, "none", ["a"], 1.5]
    ]
    with pytest.raises(QueryError) as caught:
        backend.execute("SELECT nope FROM t")
    assert caught.value.ch_code == 47  # UNKNOWN_IDENTIFIER


# -- query_bytes: every format decodes to the same answer ----------------------------


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _csv_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text == "\\N" else text


def test_query_bytes_json(backend):
    body = json.loads(backend.query_bytes(ROWS_SQL, "JSON"))
    assert [(m["name"], m["type"]) for m in body["meta"]] == COLUMNS
    assert body["data"] == [dict(zip([c for c, _ in COLUMNS], row, strict=True)) for row in ANSWER]
    assert body["rows"] == 2
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    assert body["statistics"]["rows_read"] >= 1


def test_query_bytes_json_each_row(backend):
    lines = backend.query_bytes(ROWS_SQL, "JSONEachRow").decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        dict(zip([c for c, _ in COLUMNS], row, strict=True)) for row in ANSWER
    ]


def test_query_bytes_csv_with_names(backend):
    text = backend.query_bytes(ROWS_SQL, "CSVWithNames").decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [c for c, _ in COLUMNS]
    assert [[_csv_value(v) for v in row] for row in rows[1:]] == [
        [1, 12345678901, 'a,"b', "2030-01-02", "2030-01-02 03:04:05", 2.5, "['x','y']", None],
        [2, 3, "c", "2030-01-03", "2030-01-03 00:00:00", -1.25, "[]", 7],
    ]


def test_query_bytes_tab_separated(backend):
    assert backend.query_bytes("SELECT 1 AS a, 'x\\ty' AS b", "TabSeparated") == b"1\tx\\ty\n"


def test_query_bytes_parquet(backend):
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(backend.query_bytes(ROWS_SQL, "Parquet")))
    assert table.column_names == [c for c, _ in COLUMNS]
    assert [[_plain(v) for v in row.values()] for row in table.to_pylist()] == ANSWER


# -- insert_json: all or none ----------------------------------------------------------


def _rows(n: int) -> list[dict]:
    # some rows leave out the column with a default: still one INSERT
    return [
        {
            "ts": "2030-01-01 10:00:00",
            "user_id": f"u{i}",
            "n": i % 200,
            "tags": ["a", f"t{i}"],
            "price": None if i % 3 else 1.5,
            **({"note": f"n{i}"} if i % 2 else {}),
        }
        for i in range(n)
    ]


def test_insert_into_a_missing_table_raises(backend):
    with pytest.raises(QueryError) as caught:
        backend.insert_json("nope", _rows(3))
    assert caught.value.ch_name == "UNKNOWN_TABLE"


def test_a_bad_value_inserts_nothing(backend):
    backend.execute(TABLE)
    rows = _rows(700)
    rows[650]["n"] = 100_000  # out of UInt8's range: the engine refuses it
    rows[651]["ts"] = "not a time"
    with pytest.raises(QueryError):
        backend.insert_json("t", rows)
    assert backend.query("SELECT count() FROM t")[1] == [[0]]


def test_n_rows_store_exactly_n_with_defaults(backend):
    backend.execute(TABLE)
    backend.execute("SYSTEM STOP MERGES t")  # count the INSERT's parts, unmerged
    backend.insert_json("t", _rows(1000))
    assert backend.query(
        "SELECT count(), countIf(note = 'none'), countIf(price IS NULL), sum(length(tags)) FROM t"
    )[1] == [[1000, 500, 666, 2000]]
    # one INSERT: one part (the server path used to send one per 200 rows)
    assert backend.query(
        "SELECT count() FROM system.parts WHERE database = "
        f"'{backend.database}' AND table = 't' AND active"
    )[1] == [[1]]


def test_a_token_dedupes_where_the_engine_can_and_is_refused_where_it_cannot(backend):
    from rtp.errors import EngineError
    from rtp.ingest import supports_tokens
    from rtp.sql.ddl import DEDUP_SETTING

    window = f" SETTINGS {DEDUP_SETTING} = 1000" if supports_tokens(backend) else ""
    backend.execute(TABLE + window)
    if not supports_tokens(backend):  # ClickHouse 18.16: no insert_deduplication_token
        with pytest.raises(EngineError, match="22.2"):
            backend.insert_json("t", _rows(3), token="k1")
        assert backend.query("SELECT count() FROM t")[1] == [[0]]
        return
    for _ in range(2):
        backend.insert_json("t", _rows(3), token="k1")
        backend.insert_json("t", _rows(3))  # no token: identical rows are stored again
    assert backend.query("SELECT count() FROM t")[1] == [[9]]


# -- exclusive ---------------------------------------------------------------------------


def test_exclusive_holds_off_other_statements(backend):
    ran = threading.Event()

    def other() -> None:
        backend.query("SELECT 1")
        ran.set()

    with backend.exclusive():
        thread = threading.Thread(target=other)
        thread.start()
        # the other statement waits for the block (generous: it takes ~1 ms otherwise)
        assert not ran.wait(0.5)
    thread.join(10)
    assert ran.is_set()


# -- limits ------------------------------------------------------------------------------


def test_limits_make_a_query_read_only(backend):
    backend.execute(TABLE)
    with pytest.raises(QueryError) as caught:
        backend.query("INSERT INTO t (user_id) SELECT 'x'", Limits())
    assert caught.value.ch_code == 164 or caught.value.ch_name == "READONLY"
    with pytest.raises(QueryError):
        backend.query_bytes("INSERT INTO t (user_id) SELECT 'x'", "JSON", Limits())
    assert backend.query("SELECT count() FROM t")[1] == [[0]]
    # the same statement without limits is rtp's own and runs
    backend.execute("INSERT INTO t (user_id) SELECT 'x'")
    assert backend.query("SELECT count() FROM t")[1] == [[1]]


def test_a_query_past_its_deadline_stops_with_timeout(backend):
    started = time.monotonic()
    with pytest.raises(QueryError) as caught:
        # system.numbers never ends (a table: read-only allows it, unlike numbers())
        backend.query_bytes(
            "SELECT count() FROM system.numbers",
            "JSON",
            Limits(deadline=1.0, max_rows_to_read=0, max_bytes_to_read=0),
        )
    assert caught.value.ch_code == TIMEOUT_EXCEEDED
    assert time.monotonic() - started < 20  # the engine stopped it, not a driver timeout
    # the backend still answers afterwards
    assert backend.query("SELECT 42")[1] == [[42]]
