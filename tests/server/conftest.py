"""Server fixtures: one in-memory chDB engine for the session, a fresh database per test,
and the app called in-process through httpx.ASGITransport."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rtp.engine.embedded import EmbeddedBackend
from rtp.project.load import load_project
from rtp.server import ServerSettings, create_app
from rtp.sql.ddl import create_table

EVENTS = """
    columns:
      - {name: timestamp, type: DateTime64(3)}
      - {name: user_id, type: String}
      - {name: product_id, type: String, json: $.product.id}
      - {name: price, type: Nullable(Float64), json: $.product.price}
      - {name: qty, type: UInt8, default: '1'}
    sorting_key: [user_id, timestamp]
"""
RECS = """
    description: Products a shopper bought, most spent first
    nodes:
      - name: mine
        sql: |
          SELECT product_id, price, qty FROM events
          WHERE user_id = {{ String(user_id, required=True, description="Shopper") }}
      - name: ranked
        sql: |
          SELECT product_id, sum(price * qty) AS spent, count() AS n FROM mine
          GROUP BY product_id ORDER BY spent DESC, product_id
          LIMIT {{ Int32(limit, 10, min=1, max=100, description="How many") }}
"""
FILES = {"datasources/events.yaml": EVENTS, "pipes/by_user.yaml": None, "pipes/recs.yaml": RECS}
ROWS = [
    ("2030-01-01 10:00:00", "u1", "p1", 10.0, 1),
    ("2030-01-01 10:00:01", "u1", "p2", 25.5, 2),
    ("2030-01-01 10:00:02", "u1", "p1", 10.0, 1),
    ("2030-01-01 10:00:03", "u2", "p3", 99.0, 1),
]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def engine():
    # chDB is one engine per process: while this connection is open, other tests'
    # in-memory engines would share (and see) its state, so it lives per module only.
    backend = EmbeddedBackend(":memory:")
    yield backend
    backend.close()


@dataclass
class Served:
    app: object
    client: httpx.AsyncClient
    admin: str | None
    engine: EmbeddedBackend
    root: Path

    @property
    def state(self):
        return self.app.state.rtp

    def rows(self, sql: str) -> list[list]:
        return self.engine.query(sql)[1]


@pytest.fixture
def serve(engine, project_factory):
    """``serve(files, auth=True, seed=True, **settings)`` -> Served: the project's tables
    in a fresh database, ROWS loaded, the app ready to call."""

    def make(
        files: dict | None = None, *, auth: bool = True, seed: bool = True, **settings
    ) -> Served:
        root = project_factory({**FILES, **(files or {})})
        model, problems = load_project(root)
        assert not problems.errors, [str(p) for p in problems.errors]
        database = f"t_{uuid.uuid4().hex[:10]}"
        engine.execute(f"CREATE DATABASE {database}")
        engine.execute(f"USE {database}")
        for ds in model.datasources.values():
            engine.execute(create_table(ds))
        if seed and "events" in model.datasources:
            values = ", ".join(f"('{t}', '{u}', '{p}', {x}, {q})" for t, u, p, x, q in ROWS)
            engine.execute(f"INSERT INTO events VALUES {values}")
        settings.setdefault("batch_wait", 0.002)
        tokens = root / ".rtp" / "tokens.json" if auth else None
        app = create_app(model, engine, ServerSettings(tokens_file=tokens, **settings))
        admin = app.state.rtp.tokens.ensure_admin() if auth else None
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rtp")
        return Served(app, client, admin, engine, root)

    return make
