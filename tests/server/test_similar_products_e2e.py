"""The example's similar_products through `rtp dev`: its alternatives come from a copy
pipe the server runs at start (the target is empty), and the stock is checked at every
call, so a product that sells out leaves the answer before the next copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.server.test_serve_dev_e2e import wait_for
from tests.serving import ROOT, copy_root_project, free_port, stop


def test_similar_products_is_precomputed_and_checks_stock_live(tmp_path):
    copy_root_project(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtp.cli.main", "dev", "--no-auth", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def similar() -> list[str]:
        r = httpx.get(f"{base}/v0/pipes/similar_products.json?product_id=sg-wayfarer", timeout=30)
        assert r.status_code == 200, r.text
        return [row["product_id"] for row in r.json()["data"]]

    try:
        answer = wait_for(similar, timeout=90)  # once the server's first copy ran
        # as tests/similar_products.yaml expects from the fixtures
        assert answer == ["sg-cateye", "sg-aviator", "sg-sport", "sg-round", "ht-bucket"]
        health = httpx.get(f"{base}/healthz", timeout=30).json()
        copy = health["copies"]["product_similarities_copy"]
        assert copy["runs"] == 1 and copy["schedule"] == "*/5 * * * *", copy

        # the cat eyes sell out: gone from the next answer, no copy in between
        sold_out = {"product_id": "sg-cateye", "stock": 0, "updated_at": "2026-11-20 09:00:00"}
        r = httpx.post(
            f"{base}/v0/events?name=inventory&wait=true", content=json.dumps(sold_out), timeout=30
        )
        assert r.json() == {"successful_rows": 1, "quarantined_rows": 0}, r.text
        assert similar() == ["sg-aviator", "sg-sport", "sg-round", "ht-bucket"]
        assert (
            httpx.get(f"{base}/healthz", timeout=30).json()["copies"]["product_similarities_copy"][
                "runs"
            ]
            == 1
        )
    finally:
        stop(proc)
