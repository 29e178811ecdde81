"""`rtp dev`'s pieces: fixtures for an empty engine, and redeploy-on-change."""

from __future__ import annotations

import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rtp.server.dev import Reloader, is_empty, snapshot
from rtp.sql.ddl import create_table
from rtp.testing.fixtures import load_fixtures

pytestmark = pytest.mark.anyio


def create_missing_tables(project, backend):
    """Stands in for rtp.deploy.deploy in these tests: tables that don't exist yet."""
    for ds in project.datasources.values():
        backend.execute(create_table(ds, if_not_exists=True))


async def test_fixtures_load_ndjson_csv_and_parquet(serve):
    products = """
        columns:
          - {name: id, type: String}
          - {name: price, type: Nullable(Float64)}
          - {name: stock, type: UInt32, default: '0'}
        sorting_key: [id]
    """
    reviews = """
        columns:
          - {name: product_id, type: String}
          - {name: stars, type: UInt8}
        sorting_key: [product_id]
    """
    s = serve(
        {
            "datasources/products.yaml": products,
            "datasources/reviews.yaml": reviews,
            "fixtures/events.ndjson": "\n".join(
                [
                    json.dumps(
                        {
                            "timestamp": "2030-01-01 00:00:00",
                            "user_id": "u1",
                            "product": {"id": "p1", "price": 1.5},
                        }
                    ),
                    json.dumps({"user_id": "no timestamp"}),
                ]
            ),
            "fixtures/products.csv": "price,id,stock\n2.5,p1,3\n,p2,\nabc,p3,1\n",
        },
        seed=False,
    )
    table = pa.table({"product_id": ["p1", "p2"], "stars": pa.array([5, 3], pa.uint8())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    (s.root / "fixtures" / "reviews.parquet").write_bytes(sink.getvalue())
    assert is_empty(s.state.project, s.engine)
    loaded = load_fixtures(s.state.project, s.engine, quarantine=True)
    assert loaded == {"events": (1, 1), "products": (2, 1), "reviews": (2, 0)}
    assert not is_empty(s.state.project, s.engine)
    assert s.rows("SELECT product_id, price FROM events") == [["p1", 1.5]]
    assert s.rows("SELECT id, price, stock FROM products ORDER BY id") == [
        ["p1", 2.5, 3],
        ["p2", None, 0],
    ]
    assert s.rows("SELECT error FROM products_quarantine") == [
        ["column 'price' ($.price): expected a number, got \"abc\""]
    ]
    assert s.rows("SELECT product_id, stars FROM reviews ORDER BY product_id") == [
        ["p1", 5],
        ["p2", 3],
    ]


def touch(path, text):
    path.write_text(text)
    stamp = path.stat().st_mtime_ns + 10_000_000
    os.utime(path, ns=(stamp, stamp))


async def test_reloader_serves_edits_and_survives_broken_files(serve):
    s = serve()
    said, reported = [], []
    reloader = Reloader(s.root, s.state, said.append, reported.append)
    assert reloader.poll() is None
    params = {"user_id": "u1", "token": s.admin}
    before = (await s.client.get("/v0/pipes/recs.json", params=params)).json()
    assert before["rows"] == 2
    # a new endpoint and a new datasource appear after an edit
    touch(
        s.root / "pipes" / "count.yaml",
        "nodes:\n  - name: c\n    sql: SELECT count() AS n "
        "FROM events WHERE user_id = {{ String(user_id, 'u1') }}\n",
    )
    touch(s.root / "datasources" / "extra.yaml", "columns:\n  - {name: a, type: String}\n")
    assert reloader.poll() is True
    assert said[-1] == "redeployed: 2 datasources, 2 endpoints"
    r = await s.client.get("/v0/pipes/count.json", params=params)
    assert r.json()["data"] == [{"n": 3}]
    assert s.rows("EXISTS TABLE extra") == [[1]]
    # a broken file: the problem is reported, the previous version keeps answering
    touch(s.root / "pipes" / "count.yaml", "nodes:\n  - name: c\n    sql: SELECT {{ nope( }}\n")
    assert reloader.poll() is False
    assert reported and reported[0].code == "RTP300"
    assert reported[0].location.file == "pipes/count.yaml"
    assert said[-1] == "1 error(s); still serving the previous version"
    r = await s.client.get("/v0/pipes/count.json", params=params)
    assert r.json()["data"] == [{"n": 3}]
    # fixed again
    touch(s.root / "pipes" / "count.yaml", "nodes:\n  - name: c\n    sql: SELECT 7 AS n\n")
    assert reloader.poll() is True
    r = await s.client.get("/v0/pipes/count.json", params=params)
    assert r.json()["data"] == [{"n": 7}]
    assert reloader.reloads == 2


def test_snapshot_sees_added_changed_and_removed_files(project_factory):
    root = project_factory()
    first = snapshot(root)
    assert {p.split(str(root))[1] for p in first} == {
        "/rtp.yaml",
        "/datasources/events.yaml",
        "/pipes/by_user.yaml",
    }
    touch(root / "pipes" / "by_user.yaml", (root / "pipes" / "by_user.yaml").read_text())
    assert snapshot(root) != first
    (root / "pipes" / "by_user.yaml").unlink()
    assert len(snapshot(root)) == 2
