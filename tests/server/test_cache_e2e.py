"""`cache:` on endpoints and nodes, through `rtp deploy` and a real `rtp serve` process:
answers and node results are reused until their ttl or the next deploy, `/metrics` counts
hits and misses, and `rtp check` refuses a cached node that reads a parameter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving import rtp_serve

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

FILES = {
    "rtp.yaml": "name: shop\n",
    "datasources/events.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: product_id, type: String}
          - {name: n, type: UInt32}
          - {name: at, type: "DateTime('UTC')"}
          - {name: tags, type: Array(String)}
          - {name: score, type: Nullable(Float64)}
        sorting_key: [user_id]
    """,
    # the node's result (every product's total) is shared by every caller for 2 s
    "pipes/top.yaml": """
        nodes:
          - name: totals
            cache: {ttl: 2}
            sql: |
              SELECT product_id, sum(n) AS total, max(at) AS last, groupArray(tags)[1] AS tags,
                     max(score) AS best, 'it''s' AS quote
              FROM events GROUP BY product_id ORDER BY total DESC, product_id
          - name: out
            sql: |
              SELECT * FROM totals WHERE total >= {{ UInt32(min_total, 0) }}
    """,
    # the whole answer, per parameter set, for 10 minutes (or until a deploy)
    "pipes/count.yaml": """
        cache: {ttl: 10m}
        nodes:
          - name: c
            sql: |
              SELECT count() AS c FROM events WHERE user_id = {{ String(user_id, 'u1') }}
    """,
}


def _write(root: Path, files: dict) -> Path:
    import textwrap

    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def _rtp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _send(base: str, auth: dict, rows: list[dict]) -> None:
    body = "\n".join(json.dumps(r) for r in rows)
    r = httpx.post(f"{base}/v0/events?name=events&wait=true", content=body, headers=auth)
    assert r.status_code == 200 and r.json()["successful_rows"] == len(rows), r.text


def _row(user: str, product: str, n: int) -> dict:
    return {
        "user_id": user,
        "product_id": product,
        "n": n,
        "at": "2030-01-01 10:00:00",
        "tags": ["a'b", "c\\d"],
        "score": None,
    }


def _lookups(base: str) -> dict[tuple[str, str, str], float]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    found = re.findall(
        r'^rtp_cache_lookups_total\{node="([^"]*)",pipe="([^"]*)",result="([^"]*)"\} (\S+)$',
        text,
        re.M,
    )
    return {(pipe, node, result): float(v) for node, pipe, result, v in found}


def test_cached_answers_and_nodes_until_ttl_or_deploy(tmp_path):
    root = _write(tmp_path, FILES)
    done = _rtp("deploy", "-p", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    with rtp_serve(root, env=ENV) as served:
        base, auth = served.base, {"Authorization": f"Bearer {served.admin}"}
        _send(base, auth, [_row("u1", "p1", 3), _row("u2", "p2", 5)])

        def top() -> list[dict]:
            r = httpx.get(f"{base}/v0/pipes/top.json", headers=auth, timeout=10)
            assert r.status_code == 200, r.text
            return r.json()["data"]

        def count(user: str) -> int:
            r = httpx.get(f"{base}/v0/pipes/count.json?user_id={user}", headers=auth, timeout=10)
            assert r.status_code == 200, r.text
            return int(r.json()["data"][0]["c"])

        first = top()
        # the literal gives back what the node's SQL gives: types, escapes, NULLs, order
        assert [(r["product_id"], int(r["total"])) for r in first] == [("p2", 5), ("p1", 3)]
        assert first[0]["tags"] == ["a'b", "c\\d"] and first[0]["quote"] == "it's"
        assert first[0]["best"] is None and first[0]["last"] == "2030-01-01 10:00:00"
        assert count("u1") == 1

        _send(base, auth, [_row("u1", "p1", 10)])
        # within the ttl: the node's result and the answer are the ones computed before,
        # while a parameter the node doesn't read still applies to the cached rows
        assert top() == first
        r = httpx.get(f"{base}/v0/pipes/top.json?min_total=4", headers=auth, timeout=10)
        assert [x["product_id"] for x in r.json()["data"]] == ["p2"]
        assert count("u1") == 1
        assert count("u2") == 1  # another parameter set: its own entry, computed now

        time.sleep(2.2)  # past the node's ttl
        assert [(r["product_id"], int(r["total"])) for r in top()] == [("p1", 13), ("p2", 5)]
        assert count("u1") == 1  # the answer's ttl is 10 minutes

        stats = _lookups(base)
        assert stats[("top", "totals", "miss")] == 2
        assert stats[("top", "totals", "hit")] >= 2
        assert stats[("count", "", "miss")] == 2  # u1, u2
        assert stats[("count", "", "hit")] >= 2

        done = _rtp("deploy", "-p", str(root))  # through the server: a new build, a new cache
        assert done.returncode == 0, done.stdout + done.stderr
        assert count("u1") == 2


def test_check_refuses_a_cached_node_that_reads_a_parameter(tmp_path):
    root = _write(
        tmp_path,
        {
            **FILES,
            "pipes/top.yaml": """
                nodes:
                  - name: mine
                    sql: |
                      SELECT product_id FROM events WHERE user_id = {{ String(user_id, 'u1') }}
                  - name: totals
                    cache: {ttl: 60}
                    sql: SELECT product_id, count() AS c FROM mine GROUP BY product_id
            """,
        },
    )
    done = _rtp("check", "-p", str(root))
    assert done.returncode == 1
    assert (
        "pipes/top.yaml:6:5: error RTP310 node 'totals' is cached for every caller but reads "
        "the request parameter 'user_id' through node 'mine'" in done.stdout
    ), done.stdout


def test_cache_settings_are_checked(tmp_path):
    root = _write(
        tmp_path,
        {
            **FILES,
            "pipes/count.yaml": """
                type: internal
                cache: {ttl: 0}
                nodes:
                  - {name: c, sql: SELECT 1 AS c}
            """,
        },
    )
    done = _rtp("check", "-p", str(root), "--format", "json")
    problems = json.loads(done.stdout)["problems"]
    found = {(p["code"], p["line"], p["message"]) for p in problems}
    assert ("RTP104", 2, "cache ttl: must be seconds > 0 (e.g. 30, 500ms, 5m)") in found, found


def test_serve_never_shares_a_cached_node_that_reads_a_parameter(tmp_path):
    # `rtp serve` serves what is deployed without checking again: a `cache` added to a
    # parameterized node after the deploy (what `rtp check` refuses) is not applied
    root = _write(tmp_path, FILES)
    done = _rtp("deploy", "-p", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    _write(
        root,
        {
            "pipes/count.yaml": """
                nodes:
                  - name: c
                    cache: {ttl: 600}
                    sql: |
                      SELECT count() AS c FROM events WHERE user_id = {{ String(user_id, 'u1') }}
            """
        },
    )
    with rtp_serve(root, env=ENV) as served:
        base, auth = served.base, {"Authorization": f"Bearer {served.admin}"}
        _send(base, auth, [_row("u1", "p1", 1), _row("u1", "p2", 1), _row("u2", "p1", 1)])
        counts = [
            httpx.get(f"{base}/v0/pipes/count.json?user_id={u}", headers=auth).json()["data"]
            for u in ("u1", "u2")
        ]
        assert [int(c[0]["c"]) for c in counts] == [2, 1]
        assert not any(k[0] == "count" for k in _lookups(base))
