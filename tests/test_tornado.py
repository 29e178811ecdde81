"""Tinybird's template syntax (Tornado's) and helper functions, rendered in rtp's sandbox."""

from __future__ import annotations

import pytest
from deploy_helpers import SHOP, drop, memory_backend, scalar
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.deploy import deploy
from rtp.errors import RequestError
from rtp.project import load_project
from rtp.sql.template import TemplateError, compile_template

PIPE = """\
%
SELECT *
FROM events
{# a Tornado comment #}
WHERE 1
{% if defined(kind) and kind == 'a' %}
  AND kind = 'a'
{% elif defined(kind) %}
  AND kind = {{ String(kind) }}
{% else %}
  AND 1
{% end %}
{% set n = Int32(limit, 20) %}
LIMIT {{ n }} OFFSET {{ Int32(page, 0) * Int32(limit, 20) }}
"""


def render(sql: str, **values) -> str:
    t = compile_template(sql)
    return t.render(t.coerce_values(values))


def test_tornado_blocks_render_as_tinybird_renders_them():
    out = " ".join(render(PIPE, kind="b", page="2", limit="10").split())
    assert out == "SELECT * FROM events WHERE 1 AND kind = 'b' LIMIT 10 OFFSET 20"
    assert " ".join(render(PIPE).split()).endswith("WHERE 1 AND 1 LIMIT 20 OFFSET 0")
    assert "AND kind = 'a'" in render(PIPE, kind="a")


def test_for_set_and_helpers():
    sql = (
        "{% for last, c in enumerate_with_last(split_to_array(cols, 'a,b')) %}"
        "{{ symbol(c) }}{% if not last %}, {% end %}{% end %}"
    )
    assert render(sql) == "`a`, `b`"
    assert render(sql, cols="x, y ,z") == "`x`, `y`, `z`"
    assert render("{{ Array(ids) }}", ids="1,2") == "['1', '2']"
    assert render("{{ Array(ids, 'Int32', default='3,4') }}") == "[3, 4]"
    assert render("{{ day_diff(a, b) }}", a="2024-01-05", b="2024-01-01") == "4"
    assert (
        render(
            "{{ date_diff_in_hours(DateTime(a), DateTime(b)) >= 24 }}",
            a="2024-01-01 00:00:00",
            b="2024-01-02 01:00:00",
        )
        == "1"
    )
    assert render("{{ len(split_to_array(x)) + int('2') }}", x="p,q,r") == "5"
    assert render("{{ JSON(j, '{}') }}", j='{"k": "it\'s"}') == '\'{"k": "it\\\'s"}\''
    assert render("{{ max_threads(4) }}SELECT 1") == "/* max_threads 4 */SELECT 1"
    assert render("{{ columns(c, 'a,b') }}") == "`a`, `b`"
    assert render("{{ tb_var('region', 'eu') }}") == "'eu'"


def test_try_except_renders_the_except_part_when_a_value_fails():
    t = compile_template("{% try %}{{ Int8(x) }}{% except %}0{% end %}")
    assert t.render({"x": "300"}) == "0" and t.render({"x": "3"}) == "3"


def test_jinja_end_tags_still_work_and_mix():
    sql = "{% if a %}{% for i in range(2) %}{{ i }}{% endfor %}{% end %}{% if b %}B{% endif %}"
    assert render(sql, a="1", b="1") == "01B"


def test_missing_parameter_is_tinybirds_required_error():
    with pytest.raises(RequestError) as info:
        render("SELECT {{ String(x) }}")
    assert info.value.code == "RTP401"
    assert info.value.message == (
        "Required parameter is not defined. Check the parameters x. Please provide a value "
        "or set a default value in the pipe code."
    )
    for sql in ("{{ Int32(x) + 1 }}", "{% if Int32(x) > 3 %}a{% end %}", "{{ x * 2 }}"):
        with pytest.raises(RequestError) as info:
            render(sql)
        assert info.value.code == "RTP401" and "parameters x." in info.value.message
    # sql_and leaves out a condition whose value was not sent (defined=False or not)
    assert render("{{ sql_and(x=String(x, defined=False), y=Int32(y)) }}") == "1"


@pytest.mark.parametrize(
    "sql,line,needle",
    [
        ("SELECT 1\n{% if a %}\nx\n{% end %}\n{% end %}", 5, "extra {% end %}"),
        ("SELECT 1\n{% if a %}\n{% end %}\n{{ nope(a) }}", 4, "unknown function"),
        ("{% while a %}{% end %}", 1, "while"),
    ],
)
def test_errors_keep_the_file_line(sql, line, needle):
    with pytest.raises(TemplateError) as info:
        compile_template(sql)
    assert info.value.line == line and needle in info.value.message


def test_check_uses_examples_and_leaves_the_rest_undefined():
    t = compile_template(
        "SELECT toDate({{ String(d, example='2024-01-02') }}), "
        "{% if defined(f) %}toDate({{ String(f) }}){% else %}today(){% end %}"
    )
    assert t.render(t.sample_values()) == "SELECT toDate('2024-01-02'), today()"


def test_check_cli_accepts_arithmetic_on_parameters(project_factory, cli):
    root = project_factory(
        {
            "pipes/paged.pipe": """
        NODE endpoint
        SQL >
            %
            SELECT number FROM numbers(100)
            {% if defined(odd) %}WHERE number % 2 = 1{% end %}
            LIMIT {{ Int32(limit, 20) }} OFFSET {{ Int32(page, 0) * Int32(limit, 20) }}

        TYPE endpoint
        """
        }
    )
    result = cli("check", "-p", str(root))
    assert result.exit_code == 0, result.output


def test_materialized_view_is_created_without_parameters(project_factory):
    """Tinybird creates the view from the pipe rendered with no parameters; sample values
    baked in (`WHERE user_id = ''`) would leave it empty."""
    mv = SHOP["pipes/spend_mv.yaml"].replace(
        "sql: SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id",
        "sql: |\n              %\n              SELECT user_id, sum(price) AS total, count() AS n"
        " FROM events\n              {% if defined(uid) %}WHERE user_id = {{ String(uid) }}"
        "{% end %}\n              GROUP BY user_id LIMIT {{ Int32(n, 1000) }}",
    )
    model, problems = load_project(project_factory({**SHOP, "pipes/spend_mv.yaml": mv}, base=None))
    assert not problems.errors, [p.message for p in problems]
    backend = memory_backend()
    try:
        deploy(model, backend)
        backend.execute("INSERT INTO events SELECT now(), 'u1', 'p', 2.5 FROM numbers(4)")
        assert scalar(backend, "SELECT sum(n) FROM spend") == 4
        assert scalar(backend, "SELECT sum(total) FROM spend") == 10.0
    finally:
        drop(backend)


HOSTILE = st.one_of(
    st.text(),
    st.text(alphabet="'\\\"`\0\n{}%#;-", max_size=30),
    st.sampled_from(["' OR 1=1 --", "{% end %}", "{{ 1 }}", "\\'"]),
)


@settings(max_examples=100, deadline=None)
@given(value=HOSTILE)
def test_tornado_paths_never_splice_a_value(value):
    """Every Tornado route a value can take to the SQL text ends in one quoted literal."""
    from rtp.sql.escape import quote_string

    for sql in (
        "{% if defined(v) %}{{ String(v) }}{% else %}0{% end %}",
        "{% set x = v %}{{ x }}",
        "{{ String(v) + '' }}",
        "{% for p in [v] %}{% try %}{{ p }}{% except %}0{% end %}{% end %}",
    ):
        assert render(sql, v=value) == quote_string(value)
