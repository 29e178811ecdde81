"""Tinybird datafiles (.datasource, .pipe) load into the same model and pass check."""

from __future__ import annotations

from rtp.check import check_project
from rtp.errors import Problems
from rtp.project.load import load_project

EVENTS = """\
DESCRIPTION >
    Shopper events

SCHEMA >
    `timestamp` DateTime64(3) `json:$.timestamp`,
    `user_id` String `json:$.user.id`,
    `product_id` String `json:$.product_id`,
    `price` Float64 `json:$.price` DEFAULT 0

ENGINE "MergeTree"
ENGINE_PARTITION_KEY "toYYYYMM(timestamp)"
ENGINE_SORTING_KEY "user_id, timestamp"
ENGINE_TTL "toDateTime(timestamp) + toIntervalDay(90)"
ENGINE_SETTINGS "index_granularity=8192"

INDEXES >
    idx_product product_id TYPE bloom_filter GRANULARITY 4

TOKEN "ingest" APPEND
"""

PRODUCTS = """\
SCHEMA >
    `product_id` String,
    `updated_at` DateTime

ENGINE "ReplacingMergeTree"
ENGINE_SORTING_KEY "product_id"
ENGINE_VER "updated_at"
"""

TOP = """\
DESCRIPTION >
    Top products of a user

NODE filtered
SQL >
    %
    SELECT product_id, price FROM events
    WHERE user_id = {{ String(user_id, 'u1') }}

NODE ranked
DESCRIPTION >
    Ranked by spend
SQL >
    SELECT product_id, sum(price) AS spent
    FROM filtered GROUP BY product_id ORDER BY spent DESC

TYPE endpoint
TOKEN "read" READ
"""


def test_datafiles_load_into_the_model(project_factory):
    root = project_factory(
        {
            "datasources/events.datasource": EVENTS,
            "datasources/products.datasource": PRODUCTS,
            "pipes/top.pipe": TOP,
        },
        base={"rtp.yaml": "name: tb\n"},
    )
    model, problems = load_project(root)
    assert list(problems) == []
    events = model.datasources["events"]
    assert [(c.name, c.type, c.json_path, c.default) for c in events.columns] == [
        ("timestamp", "DateTime64(3)", "$.timestamp", None),
        ("user_id", "String", "$.user.id", None),
        ("product_id", "String", "$.product_id", None),
        ("price", "Float64", "$.price", "0"),
    ]
    assert events.sorting_key == ("user_id", "timestamp")
    assert events.partition_key == "toYYYYMM(timestamp)"
    assert events.settings == (("index_granularity", 8192),)
    assert events.indexes[0].name == "idx_product" and events.indexes[0].granularity == 4
    assert model.datasources["products"].engine.option("ver") == "updated_at"
    top = model.pipes["top"]
    assert [n.name for n in top.nodes] == ["filtered", "ranked"]
    assert top.description == "Top products of a user"
    assert top.nodes[1].description == "Ranked by spend"
    check_project(model, problems := Problems())
    assert [str(p) for p in problems] == []


def test_datafile_errors_point_at_their_line(project_factory):
    root = project_factory(
        {
            "datasources/events.datasource": EVENTS.replace("`price` Float64", "`price` Flot64"),
            "pipes/top.pipe": TOP.replace("FROM filtered GROUP", "FROM filterd GROUP"),
        },
        base={"rtp.yaml": "name: tb\n"},
    )
    model, problems = load_project(root)
    check_project(model, problems)
    found = {(p.code, p.location.file, p.location.line, p.location.column) for p in problems}
    assert ("RTP200", "datasources/events.datasource", 8, 13) in found
    assert ("RTP302", "pipes/top.pipe", 15, 10) in found


def test_unknown_directive(project_factory):
    # a block ends at the next known keyword at column 0; TYPO is then read as a directive
    root = project_factory(
        {"pipes/top.pipe": "NODE a\nSQL >\n    SELECT 1\nTYPE endpoint\nTYPO x\n"},
        base={"rtp.yaml": "name: tb\n"},
    )
    _, problems = load_project(root)
    [problem] = list(problems)
    assert (problem.code, problem.location.line) == ("RTP102", 5)
    assert problem.hint == "did you mean 'TYPE'?"


