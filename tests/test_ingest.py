"""Rows into datasources: JSON paths, quarantine, and `rtp append` for each format."""

from __future__ import annotations

import json

import pytest
from deploy_helpers import SHOP, drop, memory_backend, scalar

from rtp.deploy import deploy
from rtp.ingest import RowMapper, insert_rows, parse_path, quarantine_table
from rtp.project import load_project


@pytest.fixture
def shop(project_factory):
    model, problems = load_project(project_factory(SHOP, base=None))
    assert not problems.errors
    return model


@pytest.fixture
def backend():
    b = memory_backend()
    yield b
    drop(b)


def test_json_paths_reach_nested_values(shop):
    assert parse_path("$.a.b[0]") == ("a", "b", 0)
    assert parse_path("$['d e'].c") == ("d e", "c")
    mapper = RowMapper(shop.datasources["events"])
    event = {
        "timestamp": "2030-01-01 10:00:00",
        "user_id": "u1",
        "product": {"id": "p1", "price": 2.5},
    }
    assert mapper.map(event) == {
        "timestamp": "2030-01-01 10:00:00",
        "user_id": "u1",
        "product_id": "p1",
        "price": 2.5,
    }


def test_flat_records_by_name_and_back_to_events(shop):
    # CSV and Parquet: by column name, or by JSON path when the record nests the value
    mapper = RowMapper(shop.datasources["events"], by_name=True)
    flat = {"timestamp": "2030-01-01 10:00:00", "user_id": "u1", "product_id": "p1", "price": 2.5}
    nested = {
        "timestamp": "2030-01-01 10:00:00",
        "user_id": "u1",
        "product": {"id": "p1", "price": 2.5},
    }
    assert (
        mapper.map(flat)
        == mapper.map(nested)
        == {"timestamp": "2030-01-01 10:00:00", "user_id": "u1", "product_id": "p1", "price": 2.5}
    )
    # what `rtp append` sends a server: the JSON event the server's mapper reads the same
    event = mapper.to_event(flat)
    assert event == {
        "timestamp": "2030-01-01 10:00:00",
        "user_id": "u1",
        "product": {"id": "p1", "price": 2.5},
    }
    assert RowMapper(shop.datasources["events"]).map(event) == mapper.map(flat)


def test_bad_rows_go_to_quarantine_with_the_reason(shop, backend):
    deploy(shop, backend)
    rows = [
        {
            "timestamp": "2030-01-01 10:00:00",
            "user_id": "u1",
            "product": {"id": "p1", "price": 2.5},
        },
        '{"timestamp": "2030-01-01 10:00:01", "user_id": "u2", "product": {"id": "p2"}}',
        '{"timestamp": "yesterday", "user_id": "u3"}',
        "{not json",
        '{"timestamp": "2030-01-01 10:00:02", "user_id": "u4", "product": {"price": "cheap"}}',
    ]
    assert insert_rows(backend, shop.datasources["events"], rows) == (1, 4)
    assert backend.query("SELECT user_id, product_id, price FROM events ORDER BY user_id")[1] == [
        ["u1", "p1", 2.5]
    ]
    _, bad = backend.query(f"SELECT error, raw FROM {quarantine_table('events')} ORDER BY raw")
    assert [r[1] for r in bad] == [rows[1], rows[4], rows[2], rows[3]]
    # a missing value of a column that is neither Nullable nor has a default is refused:
    # a silent 0 would hide a broken producer
    assert bad[0][0] == (
        "column 'price' ($.product.price): missing, and the column is not Nullable"
    )
    assert (
        bad[1][0] == "column 'product_id' ($.product.id): missing, and the column is not Nullable"
    )
    assert bad[2][0] == "column 'timestamp' ($.timestamp): expected a date-time, got \"yesterday\""
    assert bad[3][0].startswith("not JSON")
    # the materialized view saw only the good rows
    assert scalar(backend, "SELECT sum(n) FROM spend") == 1


def test_many_rows_with_one_bad_one(shop, backend):
    deploy(shop, backend)
    rows = [
        {"timestamp": "2030-01-01 10:00:00", "user_id": f"u{i}", "product": {"id": "p", "price": i}}
        for i in range(1000)
    ]
    rows[617]["timestamp"] = "never"
    assert insert_rows(backend, shop.datasources["events"], rows) == (999, 1)
    assert scalar(backend, "SELECT count() FROM events") == 999
    assert json.loads(scalar(backend, "SELECT raw FROM events_quarantine"))["user_id"] == "u617"


def test_append_through_a_server_splits_big_files():
    from rtp.cli.remote import _chunks

    lines = ["x" * 99] * 25  # 100 bytes each with the newline
    assert [len(c) for c in _chunks(lines, 1000)] == [10, 10, 5]
    assert [len(c) for c in _chunks(["y" * 5000, "z"], 1000)] == [1, 1]


@pytest.mark.parametrize(
    ("columns", "engine_checked"),
    [
        ("- {name: a, type: String}\n- {name: n, type: 'Nullable(UInt8)', default: '1'}", True),
        ("- {name: a, type: String, json: '$.x.y[0]'}", True),
        ("- {name: a, type: 'Array(String)'}", False),
        ("- {name: a, type: 'Decimal(10, 2)'}", False),
        ("- {name: a, type: String, json: '$.odd-key'}", False),
        ("- {name: a, type: String}\n- {name: b, type: String, default: 'upper(a)'}", False),
    ],
)
def test_which_datasources_the_engine_checks(project_factory, columns, engine_checked):
    """Types and paths without an engine check keep the Python checks (docs/ingest.md)."""
    from rtp.ingest.typed import TypedInsert

    files = {
        "rtp.yaml": "name: t\n",
        "datasources/d.yaml": "columns:\n"
        + "".join(f"  {line}\n" for line in columns.splitlines())
        + "sorting_key: [a]\n",
    }
    model, problems = load_project(project_factory(files, base=None))
    assert not problems.errors, [str(p) for p in problems.errors]
    assert (TypedInsert.build(model.datasources["d"]) is not None) is engine_checked
