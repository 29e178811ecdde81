"""One insert contract for both backends (embedded chDB, and a ClickHouse server when
RTP_TEST_CLICKHOUSE_URL is set): a missing table raises, a bad value stores nothing,
N rows store exactly N, in one INSERT; and `rtp append` to a server target whose table
is missing fails loudly (it used to print "appended 300 row(s)" and exit 0)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from rtp.engine import QueryError
from rtp.engine.embedded import EmbeddedBackend

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
TABLE = ("CREATE TABLE t (ts DateTime, user_id String, n UInt8, note String DEFAULT 'none', "
         "tags Array(String), price Nullable(Float64)) ENGINE = MergeTree ORDER BY ts")


@pytest.fixture(params=["embedded", "clickhouse"])
def backend(request):
    name = f"rtp_test_ingest_{uuid.uuid4().hex[:8]}"
    if request.param == "embedded":
        b = EmbeddedBackend(":memory:", database=name)
    else:
        if not URL:
            pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test")
        from rtp.engine.clickhouse import ClickHouseBackend

        b = ClickHouseBackend(f"{URL.rsplit('/', 1)[0]}/{name}")
    yield b
    b.execute(f"DROP DATABASE IF EXISTS `{name}`")
    b.close()


def _rows(n: int) -> list[dict]:
    # some rows leave out the column with a default: still one INSERT
    return [{"ts": "2030-01-01 10:00:00", "user_id": f"u{i}", "n": i % 200,
             "tags": ["a", f"t{i}"], "price": None if i % 3 else 1.5,
             **({"note": f"n{i}"} if i % 2 else {})} for i in range(n)]


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
    assert backend.query("SELECT count(), countIf(note = 'none'), countIf(price IS NULL), "
                         "sum(length(tags)) FROM t")[1] == [[1000, 500, 666, 2000]]
    if backend.name == "clickhouse":  # one INSERT: one part (it used to be one per 200)
        assert backend.query("SELECT count() FROM system.parts WHERE database = "
                             f"'{backend.database}' AND table = 't' AND active")[1] == [[1]]


def test_append_to_a_server_without_the_table_fails_loudly(project_factory, cli, tmp_path):
    if not URL:
        pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test")
    from deploy_helpers import SHOP

    shop = project_factory(SHOP, base=None)
    data = tmp_path / "events.ndjson"
    data.write_text("".join(json.dumps({"timestamp": "2030-01-01 10:00:00", "user_id": "u",
                                        "product": {"id": "p", "price": 1}}) + "\n"
                            for _ in range(300)), encoding="utf-8")
    target = f"{URL.rsplit('/', 1)[0]}/rtp_test_ingest_{uuid.uuid4().hex[:8]}"
    try:
        result = cli("append", "events", data, "-p", shop, "--target", target)
    finally:
        from rtp.engine.clickhouse import ClickHouseBackend

        server = ClickHouseBackend(target)
        server.execute(f"DROP DATABASE IF EXISTS `{server.database}`")
        server.close()
    assert result.exit_code != 0, result.output
    assert "appended" not in result.output
    assert "events" in result.output and "RTP" in result.output, result.output


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
