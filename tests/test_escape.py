"""No value can change a statement's structure: hypothesis against the real engine.

Each generated value is rendered through a template and run by embedded ClickHouse;
the statement must return exactly one row holding exactly that value, which can only
happen if the value stayed one literal.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtp.engine.embedded import EmbeddedBackend
from rtp.errors import RequestError, http_status
from rtp.sql.escape import identifier, literal, quote_string
from rtp.sql.template import compile_template

HOSTILE = st.one_of(
    st.text(),
    st.text(alphabet="'\\\"`\0\n\r\t;-/*{}%$", max_size=30),
    st.sampled_from(
        [
            "'",
            "\\'",
            "\\",
            "' OR 1=1 --",
            "'); DROP TABLE t; --",
            "\0",
            "\\0",
            "$$",
            "{x:String}",
            "é😀",
            "\u202e",
            "a" * 100_000,
        ]
    ),
)


@pytest.fixture(scope="module")
def engine():
    backend = EmbeddedBackend(":memory:", database="escape_test")
    yield backend
    backend.close()


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(value=HOSTILE)
def test_string_parameter_round_trips(engine, value):
    t = compile_template("SELECT {{ String(v) }} AS v, 1 AS marker")
    sql = t.render(t.coerce_values({"v": value}))
    columns, rows = engine.query(sql)
    assert [c[0] for c in columns] == ["v", "marker"]
    assert rows == [[value, 1]]


@SETTINGS
@given(value=HOSTILE)
def test_bare_expression_round_trips(engine, value):
    t = compile_template("SELECT {{ v }} AS v")
    assert engine.query(t.render({"v": value}))[1] == [[value]]


@SETTINGS
@given(value=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s))
def test_identifier_round_trips(engine, value):
    sql = f"SELECT 1 AS {identifier(value)}"
    columns, rows = engine.query(sql)
    assert columns[0][0] == value and rows == [[1]]


@SETTINGS
@given(
    value=st.one_of(
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
        st.lists(st.integers(-1000, 1000), max_size=5),
    )
)
def test_non_string_parameters_parse_or_refuse(value):
    """Integer parameters accept only integers; anything else is a 400, never SQL."""
    t = compile_template("SELECT {{ Int64(v) }}")
    try:
        sql = t.render(t.coerce_values({"v": value}))
    except RequestError as exc:
        assert http_status(exc) == 400 and "'v'" in exc.message
        return
    assert sql == f"SELECT {int(value)}"


def test_literals():
    assert quote_string("it's") == "'it\\'s'"
    assert quote_string("a\\b\0\n") == "'a\\\\b\\0\\n'"
    assert literal([1, "x"]) == "[1, 'x']"
    assert literal(None) == "NULL" and literal(True) == "1"
    with pytest.raises(ValueError):
        literal(float("inf"))
    with pytest.raises(ValueError):
        quote_string("\ud800")
