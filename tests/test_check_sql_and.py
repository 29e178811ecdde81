"""`rtp check` warns about a ``sql_and`` keyword whose ``__suffix`` is no operator."""

from __future__ import annotations

import json

FILTERED = """
    nodes:
      - name: filtered
        sql: |
          SELECT product_id FROM events
          WHERE {{ sql_and(product_id__in=Array(ids, 'String'), price__gt=Float64(over),
                           price__above=Float64(min_price)) }}
"""


def test_unknown_sql_and_operator_is_a_warning(project_factory, cli):
    root = project_factory({"pipes/filtered.yaml": FILTERED})
    result = cli("check", "-p", root, "--format", "json")
    body = json.loads(result.stdout)
    # the warning says why ClickHouse then finds no column `price__above`
    assert result.exit_code == 1, result.stdout
    problem, engine = body["problems"]
    assert (engine["code"], engine["line"]) == ("RTP304", 6)
    assert (problem["code"], problem["severity"]) == ("RTP301", "warning")
    assert "'__above' is not an operator" in problem["message"]
    assert "__gte" in problem["hint"]
    # line 6 of the file, under `price__above`
    assert (problem["file"], problem["line"], problem["column"]) == ("pipes/filtered.yaml", 6, 24)
    assert problem["length"] == len("price__above")


def test_known_operators_are_quiet(project_factory, cli):
    root = project_factory({"pipes/filtered.yaml": FILTERED.replace("__above", "__gte")})
    result = cli("check", "-p", root, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["problems"] == []


def test_a_column_named_with_a_double_underscore_still_works(project_factory, cli):
    events = """
        columns:
          - {name: product_id, type: String}
          - {name: price, type: Float64}
          - {name: price__above, type: Float64}
        sorting_key: [product_id]
    """
    root = project_factory(
        {
            "datasources/events.yaml": events,
            "pipes/by_user.yaml": None,
            "pipes/filtered.yaml": FILTERED,
        }
    )
    result = cli("check", "-p", root, "--format", "json")
    assert result.exit_code == 0, result.stdout  # a warning alone does not fail
    assert [p["severity"] for p in json.loads(result.stdout)["problems"]] == ["warning"]
