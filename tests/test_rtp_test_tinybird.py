"""`rtp test` on Tinybird's test files, run unchanged through the CLI: Forward's
`tests/<pipe>.yaml|.yml` (error cases with the error's text), Classic's data-quality
YAML and `.test`/`.test.result` pairs, fixtures in Tinybird's places, bad files reported
while the others run."""

from __future__ import annotations

from tests.test_rtp_test import FIXTURE

# what `tb test update` writes: a query string, NDJSON text, and for an error the text of
# the answer's "error" in expected_result next to expected_http_status
FORWARD = """\
- name: spend_ranked
  description: spend per product for one shopper
  parameters: user_id=u1&limit=5
  expected_result: |
    {"product_id":"p1","spent":20}
    {"product_id":"p2","spent":5.5}

- name: limit_too_big
  description: the limit is checked
  parameters: user_id=u1&limit=1000
  expected_result: 'parameter ''limit'' must be
    at most 100'
  expected_http_status: 400
"""


def _run(cli, root):
    result = cli("test", "-p", root)
    return result, result.stdout + result.stderr


def test_forward_file_runs_unchanged(project_factory, cli):
    root = project_factory({"fixtures/events.ndjson": FIXTURE, "tests/by_user.yml": FORWARD})
    result, out = _run(cli, root)
    assert result.exit_code == 0, out
    assert "PASS by_user::limit_too_big" in out
    assert out.splitlines()[-1] == "2 passed, 0 failed"


def test_forward_error_text_must_match(project_factory, cli):
    root = project_factory(
        {
            "fixtures/events.ndjson": FIXTURE,
            "tests/by_user.yml": FORWARD.replace("at most", "at least"),
        }
    )
    result, out = _run(cli, root)
    assert result.exit_code == 1, out
    assert (
        "expected the error \"parameter 'limit' must be at least 100\", got "
        "\"parameter 'limit' must be at most 100\"" in out
    ), out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_bad_file_is_located_and_the_others_run(project_factory, cli):
    root = project_factory(
        {
            "fixtures/events.ndjson": FIXTURE,
            "tests/by_user.yaml": FORWARD,
            # a second pipe's file with a row that isn't JSON on its 4th line
            "pipes/all.yaml": "nodes:\n  - {name: a, sql: 'SELECT count() AS n FROM events'}\n",
            "tests/all.yaml": "- name: n\n  parameters: ''\n  expected_result: |\n    {n: 4}\n",
        }
    )
    result, out = _run(cli, root)
    assert result.exit_code == 2, out
    assert "tests/all.yaml:4:6" in out and "RTP104" in out, out
    assert "PASS by_user::spend_ranked" in out
    assert out.splitlines()[-1] == "2 passed, 0 failed, 1 test file error(s)"


def test_repeated_name_warns_and_both_run(project_factory, cli):
    twice = FORWARD.replace("limit_too_big", "spend_ranked")
    root = project_factory({"fixtures/events.ndjson": FIXTURE, "tests/by_user.yaml": twice})
    result, out = _run(cli, root)
    assert result.exit_code == 0, out
    assert "tests/by_user.yaml:8:9: warning RTP605" in out, out
    assert out.splitlines()[-1] == "2 passed, 0 failed"


QUALITY = """\
- no_free_products:
    max_bytes_read: null
    max_time: null
    sql: |
      SELECT * FROM events WHERE price <= 0
- one_shopper_spends:
    sql: SELECT * FROM by_user WHERE spent > 100
    pipe:
      name: by_user
      params:
        user_id: u1
- pipe_reads_default:
    sql: SELECT * FROM by_user WHERE product_id = 'p3'
- fails_with_rows:
    sql: SELECT * FROM events WHERE user_id = 'u2'
- other_shopper_via_underscore:
    sql: SELECT * FROM _ WHERE product_id = 'p3'
    pipe: {name: by_user, params: {user_id: u2}}
- tiny_budget:
    sql: SELECT * FROM events WHERE price > 1000
    max_bytes_read: 1
"""


def test_classic_data_quality_tests(project_factory, cli):
    root = project_factory({"fixtures/events.ndjson": FIXTURE, "tests/default.yaml": QUALITY})
    result, out = _run(cli, root)
    assert result.exit_code == 1, out
    for name in (
        "default::no_free_products",
        "by_user::one_shopper_spends",
        "default::pipe_reads_default",
        "default::tiny_budget",
    ):
        assert f"PASS {name}" in out, out
    assert "FAIL default::fails_with_rows" in out
    assert "FAIL by_user::other_shopper_via_underscore" in out  # params reach the pipe
    assert "the query returned 1 row(s)" in out and '"product_id": "p3"' in out
    assert "passed over bytes" in out
    assert out.splitlines()[-1] == "4 passed, 2 failed"


