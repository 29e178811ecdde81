"""Schemathesis against a real `rtp serve`: every endpoint operation of the OpenAPI spec
the server publishes, fed values generated from that spec (and from outside it), must
answer without a 5xx and with a body that fits the spec.

A small project with many typed parameters (integers with bounds, floats, booleans,
dates, date-times, arrays, an enum, a required value, sql_and) and real rows. The run is
deterministic (derandomized) and bounded: 20 cases per operation, ~35 s in all on the
shared 2-core machine. ``RTP_FUZZ_EXAMPLES=500`` digs deeper.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from tests.serving import rtp_serve

ROOT = Path(__file__).resolve().parents[2]
EVENTS = """
    columns:
      - {name: timestamp, type: DateTime}
      - {name: user_id, type: String}
      - {name: product_id, type: String}
      - {name: category, type: String}
      - {name: price, type: Float64}
      - {name: qty, type: UInt8}
    sorting_key: [user_id, timestamp]
"""
SEARCH = """
    description: Events filtered every way a caller can
    nodes:
      - name: search
        sql: |
          SELECT product_id, category, price, qty, timestamp FROM events
          WHERE {{ sql_and(product_id__in=Array(products, 'String', description="Products"),
                           qty__in=Array(qtys, 'UInt8'),
                           price__gte=Float64(min_price, description="Lowest price"),
                           price__lt=Float32(max_price),
                           timestamp__gte=DateTime(since, example='2030-01-01 00:00:00'),
                           timestamp__lt=DateTime64(until)) }}
            AND toDate(timestamp) >= {{ Date(day, '2000-01-01') }}
            {% if Boolean(cheap_first, False) %} AND price < 100 {% endif %}
          ORDER BY {{ column(sort, 'timestamp') }}, product_id
          LIMIT {{ Int32(limit, 10, min=1, max=100) }}
"""
BY_CATEGORY = """
    nodes:
      - name: by_category
        sql: |
          SELECT category, count() AS n, sum(price * qty) AS revenue FROM events
          WHERE category = {{ String(category, 'shoes', enum=['shoes', 'hats', 'bags']) }}
            AND user_id = {{ String(user_id, required=True, example='u1') }}
            AND qty >= {{ UInt8(min_qty, 0) }}
            AND price <= {{ Int64(cap, 1000000, min=0) }}
          GROUP BY category
"""
ROWS = [
    ("2030-01-01 10:00:00", "u1", "p1", "shoes", 10.0, 1),
    ("2030-01-01 10:00:01", "u1", "p2", "hats", 25.5, 2),
    ("2030-01-02 10:00:02", "u1", "p1", "shoes", 10.0, 1),
    ("2030-01-03 10:00:03", "u2", "p3", "bags", 99.0, 3),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `rtp serve` process on a free port; yields (base url, ADMIN token)."""
    root = tmp_path_factory.mktemp("fuzz")
    files = {
        "rtp.yaml": "name: fuzz\n",
        "datasources/events.yaml": EVENTS,
        "pipes/search.yaml": SEARCH,
        "pipes/by_category.yaml": BY_CATEGORY,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    values = ", ".join(f"('{t}', '{u}', '{p}', '{c}', {x}, {q})" for t, u, p, c, x, q in ROWS)
    setup = textwrap.dedent(f"""
        from pathlib import Path
        from rtp.engine.embedded import EmbeddedBackend
        from rtp.sql.ddl import create_table
        from rtp.project.load import load_project
        model, _ = load_project(Path({str(root)!r}))
        (model.root / ".rtp/data").mkdir(parents=True, exist_ok=True)
        backend = EmbeddedBackend(str(model.root / ".rtp/data"))
        for ds in model.datasources.values():
            backend.execute(create_table(ds))
        backend.execute("INSERT INTO events VALUES {values}")
        backend.close()
    """)
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, timeout=120)
    with rtp_serve(root, env=env, timeout=60) as served:
        admin, base = served.admin, served.base
        yield base, admin


@pytest.fixture(scope="module")
def spec(server):
    base, admin = server
    r = httpx.get(
        f"{base}/v0/pipes/openapi.json", headers={"Authorization": f"Bearer {admin}"}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def api_schema(spec, server):
    base, admin = server
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(base_url=base, headers={"Authorization": f"Bearer {admin}"})
    return schema


def test_spec_covers_every_endpoint_and_format(spec):
    assert sorted(spec["paths"]) == sorted(
        f"/v0/pipes/{p}.{f}"
        for p in ("search", "by_category")
        for f in ("json", "csv", "ndjson", "parquet")
    )
    search = {p["name"]: p for p in spec["paths"]["/v0/pipes/search.json"]["get"]["parameters"]}
    assert search["limit"]["schema"]["minimum"] == 1
    assert search["products"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert (search["products"]["style"], search["products"]["explode"]) == ("form", False)
    assert search["since"]["schema"] == {"type": "string", "format": "date-time"}
    row = spec["paths"]["/v0/pipes/search.json"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["properties"]["data"]["items"]["properties"]
    assert row["timestamp"]["pattern"].startswith("^[0-9]{4}-")  # as ClickHouse writes it
    by_category = spec["paths"]["/v0/pipes/by_category.json"]["get"]["parameters"]
    assert {p["name"]: p["required"] for p in by_category}["user_id"] is True


schema = schemathesis.pytest.from_fixture("api_schema")
CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]


EXAMPLES = int(os.environ.get("RTP_FUZZ_EXAMPLES", "20"))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_fit_the_spec(case):
    response = case.call_and_validate(checks=CHECKS, timeout=30)
    if response.status_code == 200 and case.path.endswith(".json"):
        assert set(json.loads(response.content)) >= {"meta", "data", "rows"}
