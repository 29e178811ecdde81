"""Rows into datasources: JSON paths, quarantine, and `rtp append` for each format."""

from __future__ import annotations

import json

import pytest
from deploy_helpers import SHOP, drop, memory_backend, scalar

from rtp.deploy import deploy
from rtp.deploy.ingest import extract, insert_rows, quarantine_table
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


def test_extract_follows_json_paths():
    row = {"a": {"b": [10, {"c": "x"}]}, "d e": 1}
    assert extract(row, "$.a.b[0]") == 10
    assert extract(row, "$.a.b[1].c") == "x"
    assert extract(row, "$['d e']") == 1
    assert extract(row, "$.a.zzz") is not None and extract(row, "$.a.zzz") is extract(row, "$.q")


def test_bad_rows_go_to_quarantine_with_the_reason(shop, backend):
    deploy(shop, backend)
    rows = [
        {"timestamp": "2030-01-01 10:00:00", "user_id": "u1",
         "product": {"id": "p1", "price": 2.5}},
        '{"timestamp": "2030-01-01 10:00:01", "user_id": "u2", "product": {"id": "p2"}}',
        '{"timestamp": "yesterday", "user_id": "u3"}',
        "{not json",
        '{"timestamp": "2030-01-01 10:00:02", "user_id": "u4", "product": {"price": "cheap"}}',
    ]
    assert insert_rows(backend, shop.datasources["events"], rows) == (2, 3)
    assert backend.query("SELECT user_id, product_id, price FROM events ORDER BY user_id")[1] \
        == [["u1", "p1", 2.5], ["u2", "p2", 0]]
    _, bad = backend.query(f"SELECT error, raw FROM {quarantine_table('events')} ORDER BY raw")
    assert [r[1] for r in bad] == ['{"timestamp": "2030-01-01 10:00:02", "user_id": "u4", '
                                   '"product": {"price": "cheap"}}',
                                   '{"timestamp": "yesterday", "user_id": "u3"}', "{not json"]
    assert "Float64" in bad[0][0] or "price" in bad[0][0]
    assert "DateTime" in bad[1][0]
    assert bad[2][0].startswith("invalid JSON")
    # the materialized view saw only the good rows
    assert scalar(backend, "SELECT sum(n) FROM spend") == 2


def test_many_rows_with_one_bad_one(shop, backend):
    deploy(shop, backend)
    rows = [{"timestamp": "2030-01-01 10:00:00", "user_id": f"u{i}",
             "product": {"id": "p", "price": i}} for i in range(1000)]
    rows[617]["timestamp"] = "never"
    assert insert_rows(backend, shop.datasources["events"], rows) == (999, 1)
    assert scalar(backend, "SELECT count() FROM events") == 999
    assert json.loads(scalar(backend, "SELECT raw FROM events_quarantine"))["user_id"] == "u617"
