"""Every value a producer can send, per column type: the row is either accepted with a
value the engine stores as sent, or refused with RowError (quarantined with the reason).
Nothing else escapes: an OverflowError or RecursionError used to answer 500 and lose
the request's good rows."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtp.engine import QueryError
from rtp.engine.embedded import EmbeddedBackend
from rtp.ingest import RowError, RowMapper
from rtp.project.model import Column, Datasource

TYPES = [
    "String",
    "Int8",
    "UInt8",
    "Int32",
    "UInt64",
    "Int64",
    "Int128",
    "UInt256",
    "Float32",
    "Float64",
    "Decimal(9, 2)",
    "Decimal64(4)",
    "Bool",
    "Date",
    "Date32",
    "DateTime",
    "DateTime64(3)",
    "UUID",
    "Array(Int32)",
    "Array(String)",
    "Nullable(Float64)",
    "LowCardinality(String)",
    "Array(Nullable(DateTime))",
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "2030-01-01 10:00:00",
            "2030-01-01",
            "1e20",
            "nan",
            "-1",
            "12.345",
            "9" * 40,
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "1969-12-31",
            "2300-01-01T00:00:00Z",
            "true",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def engine():
    backend = EmbeddedBackend(":memory:", database="rtp_test_ingest_checks")
    for n, ch_type in enumerate(TYPES):
        backend.execute(f"CREATE TABLE t{n} (v {ch_type}) ENGINE = MergeTree ORDER BY tuple()")
    yield backend
    backend.execute("DROP DATABASE rtp_test_ingest_checks")
    backend.close()


def _mapper(ch_type: str) -> RowMapper:
    return RowMapper(Datasource("t", "t.yaml", (Column("v", ch_type, "$.v"),)))


MAPPERS = {t: _mapper(t) for t in TYPES}


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.integers(0, len(TYPES) - 1), value=JSON_VALUES)
def test_a_checker_accepts_what_the_engine_stores_or_raises_row_error(engine, n, value):
    try:
        row = MAPPERS[TYPES[n]].map({"v": value})
    except RowError:
        return
    try:
        engine.insert_json(f"t{n}", [row])
    except QueryError as exc:  # pragma: no cover - the failure this test looks for
        pytest.fail(
            f"{TYPES[n]}: the checker passed {value!r} as {row!r}, the engine refused it: {exc}"
        )


@pytest.mark.parametrize("value", [1e20, -1e20, float("nan"), float("inf"), 10**30, -(10**30)])
def test_timestamps_past_time_t_are_row_errors(value):
    with pytest.raises(RowError, match="timestamp"):
        MAPPERS["DateTime"].map({"v": value})


def test_values_nested_past_the_parsers_limit_are_row_errors():
    deep = json.loads("[" * 900 + "]" * 900)  # within the parser's limit: kept as text
    assert MAPPERS["String"].map({"v": deep}) == {"v": "[" * 900 + "]" * 900}
    rows, bad = MAPPERS["String"].map_lines([b'{"v": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
    assert rows == [] and bad[0][0].startswith("not JSON")


def test_nan_floats_are_stored_as_nan_not_zero(engine):
    row = MAPPERS["Float64"].map({"v": float("nan")})
    engine.execute("TRUNCATE TABLE t9")
    engine.insert_json("t9", [row])
    assert engine.query("SELECT isNaN(v) FROM t9")[1] == [[1]]
