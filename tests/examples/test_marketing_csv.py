"""The marketing example as a CRM sees it: `rtp deploy`, `rtp append` of the fixtures, a
real `rtp serve` process, and the alert feed fetched as CSV (/v0/pipes/crm_alerts.csv)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serving import rtp_serve

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}


def rtp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_crm_polls_alerts_as_csv(tmp_path):
    project = tmp_path / "marketing"
    shutil.copytree(ROOT / "examples" / "marketing", project, ignore=shutil.ignore_patterns(".rtp"))
    deploy = rtp("deploy", "-p", str(project))
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    for fixture in sorted((project / "fixtures").glob("*.ndjson")):
        append = rtp("append", fixture.stem, str(fixture), "-p", str(project))
        assert append.returncode == 0, append.stdout + append.stderr
    with rtp_serve(project, env=ENV) as served:
        admin, base = served.admin, served.base
        auth = {"Authorization": f"Bearer {admin}"}
        # the CRM's poll at 15:00, its previous one at 14:30 (tests/crm_alerts.yaml has the
        # arithmetic): acme crossed 3 people at 14:40, initech at 14:58
        r = httpx.get(
            f"{base}/v0/pipes/crm_alerts.csv",
            headers=auth,
            params={"at": "2026-11-25 15:00:00", "since": "2026-11-25 14:30:00"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows == [
            [
                "domain",
                "company",
                "crossed_at",
                "visitors",
                "pricing_views",
                "campaign_id",
                "message",
            ],
            [
                "acme.com",
                "Acme Corp",
                "2026-11-25 14:40:00",
                "3",
                "4",
                "c_mfg",
                "Acme Corp: 3 people on pricing pages since 14:05 UTC",
            ],
            [
                "initech.com",
                "Initech",
                "2026-11-25 14:58:00",
                "3",
                "4",
                "c_fin",
                "Initech: 3 people on pricing pages since 14:15 UTC",
            ],
        ]
        # the next poll (since = 15:00, at = 15:15), window (14:15, 15:15]: acme's v01
        # (14:05) left the window and v18 came at 15:10, so acme crosses 3 people again at
        # 15:10 and is reported again; initech's 3rd person is now v08's return at 14:59,
        # before `since`: not reported twice
        r = httpx.get(
            f"{base}/v0/pipes/crm_alerts.csv",
            headers=auth,
            params={"at": "2026-11-25 15:15:00", "since": "2026-11-25 15:00:00"},
        )
        assert r.status_code == 200, r.text
        assert list(csv.reader(io.StringIO(r.text)))[1:] == [
            [
                "acme.com",
                "Acme Corp",
                "2026-11-25 15:10:00",
                "3",
                "3",
                "c_mfg",
                "Acme Corp: 3 people on pricing pages since 14:20 UTC",
            ],
        ]
        # at 15:30 since 15:15: nothing new, the header alone
        r = httpx.get(
            f"{base}/v0/pipes/crm_alerts.csv",
            headers=auth,
            params={"at": "2026-11-25 15:30:00", "since": "2026-11-25 15:15:00"},
        )
        assert r.status_code == 200, r.text
        assert list(csv.reader(io.StringIO(r.text))) == [
            [
                "domain",
                "company",
                "crossed_at",
                "visitors",
                "pricing_views",
                "campaign_id",
                "message",
            ]
        ]
        # a poll without `since` is refused with the JSON error body, not a CSV
        r = httpx.get(
            f"{base}/v0/pipes/crm_alerts.csv", headers=auth, params={"at": "2026-11-25 15:00:00"}
        )
        assert r.status_code == 400
        assert "since" in r.json()["error"]
        # and without a token, nothing
        r = httpx.get(f"{base}/v0/pipes/crm_alerts.csv", params={"since": "2026-11-25 14:30:00"})
        assert r.status_code in (401, 403)