def test_classic_dot_test_files(project_factory, cli):
    root = project_factory(
        {
            "fixtures/events.ndjson": FIXTURE,
            "tests/by_user_default.test": (
                "tb pipe data by_user --user_id u1 --limit 1 --format CSV\n"
            ),
            "tests/by_user_default.test.result": '"product_id","spent"\n"p1",20\n\n',
            "tests/count.test": 'tb sql "SELECT count() AS c FROM events" --format CSV\n',
            "tests/count.test.result": '"c"\n3\n',
            "tests/table.test": "tb pipe data by_user --user_id u1\n",
            "tests/table.test.result": "| product_id |\n",
        }
    )
    result, out = _run(cli, root)
    assert result.exit_code == 2, out
    assert "PASS by_user::by_user_default" in out, out
    assert "FAIL count::count" in out and "-3" in out and "+4" in out, out
    assert "tests/table.test:1:1: error RTP606" in out and "drawn as a table" in out, out
    assert out.splitlines()[-1] == "1 passed, 1 failed, 1 test file error(s)"


def test_regression_config_is_refused_with_a_warning(project_factory, cli):
    root = project_factory(
        {
            "fixtures/events.ndjson": FIXTURE,
            "tests/by_user.yaml": FORWARD,
            "tests/regression.yaml": "- pipe: '.*'\n  tests:\n    - coverage:\n",
        }
    )
    result, out = _run(cli, root)
    assert result.exit_code == 0, out
    assert "warning RTP606" in out and "regression-test configuration" in out, out


TB_DATASOURCE = """\
SCHEMA >
    `timestamp` DateTime `json:$.timestamp`,
    `user_id` String `json:$.user_id`,
    `price` Float64 `json:$.price`

ENGINE "MergeTree"
ENGINE_SORTING_KEY "user_id, timestamp"
"""

TB_PIPE = """\
NODE totals
SQL >
    SELECT user_id, sum(price) AS spent FROM events GROUP BY user_id ORDER BY user_id

TYPE endpoint
"""


def test_tinybird_folder_without_rtp_yaml(project_factory, cli):
    root = project_factory(
        {
            "datasources/events.datasource": TB_DATASOURCE,
            "endpoints/totals.pipe": TB_PIPE,
            # Forward: .ndjson wins over .csv for one datasource; a fixture naming no
            # datasource is skipped
            "fixtures/events.ndjson": FIXTURE,
            "fixtures/events.csv": "timestamp,user_id,price\n2030-01-01 00:00:00,u9,1\n",
            "fixtures/other.ndjson": "{}\n",
            "tests/totals.yaml": """\
            - name: totals
              parameters: ''
              expected_result: |
                {"user_id":"u1","spent":25.5}
                {"user_id":"u2","spent":1}
        """,
        },
        base=None,
    )
    result, out = _run(cli, root)
    assert result.exit_code == 0, out
    assert "4 fixture rows" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_classic_fixture_folder_and_sql_fixture(project_factory, cli):
    files = {
        "datasources/events.datasource": TB_DATASOURCE,
        "pipes/totals.pipe": TB_PIPE,
        "tests/totals.yaml": """\
            - name: totals
              parameters: ''
              expected_result: |
                {"user_id":"u7","spent":3}
        """,
    }
    root = project_factory(
        {
            **files,
            "datasources/fixtures/events.ndjson": (
                '{"timestamp":"2030-01-01 00:00:00","user_id":"u7","price":3}\n'
            ),
        },
        base=None,
    )
    result, out = _run(cli, root)
    assert result.exit_code == 0, out

    (root / "datasources/fixtures/events.ndjson").unlink()
    (root / "fixtures").mkdir()
    (root / "fixtures/events.sql").write_text(
        "SELECT toDateTime('2030-01-01 00:00:00') AS timestamp, 'u7' AS user_id, "
        "toFloat64(number + 1) AS price FROM numbers(2)\n"
    )
    result, out = _run(cli, root)
    assert result.exit_code == 0, out
    assert "2 fixture rows" in out
