"""Templates: parameter discovery from the AST, typed values, required, helpers."""

from __future__ import annotations

import datetime as dt

import pytest

from rtp.errors import RequestError, http_status
from rtp.sql.params import Param, coerce
from rtp.sql.template import TemplateError, compile_template

SQL = """\
SELECT * FROM events
WHERE session_id = {{ String(session_id, required=True, description="Current session") }}
{% if defined(category) %}AND category = {{ String(category) }}{% endif %}
ORDER BY {{ column(sort, 'timestamp') }}
LIMIT {{ Int32(limit, 10, min=1, max=100, description="Rows") }}
"""


def test_params_discovered_with_their_declarations():
    t = compile_template(SQL)
    assert t.params["session_id"] == Param(
        "session_id", "String", required=True, description="Current session", line=2
    )
    assert t.params["limit"] == Param(
        "limit", "Int32", default=10, min=1, max=100, description="Rows", line=5
    )
    assert t.params["category"].type == "String" and t.params["category"].declared
    assert t.params["sort"].declared is False  # used by column() only: text, no type
    assert list(t.params) == ["session_id", "category", "limit", "sort"]


def test_render_with_values_and_defaults():
    t = compile_template(SQL)
    sql = t.render(t.coerce_values({"session_id": "s1", "limit": "5"}))
    assert sql == (
        "SELECT * FROM events\nWHERE session_id = 's1'\n\nORDER BY `timestamp`\nLIMIT 5\n"
    )
    sql = t.render(t.coerce_values({"session_id": "s1", "category": "shoes", "sort": "price"}))
    assert "AND category = 'shoes'" in sql and "ORDER BY `price`" in sql and "LIMIT 10" in sql


def test_required_is_enforced():
    t = compile_template(SQL)
    with pytest.raises(RequestError) as info:
        t.render({})
    assert info.value.code == "RTP401" and "session_id" in info.value.message


@pytest.mark.parametrize(
    "value,message",
    [
        ("abc", "parameter 'limit' must be Int32, got 'abc'"),
        ("0", "parameter 'limit' must be at least 1"),
        ("101", "parameter 'limit' must be at most 100"),
        ("99999999999", "parameter 'limit' is out of range for Int32"),
        ("1.5", "parameter 'limit' must be Int32"),
    ],
)
def test_bad_values_name_the_parameter_and_type(value, message):
    t = compile_template(SQL)
    with pytest.raises(RequestError) as info:
        t.coerce_values({"session_id": "s", "limit": value})
    assert info.value.message.startswith(message)
    assert http_status(info.value) == 400


def test_types():
    assert coerce(Param("d", "Date"), "2024-02-29") == dt.date(2024, 2, 29)
    assert coerce(Param("d", "DateTime"), "2024-02-29T10:11:12.5") == dt.datetime(
        2024, 2, 29, 10, 11, 12
    )
    assert coerce(Param("d", "DateTime64"), "2024-02-29 10:11:12.5") == dt.datetime(
        2024, 2, 29, 10, 11, 12, 500000
    )
    assert coerce(Param("b", "Boolean"), "true") is True
    assert coerce(Param("f", "Float64"), "2.5") == 2.5
    assert coerce(Param("u", "UInt8"), "255") == 255
    assert coerce(Param("a", "Array(Int16)"), "1,2,3") == [1, 2, 3]
    assert coerce(Param("e", "String", enum=("a", "b")), "b") == "b"
    for param, value in [
        (Param("u", "UInt8"), "256"),
        (Param("u", "UInt8"), "-1"),
        (Param("f", "Float64"), "nan"),
        (Param("d", "Date"), "2024-13-01"),
        (Param("e", "String", enum=("a", "b")), "c"),
        (Param("b", "Boolean"), "maybe"),
        (Param("a", "Array(Int8)"), "1,x"),
    ]:
        with pytest.raises(RequestError):
            coerce(param, value)


def test_array_and_helpers_render_literals():
    t = compile_template(
        "SELECT {{ columns(cols, 'a,b') }} FROM t WHERE id IN {{ Array(ids, 'Int32', '1,2') }}"
        " AND {{ sql_and(kind__in=kinds, price__gt=min_price) }}"
    )
    sql = t.render(t.coerce_values({"kinds": "x,y'"}))
    assert sql == ("SELECT `a`, `b` FROM t WHERE id IN [1, 2] AND `kind` IN ('x', 'y\\'')")


def test_bare_expression_output_is_quoted():
    t = compile_template("SELECT {{ name }}, {{ 'lit' }}, {{ 3 }}")
    assert t.render({"name": "x'); DROP TABLE t --"}) == (
        "SELECT 'x\\'); DROP TABLE t --', 'lit', 3"
    )


def test_error_helper_raises_with_status():
    t = compile_template(
        "{% if not defined(x) %}{{ error('x is needed', 422) }}{% endif %}SELECT 1"
    )
    with pytest.raises(RequestError) as info:
        t.render({})
    assert (info.value.code, info.value.status, info.value.message) == (
        "RTP402",
        422,
        "x is needed",
    )


def test_tinybird_percent_marker_is_accepted():
    t = compile_template("%\nSELECT {{ Int8(n, 1) }}")
    assert t.render({}).strip() == "SELECT 1"


@pytest.mark.parametrize(
    "sql,code,line",
    [
        ("SELECT {{ String(x }}", "RTP300", 1),
        ("SELECT 1\n{% if x %}", "RTP300", 2),
        ("SELECT {{ Strin(x) }}", "RTP301", 1),
        ("SELECT\n{{ Int32(x, 'ten') }}", "RTP301", 2),
        ("SELECT {{ Int32(x, foo=1) }}", "RTP301", 1),
        ("SELECT {{ Int32(x) }} + {{ String(x) }}", "RTP301", 1),
        ("SELECT {{ Array(x, 'Nope') }}", "RTP301", 1),
        ("SELECT {{ Int32('x') }}", "RTP301", 1),
        ("SELECT {{ Int32(x, y) }}", "RTP301", 1),
    ],
)
def test_template_errors_have_code_and_line(sql, code, line):
    with pytest.raises(TemplateError) as info:
        compile_template(sql)
    assert (info.value.code, info.value.line) == (code, line)


def test_sandbox_blocks_attribute_escape():
    t = compile_template("SELECT {{ ''.__class__.__mro__ }}")
    with pytest.raises(Exception) as info:
        t.render({})
    assert "unsafe" in str(info.value) or "__class__" in str(info.value)
