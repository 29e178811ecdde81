"""Each way of breaking a project gives its code at the exact place (`rtp check`)."""

from __future__ import annotations

import json
import textwrap

import pytest

from rtp.check import check_project
from rtp.errors import Problems
from rtp.project.load import load_project
from tests.conftest import MINIMAL, PER_USER

# the minimal project's events datasource, unindented so keys can be appended to it
EVENTS_OK = textwrap.dedent(MINIMAL["datasources/events.yaml"]).lstrip("\n")


def problems_of(project_factory, files, base=None):
    root = project_factory(files, base=MINIMAL if base is None else base)
    model, problems = load_project(root)
    check_project(model, problems)
    return problems


def where(problem):
    loc = problem.location
    return (problem.code, loc.file, loc.line, loc.column)


# (id, files overriding the minimal project, expected (code, file, line, column))
CASES = [
    (
        "yaml-syntax",
        {"datasources/events.yaml": "columns: [\n  {name: a\n"},
        ("RTP101", "datasources/events.yaml", 3, 1),
    ),
    (
        "unknown-key",
        {"datasources/events.yaml": EVENTS_OK + "colums: []\n"},
        ("RTP102", "datasources/events.yaml", 7, 1),
    ),
    (
        "missing-key",
        {"datasources/events.yaml": "columns:\n  - {name: a}\n"},
        ("RTP103", "datasources/events.yaml", 2, 5),
    ),
    (
        "wrong-value-type",
        {"datasources/events.yaml": "columns: 3\n"},
        ("RTP104", "datasources/events.yaml", 1, 10),
    ),
    (
        "duplicate-column",
        {"datasources/events.yaml": EVENTS_OK.replace("- {name: price,", "- {name: user_id,")},
        ("RTP105", "datasources/events.yaml", 5, 12),
    ),
    ("duplicate-yaml-key", {"rtp.yaml": "name: a\nname: b\n"}, ("RTP105", "rtp.yaml", 2, 1)),
    (
        "invalid-name",
        {"pipes/bad-name.yaml": "nodes: []\n"},
        ("RTP106", "pipes/bad-name.yaml", 0, 0),
    ),
    (
        "invalid-pipe-type",
        {
            "pipes/by_user.yaml": None,
            "pipes/p.yaml": """
        type: endpoit
        nodes:
          - {name: a, sql: SELECT 1}
     """,
        },
        ("RTP107", "pipes/p.yaml", 1, 7),
    ),
    (
        "invalid-type",
        {"datasources/events.yaml": EVENTS_OK.replace("Float64", "Flot64")},
        ("RTP200", "datasources/events.yaml", 5, 25),
    ),
    (
        "unknown-engine",
        {"datasources/events.yaml": EVENTS_OK + "engine: MergeTre\n"},
        ("RTP201", "datasources/events.yaml", 7, 9),
    ),
    (
        "bad-engine-option",
        {
            "datasources/events.yaml": EVENTS_OK
            + "engine: {type: ReplacingMergeTree, version: price}\n"
        },
        ("RTP202", "datasources/events.yaml", 7, 36),
    ),
    (
        "engine-option-unknown-column",
        {"datasources/events.yaml": EVENTS_OK + "engine: {type: ReplacingMergeTree, ver: nope}\n"},
        ("RTP202", "datasources/events.yaml", 7, 9),
    ),
    (
        "bad-sorting-key",
        {
            "datasources/events.yaml": EVENTS_OK.replace(
                "[user_id, timestamp]", "[user_id, timestmp]"
            )
        },
        ("RTP203", "datasources/events.yaml", 6, 24),
    ),
    (
        "bad-partition-key",
        {"datasources/events.yaml": EVENTS_OK + "partition_key: toYYYYMM(ts)\n"},
        ("RTP203", "datasources/events.yaml", 7, 16),
    ),
    (
        "bad-ttl",
        {"datasources/events.yaml": EVENTS_OK + "ttl: nope + INTERVAL 1 DAY\n"},
        ("RTP204", "datasources/events.yaml", 7, 6),
    ),
    (
        "bad-setting",
        {"datasources/events.yaml": EVENTS_OK + "settings: {index_granularit: 10}\n"},
        ("RTP204", "datasources/events.yaml", 7, 12),
    ),
    (
        "template-syntax",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT 1
              WHERE x = {{ String(x }}
     """
        },
        ("RTP300", "pipes/by_user.yaml", 5, 7),
    ),
    (
        "unknown-param-type",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT user_id FROM events
              WHERE user_id = {{ Strng(user) }}
     """
        },
        ("RTP301", "pipes/by_user.yaml", 5, 26),
    ),
    (
        "param-default-wrong-type",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: SELECT {{ Int32(limit, 'ten') }}
     """
        },
        ("RTP301", "pipes/by_user.yaml", 3, 26),
    ),
    (
        "unknown-table",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT user_id
              FROM evnts
     """
        },
        ("RTP302", "pipes/by_user.yaml", 5, 12),
    ),
    (
        "node-reads-later-node",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: SELECT * FROM b
          - name: b
            sql: SELECT 1 AS x
     """
        },
        ("RTP302", "pipes/by_user.yaml", 3, 24),
    ),
    (
        "cycle",
        {
            "pipes/p1.yaml": """
        nodes:
          - {name: a, sql: SELECT * FROM p2}
     """,
            "pipes/p2.yaml": """
        nodes:
          - {name: a, sql: SELECT * FROM p1}
     """,
        },
        ("RTP303", "pipes/p1.yaml", 2, 34),
    ),
    (
        "unknown-column",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT user_id, nope
              FROM events
     """
        },
        ("RTP304", "pipes/by_user.yaml", 4, 23),
    ),
    (
        "unknown-function",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT user_id FROM events
          - name: b
            sql: |
              SELECT countt() AS n
              FROM a
     """
        },
        ("RTP304", "pipes/by_user.yaml", 7, 14),
    ),
    (
        "type-mismatch",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT user_id FROM events WHERE user_id = 1
     """
        },
        ("RTP304", "pipes/by_user.yaml", 4, 7),
    ),
    (
        "syntax",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: |
              SELECT user_id
              FROM events WHERE
     """
        },
        ("RTP304", "pipes/by_user.yaml", 5, 24),
    ),
    (
        "mv-column-not-in-target",
        {
            "datasources/per_user.yaml": PER_USER["datasources/per_user.yaml"],
            "pipes/mv.yaml": """
            type: materialized
            target: per_user
            nodes:
              - name: a
                sql: SELECT user_id, count() AS n, 1 AS extra FROM events GROUP BY user_id
        """,
        },
        ("RTP305", "pipes/mv.yaml", 5, 45),
    ),
    (
        "mv-type-mismatch",
        {
            "datasources/per_user.yaml": """
            columns:
              - {name: user_id, type: String}
              - {name: n, type: "AggregateFunction(uniq, String)"}
            engine: AggregatingMergeTree
            sorting_key: [user_id]
        """,
            "pipes/mv.yaml": """
            type: materialized
            target: per_user
            nodes:
              - name: a
                sql: SELECT user_id, countState() AS n FROM events GROUP BY user_id
        """,
        },
        ("RTP305", "pipes/mv.yaml", 5, 42),
    ),
    (
        "not-a-select",
        {
            "pipes/by_user.yaml": """
        nodes:
          - name: a
            sql: INSERT INTO events (user_id) VALUES ('x')
     """
        },
        ("RTP306", "pipes/by_user.yaml", 3, 10),
    ),
]


@pytest.mark.parametrize("files,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_is_located(project_factory, files, expected):
    problems = problems_of(project_factory, files)
    errors = [where(p) for p in problems.errors]
    assert expected in errors, f"{expected} not in {errors}"


def test_every_problem_reported_at_once(project_factory):
    files = {}
    for _, case_files, _ in CASES[:12]:
        files.update({k: v for k, v in case_files.items() if k.startswith("pipes/")})
    files["datasources/events.yaml"] = EVENTS_OK + "colums: []\nengine: MergeTre\n"
    files["pipes/a.yaml"] = "nodes:\n  - {name: a, sql: SELECT nope FROM events}\n"
    files["pipes/b.yaml"] = "nodes:\n  - {name: a, sql: SELECT 1 FROM evnts}\n"
    problems = problems_of(project_factory, files)
    codes = {p.code for p in problems.errors}
    assert {"RTP102", "RTP106", "RTP107", "RTP201", "RTP302", "RTP304"} <= codes
    assert {p.location.file for p in problems.errors} >= {
        "datasources/events.yaml",
        "pipes/a.yaml",
        "pipes/b.yaml",
        "pipes/bad-name.yaml",
    }


def test_clean_project_has_no_problems(project_factory):
    assert list(problems_of(project_factory, {})) == []


def test_missing_target_column_is_a_warning_not_error(project_factory):
    problems = problems_of(
        project_factory,
        {
            **PER_USER,
            "datasources/per_user.yaml": PER_USER["datasources/per_user.yaml"].replace(
                "type: UInt64}", "type: UInt64}\n          - {name: note, type: String}"
            ),
        },
    )
    assert problems.errors == []
    assert [(p.code, p.severity, p.location.line) for p in problems] == [("RTP305", "warning", 4)]


def test_check_json_output(project_factory, cli):
    root = project_factory({"pipes/bad.yaml": "nodes:\n  - {name: a, sql: SELECT 1 FROM nope}\n"})
    result = cli("check", "-p", root, "--format", "json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["ok"] is False
    assert body["summary"]["errors"] == 1
    [problem] = body["problems"]
    assert problem["code"] == "RTP302"
    assert (problem["file"], problem["line"], problem["column"]) == ("pipes/bad.yaml", 2, 34)


def test_check_text_output_underlines_the_span(project_factory, cli):
    root = project_factory({"pipes/bad.yaml": "nodes:\n  - {name: a, sql: SELECT 1 FROM nope}\n"})
    result = cli("check", "-p", root)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("pipes/bad.yaml:2:34:"))
    assert "RTP302" in lines[i]
    assert lines[i + 1].endswith("  - {name: a, sql: SELECT 1 FROM nope}")
    # the caret line puts ^^^^ under "nope"
    src, carets = lines[i + 1], lines[i + 2]
    start = carets.index("^")
    assert src[start : start + 4] == "nope" and carets.count("^") == 4


def test_no_project_is_a_usage_error(tmp_path, cli):
    result = cli("check", "-p", tmp_path)
    assert result.exit_code == 2
    assert "RTP100" in result.stderr


def test_problems_collection_sorts_by_place():
    p = Problems()
    assert len(p) == 0 and p.sorted() == []