# -- through `rtp check`, on Tinybird's own layouts ------------------------------------

import json  # noqa: E402

LANDING = """\
# comments at column 0 are skipped
SCHEMA >
    `timestamp` DateTime `json:$.timestamp`, -- when it happened
    `user_id` String `json:$.user.id`,
    # a commented-out column
    `tags` Array(String) `json:$.tags[:]` DEFAULT [],
    `price` Float64 `json:$.price` DEFAULT 0 -- in euros

ENGINE "MergeTree"
ENGINE_SORTING_KEY "user_id, timestamp"
TOKEN "ingest" APPEND
"""

BY_USER = """\
NODE spend
SQL >
%
SELECT user_id, sum(price) AS spent
FROM landing
WHERE user_id = {{ String(user_id, 'u1') }}
GROUP BY user_id

TYPE endpoint
TOKEN "public_read" READ
"""

DAILY_MV = """\
NODE daily
SQL >
    SELECT toDate(timestamp) AS day, count() AS events FROM landing GROUP BY day

TYPE materialized
DATASOURCE daily
"""

DAILY = """\
SCHEMA >
    `day` Date,
    `events` UInt64

ENGINE "SummingMergeTree"
ENGINE_SORTING_KEY "day"
"""

SNAPSHOT = """\
NODE snap
SQL >
    SELECT toDate(timestamp) AS day, count() AS events FROM landing GROUP BY day

TYPE copy
TARGET_DATASOURCE daily
COPY_SCHEDULE 0 * * * *
COPY_MODE replace
"""

HELPER = """\
NODE helper
SQL >
    SELECT user_id FROM landing
"""

FORWARD = {
    "tinyb": "{}\n",  # Tinybird Forward's project file: the project has no rtp.yaml
    "datasources/landing.datasource": LANDING,
    "datasources/daily.datasource": DAILY,
    "endpoints/by_user.pipe": BY_USER,
    "materializations/daily_mv.pipe": DAILY_MV,
    "copies/snapshot.pipe": SNAPSHOT,
    "pipes/nested/helper.pipe": HELPER,
}


def _check(cli, root):
    result = cli("check", "-p", root, "--format", "json")
    return result.exit_code, json.loads(result.output)


def test_forward_layout_without_rtp_yaml_is_read_everywhere(project_factory, cli):
    root = project_factory(FORWARD, base={})
    code, report = _check(cli, root)
    assert report["summary"]["datasources"] == 2
    assert report["summary"]["pipes"] == 4
    assert code == 0, report["problems"]
    [note] = [p for p in report["problems"] if p["code"] == "RTP100"]
    assert note["severity"] == "warning" and "named" in note["message"]
    model, _ = load_project(root)
    assert model.name == root.name.replace("-", "_") or model.name.startswith("_")
    # Forward: a pipe without TYPE is internal, not an endpoint
    assert model.pipes["helper"].type == "internal"
    assert [p.name for p in model.endpoints] == ["by_user"]
    copy = model.pipes["snapshot"]
    assert (copy.type, copy.target, copy.schedule, copy.mode) == (
        "copy",
        "daily",
        "0 * * * *",
        "replace",
    )
    assert (model.pipes["daily_mv"].type, model.pipes["daily_mv"].target) == (
        "materialized",
        "daily",
    )
    assert model.pipes["by_user"].tokens == (("public_read", "READ"),)
    assert model.datasources["landing"].tokens == (("ingest", "APPEND"),)


def test_schema_comments_and_array_paths(project_factory):
    root = project_factory(
        {"datasources/landing.datasource": LANDING}, base={"rtp.yaml": "name: tb\n"}
    )
    model, problems = load_project(root)
    landing = model.datasources["landing"]
    assert [(c.name, c.type, c.json_path, c.default) for c in landing.columns] == [
        ("timestamp", "DateTime", "$.timestamp", None),
        ("user_id", "String", "$.user.id", None),
        ("tags", "Array(String)", "$.tags", "[]"),
        ("price", "Float64", "$.price", "0"),
    ]


