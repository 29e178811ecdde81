"""End to end: `rtp serve` as a process on a free port; ingest events, read them back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from tests.server.conftest import EVENTS, RECS
from tests.serving import rtp_serve

ROOT = Path(__file__).resolve().parents[2]


def test_serve_process_ingests_and_answers(project_factory):
    root = project_factory(
        {"datasources/events.yaml": EVENTS, "pipes/by_user.yaml": None, "pipes/recs.yaml": RECS}
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # tables as `rtp deploy` would create them (another process: chDB allows one per path)
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
        backend.close()
    """)
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, timeout=60)
    with rtp_serve(root, env=env) as served:
        proc, admin, base = served.proc, served.admin, served.base
        health = httpx.get(f"{base}/healthz", timeout=2)
        assert health.json()["status"] == "ok"
        owner = json.loads((root / ".rtp/owner.json").read_text())
        control = owner.pop("token")
        assert owner == {"pid": proc.pid, "command": "rtp serve", "url": base}
        # the control credential: readable by the project's owner only, ADMIN while the
        # server lives
        assert (root / ".rtp/owner.json").stat().st_mode & 0o777 == 0o600
        assert control.startswith("rtp_control_") and control != admin
        r = httpx.get(f"{base}/v0/sql", params={"q": "SELECT 1 AS one", "token": control})
        assert r.status_code == 200 and r.json()["data"] == [{"one": 1}]
        auth = {"Authorization": f"Bearer {admin}"}
        events = "\n".join(
            json.dumps(
                {
                    "timestamp": f"2030-01-01 00:00:0{i}",
                    "user_id": "u1",
                    "product": {"id": f"p{i % 2}", "price": 2.0},
                }
            )
            for i in range(5)
        )
        r = httpx.post(f"{base}/v0/events?name=events&wait=true", content=events, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json() == {"successful_rows": 5, "quarantined_rows": 0}
        r = httpx.get(f"{base}/v0/pipes/recs.json", params={"user_id": "u1"}, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == [
            {"product_id": "p0", "spent": 6, "n": 3},
            {"product_id": "p1", "spent": 4, "n": 2},
        ]
        r = httpx.get(f"{base}/v0/pipes/recs.json", params={"user_id": "u1"})
        assert r.status_code == 403
    assert not (root / ".rtp/owner.json").exists()
