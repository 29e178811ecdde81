"""`rtp test`: fixtures, cases, comparisons, filters, --update and JUnit, end to end."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rtp.testing.compare import diff_rows, same
from tests.conftest import PER_USER

FIXTURE = """\
{"timestamp": "2030-01-01 10:00:00", "user_id": "u1", "product_id": "p1", "price": 10}
{"timestamp": "2030-01-01 10:01:00", "user_id": "u1", "product_id": "p2", "price": 5.5}
{"timestamp": "2030-01-01 10:02:00", "user_id": "u1", "product_id": "p1", "price": 10}
{"timestamp": "2030-01-01 10:03:00", "user_id": "u2", "product_id": "p3", "price": 1}
"""

CASES = """\
# spend per product for one shopper
- name: spend_ranked
  parameters: {user_id: u1}
  expected_result: |
    {"product_id": "p1", "spent": 20}
    {"product_id": "p2", "spent": 5.5}
- name: limit_query_string
  parameters: "user_id=u1&limit=1"
  row_count: 1
- name: limit_too_big
  parameters: {user_id: u1, limit: 1000}
  expected_http_status: 400
  expected_error: at most 100
- name: limit_not_a_number
  parameters: {limit: ten}
  expected_http_status: 400
"""


@pytest.fixture
def shop(project_factory):
    return project_factory({"fixtures/events.ndjson": FIXTURE, "tests/by_user.yaml": CASES})


def test_all_pass(shop, cli):
    result = cli("test", "-p", shop)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "4 passed, 0 failed"
    assert "PASS by_user::spend_ranked" in result.stdout


def test_failure_shows_row_and_column_diff(shop, cli):
    path = shop / "tests/by_user.yaml"
    path.write_text(path.read_text().replace('"spent": 5.5', '"spent": 6'))
    result = cli("test", "-p", shop)
    assert result.exit_code == 1
    assert "FAIL by_user::spend_ranked" in result.stdout
    assert "row 2, spent: expected 6, got 5.5" in result.stdout
    assert "tests/by_user.yaml:2:9" in result.stdout
    assert result.stdout.splitlines()[-1] == "3 passed, 1 failed"


def test_filters(shop, cli):
    result = cli("test", "-p", shop, "-k", "limit")
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed"
    result = cli("test", "by_user", "-p", shop, "-k", "spend")
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed"
    result = cli("test", "nope", "-p", shop)
    assert result.exit_code == 2 and "RTP600" in result.stderr


def test_update_rewrites_only_the_expected_value(shop, cli):
    path = shop / "tests/by_user.yaml"
    path.write_text(path.read_text().replace('"spent": 5.5', '"spent": 6'))
    result = cli("test", "-p", shop, "--update")
    assert "updated by_user::spend_ranked" in result.stdout
    text = path.read_text()
    assert text == CASES  # the answer was 5.5: the file is back to the original, comment kept
    assert cli("test", "-p", shop).exit_code == 0


def test_update_from_empty_expectation(shop, cli):
    path = shop / "tests/by_user.yaml"
    path.write_text(
        CASES.replace(
            """  expected_result: |
    {"product_id": "p1", "spent": 20}
    {"product_id": "p2", "spent": 5.5}