def test_array_element_paths_are_refused_at_their_column(project_factory, cli):
    bad = LANDING.replace("`json:$.tags[:]`", "`json:$.items[:].id`")
    root = project_factory({"datasources/landing.datasource": bad}, base={"rtp.yaml": "name: tb\n"})
    code, report = _check(cli, root)
    assert code == 1
    [p] = [p for p in report["problems"] if p["severity"] == "error"]
    assert (p["code"], p["file"], p["line"], p["column"]) == (
        "RTP107",
        "datasources/landing.datasource",
        6,
        32,
    )
    assert "every array element" in p["message"]


def test_sql_at_column_zero_keeps_file_positions(project_factory, cli):
    root = project_factory(
        {
            "datasources/landing.datasource": LANDING,
            "pipes/by_user.pipe": BY_USER.replace("FROM landing", "FROM landng"),
        },
        base={"rtp.yaml": "name: tb\n"},
    )
    code, report = _check(cli, root)
    assert code == 1
    [p] = [p for p in report["problems"] if p["severity"] == "error"]
    assert (p["code"], p["file"], p["line"], p["column"]) == ("RTP302", "pipes/by_user.pipe", 5, 6)


def test_include_with_variables(project_factory, cli):
    root = project_factory(
        {
            "datasources/landing.datasource": LANDING,
            "includes/spend.incl": "NODE spend\nSQL >\n    SELECT user_id FROM $SOURCE\n",
            "pipes/by_user.pipe": 'INCLUDE "../includes/spend.incl" "SOURCE=landing"\n\n'
            "TYPE endpoint\nVERSION 2\n",
        },
        base={"rtp.yaml": "name: tb\n"},
    )
    code, report = _check(cli, root)
    assert code == 0, report["problems"]
    model, _ = load_project(root)
    assert model.pipes["by_user"].nodes[0].sql.strip() == "SELECT user_id FROM landing"
    missing = project_factory(
        {"pipes/other.pipe": 'INCLUDE "nope.incl"\n'}, base={"rtp.yaml": "name: tb\n"}
    )
    code, report = _check(cli, missing)
    assert code == 1
    assert any(
        p["code"] == "RTP107" and p["file"] == "pipes/other.pipe" and p["line"] == 1
        for p in report["problems"]
    )


def test_unsupported_features_warn_by_name(project_factory, cli):
    # Kafka connections are read (tests/test_kafka_project.py); their headers option,
    # S3 connections and sinks are not
    root = project_factory(
        {
            "datasources/landing.datasource": LANDING + 'KAFKA_CONNECTION_NAME "kafka"\n'
            'KAFKA_TOPIC "events"\nKAFKA_STORE_HEADERS true\n',
            "connections/kafka.connection": 'TYPE kafka\nKAFKA_BOOTSTRAP_SERVERS "h:9092"\n',
            "connections/bucket.connection": 'TYPE s3\nS3_REGION "eu-west-1"\n',
            "sinks/export.pipe": 'NODE e\nSQL >\n    SELECT 1\n\nTYPE sink\nEXPORT_SERVICE "s3"\n',
        },
        base={"rtp.yaml": "name: tb\n"},
    )
    code, report = _check(cli, root)
    assert code == 0, report["problems"]
    warnings = {(p["file"], p["line"]): p["message"] for p in report["problems"]}
    assert "Kafka headers" in warnings[("datasources/landing.datasource", 14)]
    assert not [p for p in report["problems"] if p["file"] == "connections/kafka.connection"]
    [conn] = [p for p in report["problems"] if p["file"] == "connections/bucket.connection"]
    assert "S3 connections" in conn["message"] and conn["severity"] == "warning"
    assert "sink" in warnings[("sinks/export.pipe", 5)]


def test_a_project_with_nothing_to_check_says_so(project_factory, cli):
    root = project_factory({"notes/readme.txt": "hello\n"}, base={"rtp.yaml": "name: tb\n"})
    code, report = _check(cli, root)
    assert code == 1
    assert any("no datasources or pipes" in p["message"] for p in report["problems"])
