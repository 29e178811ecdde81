"""Plan actions and kinds are Enums that read as their text: rendered plans, the
journal's plan row and the deploy state hold the same words as before."""

from __future__ import annotations

import json

from rtp.deploy.journal import changes_from_json, changes_to_json
from rtp.deploy.plan import Action, Change, Kind, Plan
from rtp.deploy.state import Record
from rtp.sql.ddl import PARTS, TABLE_PARTS


def test_words_render_and_serialize_as_text():
    change = Change(Action.NO_OP, Kind.VIEW, "v", record=Record("v", Kind.VIEW, "h", {}))
    assert change.describe() == "= no-op view v"
    assert f"{Action.REBUILD} {Kind.TABLE}" == "rebuild table"
    assert {c.action for c in [change]} == {"no-op"}  # equal and hashed as the text
    rows = changes_to_json([change])
    assert json.loads(json.dumps(rows))[0]["action"] == "no-op"
    assert rows[0]["kind"] == "view" and rows[0]["record"]["kind"] == "view"
    back = changes_from_json(json.loads(json.dumps(rows)))[0]
    assert back.action is Action.NO_OP and back.kind is Kind.VIEW
    plan = Plan("embedded:default", [Change(Action.CREATE, Kind.TABLE, "t", "new", ["X"])])
    assert plan.render().splitlines()[1:] == ["  + create table t: new", "1 create."]


def test_one_description_of_table_parts():
    # every part the plan compares, rtp check diagnoses and CREATE TABLE writes
    assert [p.field for p in TABLE_PARTS] == [
        "engine",
        "sorting_key",
        "primary_key",
        "partition_key",
        "ttl",
        "settings",
        "indexes",
    ]
    assert {p.spec_key for p in TABLE_PARTS} == {"engine", "keys", "ttl", "settings", "indexes"}
    assert PARTS["ttl"].change == "alter" and PARTS["sorting_key"].change == "rebuild"
