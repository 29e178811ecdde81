"""Shared fixtures: write projects into temp folders, run the CLI in-process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtp.cli.main import app

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = {
    "rtp.yaml": "name: shop\n",
    "datasources/events.yaml": """
        columns:
          - {name: timestamp, type: DateTime}
          - {name: user_id, type: String}
          - {name: product_id, type: String}
          - {name: price, type: Float64}
        sorting_key: [user_id, timestamp]
    """,
    "pipes/by_user.yaml": """
        nodes:
          - name: filtered
            sql: |
              SELECT product_id, price FROM events
              WHERE user_id = {{ String(user_id, 'u1', required=True) }}
          - name: top
            sql: |
              SELECT product_id, sum(price) AS spent FROM filtered
              GROUP BY product_id ORDER BY spent DESC
              LIMIT {{ Int32(limit, 10, min=1, max=100) }}
    """,
}


# A materialized view counting events per user into a SummingMergeTree target.
PER_USER = {
    "datasources/per_user.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: n, type: UInt64}
        engine: SummingMergeTree
        sorting_key: [user_id]
    """,
    "pipes/mv.yaml": """
        type: materialized
        target: per_user
        nodes:
          - {name: a, sql: "SELECT user_id, count() AS n FROM events GROUP BY user_id"}
    """,
}


@pytest.fixture
def project_factory(tmp_path):
    """Write ``{relative path: text}`` (dedented) into a fresh folder; returns its path.
    Pass ``base=MINIMAL`` (the default) to start from a small valid project and override
    or remove (value None) files."""

    def make(files: dict[str, str | None] | None = None, base: dict | None = MINIMAL) -> Path:
        merged = {**(base or {}), **(files or {})}
        for rel, text in merged.items():
            if text is None:
                continue
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return tmp_path

    return make


@pytest.fixture
def cli():
    """Run ``rtp`` in-process: ``cli("check", "-p", path)`` -> click Result."""
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run
