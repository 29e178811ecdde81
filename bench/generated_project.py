"""Write a synthetic project of N pipes (benchmarks of tooling cost: check, deploy, test).

A quarter of the pipes are materialized views into their own targets; the rest are
two-node endpoints with typed parameters, some reading the materialized targets.
"""

from __future__ import annotations

from pathlib import Path

EVENTS = """\
columns:
  - {name: timestamp, type: DateTime64(3)}
  - {name: user_id, type: String}
  - {name: session_id, type: String}
  - {name: product_id, type: String}
  - {name: category, type: LowCardinality(String)}
  - {name: event_type, type: LowCardinality(String)}
  - {name: price, type: Nullable(Float64)}
sorting_key: [user_id, timestamp]
partition_key: toYYYYMM(timestamp)
"""

TARGET = """\
columns:
  - {name: product_id, type: String}
  - {name: views, type: "AggregateFunction(count)"}
  - {name: buyers, type: "AggregateFunction(uniq, String)"}
engine: AggregatingMergeTree
sorting_key: [product_id]
"""

MV = """\
type: materialized
target: agg_{i}
nodes:
  - name: per_product
    sql: |
      SELECT product_id, countState() AS views, uniqState(user_id) AS buyers
      FROM events
      WHERE category = 'c{i}'
      GROUP BY product_id
"""

ENDPOINT = """\
nodes:
  - name: filtered
    sql: |
      SELECT product_id, price, timestamp FROM events
      WHERE user_id = {{{{ String(user_id, 'u1', description="Shopper") }}}}
        AND timestamp >= now() - INTERVAL {{{{ Int32(days, 7, min=1, max=365) }}}} DAY
  - name: ranked
    sql: |
      SELECT f.product_id, count() AS n, max(f.timestamp) AS last_seen{extra_cols}
      FROM filtered AS f{join}
      GROUP BY f.product_id{extra_group}
      ORDER BY n DESC
      LIMIT {{{{ Int32(limit, 10, min=1, max=100) }}}}
"""


def write_project(root: Path, pipes: int) -> Path:
    """A valid project with ``pipes`` pipes under ``root``."""
    (root / "datasources").mkdir(parents=True, exist_ok=True)
    (root / "pipes").mkdir(exist_ok=True)
    (root / "rtp.yaml").write_text(f"name: generated_{pipes}\n")
    (root / "datasources" / "events.yaml").write_text(EVENTS)
    mvs = pipes // 4
    for i in range(mvs):
        (root / "datasources" / f"agg_{i}.yaml").write_text(TARGET)
        (root / "pipes" / f"mv_{i}.yaml").write_text(MV.format(i=i))
    for i in range(pipes - mvs):
        if mvs and i % 2:
            j = i % mvs
            text = ENDPOINT.format(
                extra_cols=", countMerge(a.views) AS views",
                join=f"\n      JOIN agg_{j} AS a ON a.product_id = f.product_id",
                extra_group="",
            )
        else:
            text = ENDPOINT.format(extra_cols="", join="", extra_group="")
        (root / "pipes" / f"endpoint_{i}.yaml").write_text(text)
    return root
