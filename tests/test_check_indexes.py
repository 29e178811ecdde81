"""`rtp check --strict` reports endpoint nodes that read a table without its primary key
(RTP311), through the CLI; plain `rtp check` does not."""

from __future__ import annotations

import json

FILES = {
    "datasources/events.yaml": """
        columns:
          - {name: product_id, type: String}
          - {name: user_id, type: String}
          - {name: n, type: UInt32}
        sorting_key: [product_id, user_id]
    """,
    "pipes/by_user.yaml": """
        nodes:
          - name: scans
            sql: |
              SELECT product_id, count() AS c
              FROM events WHERE user_id = {{ String(user_id, 'u1') }} GROUP BY product_id
          - name: keyed
            sql: |
              SELECT product_id, c FROM scans
              WHERE product_id IN (SELECT product_id FROM events WHERE product_id = 'p1')
    """,
    "datasources/products.yaml": """
        columns:
          - {name: product_id, type: String}
          - {name: v, type: UInt64}
        engine: {type: ReplacingMergeTree, ver: v}
        sorting_key: [product_id]
    """,
    "pipes/product.yaml": """
        nodes:
          - name: one
            sql: |
              SELECT * FROM products FINAL WHERE product_id = {{ String(id, required=True) }}
    """,
    "pipes/top.yaml": """
        nodes:
          - name: totals
            cache: {ttl: 60}
            sql: SELECT product_id, sum(n) AS total FROM events GROUP BY product_id
          - name: out
            sql: SELECT * FROM totals WHERE total > {{ UInt32(min, 0) }}
    """,
}


def test_strict_reports_nodes_reading_without_the_primary_key(project_factory, cli):
    root = project_factory(FILES)
    plain = cli("check", "-p", root, "--format", "json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["problems"] == []
    strict = cli("check", "-p", root, "--format", "json", "--strict")
    assert strict.exit_code == 1, strict.output
    problems = json.loads(strict.output)["problems"]
    # the cached node scans too, but once per ttl; `keyed` reads events by its key, and
    # a point lookup without a sample value still has its key condition
    assert [(p["code"], p["file"], p["line"], p["column"]) for p in problems] == [
        ("RTP311", "pipes/by_user.yaml", 5, 12)
    ], problems
    assert problems[0]["severity"] == "warning"
    assert "'scans' reads 'events' with no condition on its primary key" in problems[0]["message"]