""",
            "  expected_result: []\n",
        )
    )
    cli("test", "-p", shop, "--update")
    assert path.read_text() == CASES


def test_junit(shop, cli, tmp_path):
    out = tmp_path / "junit.xml"
    cli("test", "-p", shop, "--junit", out)
    suite = ET.parse(out).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("4", "0")
    assert [c.get("name") for c in suite.iter("testcase")] == [
        "spend_ranked",
        "limit_query_string",
        "limit_too_big",
        "limit_not_a_number",
    ]


def test_materialized_views_fire_on_fixtures(project_factory, cli):
    root = project_factory(
        {
            "fixtures/events.ndjson": FIXTURE,
            **PER_USER,
            "pipes/counts.yaml": """
            nodes:
              - {name: a, sql: "SELECT user_id, sum(n) AS n FROM per_user GROUP BY user_id"}
        """,
            "tests/counts.yaml": """
            - name: counted
              parameters: {}
              ignore_order: true
              expected_result:
                - {user_id: u2, n: 1}
                - {user_id: u1, n: 3}
        """,
        }
    )
    result = cli("test", "-p", root)
    assert result.exit_code == 0, result.stdout
    assert "8 fixture rows" not in result.stdout and "4 fixture rows" in result.stdout


@pytest.mark.parametrize(
    "files,code,where",
    [
        (
            {"tests/nope.yaml": "- {name: a, parameters: {}, row_count: 1}\n"},
            "RTP600",
            "tests/nope.yaml",
        ),
        (
            {"tests/by_user.yaml": "- {name: a, parameters: {usr: x}, row_count: 1}\n"},
            "RTP601",
            "tests/by_user.yaml:1:26",
        ),
        (
            {"tests/by_user.yaml": "- {name: a, parameters: {}}\n"},
            "RTP604",
            "tests/by_user.yaml:1:3",
        ),
        ({"tests/by_user.yaml": "- {name: a, row_cont: 1}\n"}, "RTP102", "tests/by_user.yaml:1:13"),
        ({"tests/by_user.yaml": "- name: a\n  row_count: [\n"}, "RTP101", "tests/by_user.yaml:3:1"),
        ({"fixtures/nope.ndjson": "{}\n"}, "RTP602", "fixtures/nope.ndjson"),
        (
            {"fixtures/events.ndjson": FIXTURE + '{"timestamp": "not a time"}\n'},
            "RTP603",
            "fixtures/events.ndjson:5:1",
        ),
        ({"fixtures/events.ndjson": FIXTURE + "{oops\n"}, "RTP603", "fixtures/events.ndjson:5:2"),
    ],
)
def test_bad_input_is_located(project_factory, cli, files, code, where):
    root = project_factory(
        {
            "fixtures/events.ndjson": FIXTURE,
            "tests/by_user.yaml": "- {name: ok, row_count: 2}\n",
            **files,
        }
    )
    result = cli("test", "-p", root)
    assert result.exit_code == 2, result.stdout
    out = result.stdout + result.stderr
    assert code in out and where in out, out


def test_other_files_in_tests_are_ignored(shop, cli):
    (shop / "tests/conftest.yaml").write_text("settings: {a: 1}\n")
    (shop / "tests/test_something.py").write_text("def test_x(): pass\n")
    assert cli("test", "-p", shop).exit_code == 0


def test_compare_rules():
    assert same({"n": "18446744073709551615"}, {"n": 18446744073709551615})
    assert same(0.1 + 0.2, 0.3) and not same(1, 2) and not same("a", 1)
    assert diff_rows([{"a": 1}], [{"a": 1, "b": 2}]) == ["unexpected columns in the result: b"]
    assert diff_rows([{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 1}], ignore_order=True) == []
    assert diff_rows([{"a": 1}], [{"a": 1}, {"a": 3}]) == [
        "expected 1 rows, got 2",
        'row 2 unexpected: {"a": 3}',
    ]


SPEND_COPY = """\
type: copy
target: spend
schedule: '0 * * * *'
mode: replace
nodes:
  - name: q
    sql: SELECT user_id, sum(price) AS total FROM events GROUP BY user_id
"""


def test_scheduled_copies_run_after_the_fixtures(project_factory, cli):
    files = {
        "fixtures/events.ndjson": FIXTURE,
        "datasources/spend.yaml": (
            "columns:\n  - {name: user_id, type: String}\n  - {name: total, type: Float64}\n"
            "sorting_key: [user_id]\n"
        ),
        "pipes/spend_copy.yaml": SPEND_COPY,
        "pipes/spend_of.yaml": (
            "nodes:\n  - name: q\n    sql: SELECT total FROM spend "
            "WHERE user_id = {{ String(user_id) }}\n"
        ),
        "tests/spend_of.yaml": (
            "- name: from_the_copy\n  parameters: {user_id: u1}\n"
            "  expected_result: '{\"total\": 25.5}'\n"
        ),
    }
    root = project_factory(files)
    result = cli("test", "-p", root, "spend_of")
    assert result.exit_code == 0, result.stdout
    assert "copy spend_copy ran (2 rows)" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed"

    broken = SPEND_COPY.replace("sum(price)", "sum(price) + throwIf(count() > 0, 'no spend')")
    root = project_factory({**files, "pipes/spend_copy.yaml": broken})
    result = cli("test", "-p", root, "spend_of")
    assert result.exit_code == 1, result.stdout
    out = result.stdout + result.stderr
    assert "copy pipe 'spend_copy'" in out and "no spend" in out, out
    assert "after loading the fixtures" in out
