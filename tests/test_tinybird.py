"""Tinybird datafiles (.datasource, .pipe) load into the same model and pass check."""

from __future__ import annotations

from rtp.errors import Problems
from rtp.project.load import load_project
from rtp.sql.rules import check_project

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
    root = project_factory({"datasources/events.datasource": EVENTS,
                            "datasources/products.datasource": PRODUCTS,
                            "pipes/top.pipe": TOP}, base={"rtp.yaml": "name: tb\n"})
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
    root = project_factory({
        "datasources/events.datasource": EVENTS.replace("`price` Float64", "`price` Flot64"),
        "pipes/top.pipe": TOP.replace("FROM filtered GROUP", "FROM filterd GROUP"),
    }, base={"rtp.yaml": "name: tb\n"})
    model, problems = load_project(root)
    check_project(model, problems)
    found = {(p.code, p.location.file, p.location.line, p.location.column) for p in problems}
    assert ("RTP200", "datasources/events.datasource", 8, 13) in found
    assert ("RTP302", "pipes/top.pipe", 15, 10) in found


def test_unknown_directive(project_factory):
    # a block ends at the next known keyword at column 0; TYPO is then read as a directive
    root = project_factory({"pipes/top.pipe": "NODE a\nSQL >\n    SELECT 1\nTYPE endpoint\n"
                                              "TYPO x\n"}, base={"rtp.yaml": "name: tb\n"})
    _, problems = load_project(root)
    [problem] = list(problems)
    assert (problem.code, problem.location.line) == ("RTP102", 5)
    assert problem.hint == "did you mean 'TYPE'?"
