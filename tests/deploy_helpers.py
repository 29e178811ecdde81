"""Helpers for the deploy tests: the SHOP project and its next version, a real in-memory
engine per test, statements recorded."""

from __future__ import annotations

import uuid

from rtp.engine.embedded import EmbeddedBackend

SHOP = {
    "rtp.yaml": "name: shop\n",
    "datasources/events.yaml": """
        columns:
          - {name: timestamp, type: DateTime}
          - {name: user_id, type: String}
          - {name: product_id, type: String, json: $.product.id}
          - {name: price, type: Float64, json: $.product.price}
        sorting_key: [user_id, timestamp]
    """,
    "datasources/spend.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: total, type: Float64}
          - {name: n, type: UInt64}
        engine: SummingMergeTree
        sorting_key: [user_id]
    """,
    "pipes/spend_mv.yaml": """
        nodes:
          - name: agg
            sql: SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id
        type: materialized
        target: spend
        populate: true
    """,
}
# an endpoint over SHOP's materialized view: u1's total spend and events
SPENT = """
    nodes:
      - name: q
        sql: |
          SELECT sum(total) AS total, sum(n) AS n FROM spend
          WHERE user_id = {{ String(user_id, 'u1') }}
"""
# SHOP's next version: a new column with a default and the view's query changed
SHOP_V2 = {
    "datasources/events.yaml": SHOP["datasources/events.yaml"].replace(
        "json: $.product.price}\n",
        "json: $.product.price}\n          - {name: country, type: String, default: \"'es'\"}\n",
    ),
    "pipes/spend_mv.yaml": SHOP["pipes/spend_mv.yaml"].replace(
        "sum(price) AS total", "sum(price) * 2 AS total"
    ),
}


class Recorder:
    """A real backend that records every statement that changes something (but the
    deploy journal's own rows, see rtp/deploy/journal.py)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.database = inner.database
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        if "_rtp_journal" not in sql:
            self.statements.append(sql)
        self.inner.execute(sql)

    def query(self, sql: str):
        return self.inner.query(sql)

    def insert_json(self, table: str, rows: list[dict]) -> None:
        if table != "_rtp_journal":
            self.statements.append(f"INSERT INTO {table} ({len(rows)} rows)")
        self.inner.insert_json(table, rows)

    def exclusive(self):
        return self.inner.exclusive()

    def version(self) -> str:
        return self.inner.version()

    def close(self) -> None:
        self.inner.close()


def memory_backend() -> Recorder:
    """A fresh database in the process's in-memory chDB (chDB is one engine per process)."""
    return Recorder(EmbeddedBackend(":memory:", database=f"t_{uuid.uuid4().hex[:12]}"))


def drop(backend) -> None:
    backend.inner.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
    backend.close()


def scalar(backend, sql: str):
    return backend.query(sql)[1][0][0]
