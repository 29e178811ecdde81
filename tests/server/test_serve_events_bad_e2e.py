"""Engine-checked bodies with bad rows through a real `rtp serve`: concurrent senders
mixing clean bodies and bodies with bad rows (refused attempts, then bodies read once
into a staging table) get exact counts, every good row is stored exactly once, every
bad row is quarantined once with its reason; and a materialized view's own refusal is
not taken for bad rows (nothing inserted twice)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.serving import deploy, rtp_serve

CLICKS = """
columns:
  - {name: id, type: UInt64}
  - {name: user_id, type: String}
  - {name: ts, type: "DateTime64(3, 'UTC')"}
  - {name: price, type: Float64, default: "0"}
sorting_key: [user_id, id]
"""


def body(first: int, n: int, bad_every: int) -> tuple[bytes, int, list[str]]:
    """``n`` events numbered from ``first``; every ``bad_every``-th one bad (a price
    that is no number, or no user_id, in turn). Returns the body, how many rows are bad
    and their ids' reasons' key parts."""
    lines, bad = [], []
    for i in range(first, first + n):
        row = {"id": i, "user_id": f"u{i % 7}", "ts": "2030-01-01 00:00:00", "price": 1.5}
        if bad_every and i % bad_every == 0:
            if (i // bad_every) % 2:
                row["price"] = "n/a"
                bad.append("column 'price' ($.price)")
            else:
                del row["user_id"]
                bad.append("column 'user_id' ($.user_id): missing")
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode(), len(bad), bad


def sql(base: str, token: str, q: str) -> list[dict]:
    r = httpx.get(f"{base}/v0/sql", params={"q": q + " FORMAT JSON", "token": token}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_concurrent_senders_with_bad_rows_store_each_good_row_once(project_factory):
    root = project_factory({"rtp.yaml": "name: bad\n", "datasources/clicks.yaml": CLICKS})
    deploy(root)
    # 6 senders x 6 bodies of 300 rows: clean bodies and bodies with 10% bad rows mixed,
    # so batches go each way (the clean attempt, the staging table, the skipped attempt)
    plan = [(s * 6 + b) * 300 for s in range(6) for b in range(6)]
    bodies = {first: body(first, 300, 10 if (first // 300) % 3 else 0) for first in plan}
    with rtp_serve(root) as served:
        url = f"{served.base}/v0/events?name=clicks&wait=true&token={served.admin}"

        def send(first: int) -> tuple[int, dict]:
            r = httpx.post(url, content=bodies[first][0], timeout=60)
            return first, r.json() if r.status_code == 200 else {"status": r.status_code}

        with ThreadPoolExecutor(6) as pool:
            answers = dict(pool.map(send, plan))
        for first, (_, nbad, _) in bodies.items():
            assert answers[first] == {"successful_rows": 300 - nbad, "quarantined_rows": nbad}
        good = sum(300 - nbad for _, nbad, _ in bodies.values())
        stored = sql(
            served.base, served.admin, "SELECT count() AS n, uniqExact(id) AS u FROM clicks"
        )
        assert stored == [{"n": good, "u": good}]
        reasons = [
            r["error"]
            for r in sql(served.base, served.admin, "SELECT error FROM clicks_quarantine")
        ]
        expected = [reason for _, _, bad in bodies.values() for reason in bad]
        assert len(reasons) == len(expected) == sum(nbad for _, nbad, _ in bodies.values())
        for part in set(expected):
            assert sum(part in r for r in reasons) == expected.count(part), part


def test_a_views_refusal_is_not_taken_for_bad_rows(project_factory):
    """A view that refuses a clean body (its own throwIf, as the engine's checks raise)
    fails the request: the body is not listed for bad rows and inserted a second time."""
    root = project_factory(
        {
            "rtp.yaml": "name: viewfail\n",
            "datasources/clicks.yaml": CLICKS,
            "datasources/numbered.yaml": """
                columns:
                  - {name: user_id, type: String}
                  - {name: n, type: Int32}
                sorting_key: [user_id]
            """,
            "pipes/numbered_mv.yaml": """
                nodes:
                  - name: numbered
                    sql: |
                      SELECT user_id, toInt32(throwIf(startsWith(user_id, 'u'))) AS n
                      FROM clicks
                type: materialized
                target: numbered
            """,
        }
    )
    deploy(root)
    with rtp_serve(root) as served:
        url = f"{served.base}/v0/events?name=clicks&wait=true&token={served.admin}"
        numeric = b'{"id": 1, "user_id": "7", "ts": "2030-01-01 00:00:00"}\n'
        r = httpx.post(url, content=numeric, timeout=60)
        assert r.json() == {"successful_rows": 1, "quarantined_rows": 0}
        words = body(100, 50, 0)[0]  # user_ids "u..": the view throws
        r = httpx.post(url, content=words, timeout=60)
        assert r.status_code >= 500, r.text
        # the view's failure may leave the table's part stored (ClickHouse pushes to
        # views after writing it), never the body twice
        n = sql(served.base, served.admin, "SELECT count() AS n FROM clicks WHERE id >= 100")
        assert n[0]["n"] in (0, 50)
