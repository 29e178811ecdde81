"""examples/betting through the door a brand uses: a real `rtp serve`, JWTs minted with
`rtp token jwt --fixed brand=...`, plain HTTP. One brand must never read another's users,
whatever it sends as `brand`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.serving import rtp_serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "betting"
AT = "2026-09-12 20:00:00"


def _rtp(*args: str, env: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A copy of the example (so .rtp/ stays out of the repository), deployed, served,
    loaded with its fixtures through /v0/events; yields (base url, admin token, project)."""
    root = tmp_path_factory.mktemp("betting") / "betting"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".rtp"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _rtp("deploy", "-p", str(root), env=env)
    with rtp_serve(root, env=env) as served:
        base, admin = served.base, served.admin
        for fixture in sorted((root / "fixtures").glob("*.ndjson")):
            body = fixture.read_text()
            r = httpx.post(
                f"{base}/v0/events",
                params={"name": fixture.stem, "wait": "true"},
                content=body,
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"successful_rows": len(body.splitlines()), "quarantined_rows": 0}
        yield base, admin, root, env


def _jwt(root: Path, env: dict, brand: str) -> str:
    return _rtp(
        "token",
        "jwt",
        f"{brand}_site",
        "--scope",
        "PIPES:READ:session_profile",
        "--scope",
        "PIPES:READ:incentive",
        "--fixed",
        f"brand={brand}",
        "-p",
        str(root),
        env=env,
    ).strip()


def _get(base: str, token: str, pipe: str, **params) -> httpx.Response:
    return httpx.get(
        f"{base}/v0/pipes/{pipe}.json",
        params={"at": AT, **params},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_each_brand_reads_only_its_own_users(server):
    base, _, root, env = server
    acme, zeus = _jwt(root, env, "acme"), _jwt(root, env, "zeus")
    assert acme != zeus

    # the same user id at two brands is two people
    r = _get(base, acme, "session_profile", user_id="u_1")
    assert r.status_code == 200, r.text
    [row] = r.json()["data"]
    assert (row["brand"], row["sports"], row["slips_opened"]) == ("acme", ["football", "tennis"], 3)
    [row] = _get(base, zeus, "session_profile", user_id="u_1").json()["data"]
    assert (row["brand"], row["sports"], row["bets_placed"]) == ("zeus", ["racing"], 1)

    # zeus asking for acme's data: the JWT's brand wins over the query string and the body
    [row] = _get(base, zeus, "session_profile", user_id="u_1", brand="acme").json()["data"]
    assert (row["brand"], row["sports"]) == ("zeus", ["racing"])
    r = httpx.post(
        f"{base}/v0/pipes/session_profile.json",
        json={"user_id": "u_1", "brand": "acme", "at": AT},
        headers={"Authorization": f"Bearer {zeus}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["sports"] == ["racing"]

    # acme's hesitating user: an offer for acme, unknown to zeus even when zeus says acme
    [row] = _get(base, acme, "incentive", user_id="u_2").json()["data"]
    assert (row["offer"], row["reason"]) == ("money_back", "abandoned_slip")
    [row] = _get(base, zeus, "incentive", user_id="u_2", brand="acme").json()["data"]
    assert (row["brand"], row["offer"], row["reason"]) == ("zeus", "none", "unknown_user")
    # and the other way round
    [row] = _get(base, zeus, "incentive", user_id="u_7").json()["data"]
    assert (row["offer"], row["event_id"], row["boosted_odds"]) == ("enhanced_odds", "e_bay_bvb", 3)
    [row] = _get(base, acme, "incentive", user_id="u_7", brand="zeus").json()["data"]
    assert (row["brand"], row["reason"]) == ("acme", "unknown_user")


def test_brand_tokens_reach_nothing_else(server):
    base, admin, root, env = server
    acme = _jwt(root, env, "acme")
    # no raw SQL over the shared tables, no events into them
    r = httpx.get(
        f"{base}/v0/sql",
        params={"q": "SELECT count() FROM activity"},
        headers={"Authorization": f"Bearer {acme}"},
    )
    assert r.status_code == 403 and r.json()["code"] == "RTP403"
    r = httpx.post(
        f"{base}/v0/events",
        params={"name": "activity"},
        content="{}",
        headers={"Authorization": f"Bearer {acme}"},
    )
    assert r.status_code == 403
    # a token without a brand (here the admin's, which fixes none) is refused by the
    # template's error(..., 403) unless it names one
    r = _get(base, admin, "session_profile", user_id="u_1")
    assert r.status_code == 403, r.text
    assert "brand" in r.json()["error"] and r.json()["code"] == "RTP402"
    [row] = _get(base, admin, "session_profile", user_id="u_1", brand="zeus").json()["data"]
    assert row["sports"] == ["racing"]
