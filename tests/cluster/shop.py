"""The project the cluster tests deploy: types 18.16 has, a sharding key, a view into
an AggregatingMergeTree target (states merged across shards), endpoints with several
nodes, and rows with integer amounts (exact sums on any number of shards)."""

from __future__ import annotations

import json
from pathlib import Path

FILES = {
    "rtp.yaml": "name: shop\n",
    "datasources/events.yaml": """
        columns:
          - {name: id, type: UInt64}
          - {name: timestamp, type: DateTime}
          - {name: user_id, type: String}
          - {name: product_id, type: LowCardinality(String)}
          - {name: category, type: String}
          - {name: price, type: UInt32}
        sorting_key: [user_id, id]
        shard_key: cityHash64(user_id)
    """,
    "datasources/per_user.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: n, type: "AggregateFunction(count)"}
          - {name: spent, type: "AggregateFunction(sum, UInt32)"}
          - {name: categories, type: "AggregateFunction(uniqExact, String)"}
        engine: AggregatingMergeTree
        sorting_key: [user_id]
    """,
    "pipes/per_user_mv.yaml": """
        type: materialized
        target: per_user
        nodes:
          - name: agg
            sql: |
              SELECT user_id, countState() AS n, sumState(price) AS spent,
                     uniqExactState(category) AS categories
              FROM events GROUP BY user_id
    """,
    "pipes/by_user.yaml": """
        nodes:
          - name: mine
            sql: |
              SELECT product_id, price FROM events
              WHERE user_id = {{ String(user_id, 'u1', required=True) }}
          - name: top
            sql: |
              SELECT product_id, sum(price) AS spent, count() AS n FROM mine
              GROUP BY product_id ORDER BY spent DESC, product_id
              LIMIT {{ Int32(limit, 5, min=1, max=100) }}
    """,
    "pipes/user_stats.yaml": """
        nodes:
          - name: merged
            sql: |
              SELECT user_id, countMerge(n) AS n, sumMerge(spent) AS spent,
                     uniqExactMerge(categories) AS categories
              FROM per_user GROUP BY user_id
          - name: ranked
            sql: SELECT * FROM merged ORDER BY spent DESC, user_id
    """,
    "datasources/top_users.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: spent, type: UInt64}
        sorting_key: [user_id]
    """,
    "pipes/top_users_copy.yaml": """
        type: copy
        target: top_users
        mode: replace
        nodes:
          - name: top
            sql: |
              SELECT user_id, sum(price) AS spent FROM events
              GROUP BY user_id ORDER BY spent DESC LIMIT 10
    """,
    "pipes/buyers_of.yaml": """
        nodes:
          - name: buyers
            sql: |
              SELECT user_id, count() AS n FROM events
              WHERE user_id IN (
                SELECT user_id FROM events
                WHERE product_id = {{ String(product, 'p1') }} AND price > 90)
              GROUP BY user_id ORDER BY user_id
    """,
    "pipes/spend_by_product.yaml": """
        nodes:
          - name: spend
            sql: SELECT user_id, sum(price) AS spent FROM events GROUP BY user_id
          - name: joined
            sql: |
              SELECT e.product_id AS product_id, count() AS n, max(s.spent) AS top_spent
              FROM events AS e ALL INNER JOIN spend AS s USING user_id
              GROUP BY product_id ORDER BY product_id
    """,
}


def rows(count: int, start: int = 0) -> list[dict]:
    """``count`` events with ids ``start`` .. ``start + count - 1``."""
    return [
        {
            "id": i,
            "timestamp": f"2030-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
            "user_id": f"u{i % 37}",
            "product_id": f"p{i % 11}",
            "category": f"c{i % 5}",
            "price": i % 97,
        }
        for i in range(start, start + count)
    ]


def ndjson(items: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in items)


def write_rows(root: Path, items: list[dict]) -> Path:
    path = root / "rows.ndjson"
    path.write_text(ndjson(items))
    return path
