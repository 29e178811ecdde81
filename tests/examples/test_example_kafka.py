"""The feed example fed from Kafka, the way a user runs it: a copy of examples/feed,
`rtp deploy`, a real `rtp serve` with RTP_KAFKA_BROKER naming the broker (its consumers
start with the server), and the example's own generator producing with `--kafka`. Every
message becomes exactly one row in its datasource and in the materialized views'
targets (0 lost, 0 doubled), and the feed endpoint pages through exactly the posts
produced. Needs a broker: RTP_TEST_KAFKA, set by .ci/services/kafka.sh (Tansu)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port

BROKER = os.environ.get("RTP_TEST_KAFKA")
pytestmark = pytest.mark.skipif(
    not BROKER, reason="RTP_TEST_KAFKA is unset (source .ci/services/kafka.sh for a broker)"
)

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
ENV.pop("RTP_KAFKA_BROKER", None)
DATASOURCES = ("posts", "follows", "reactions", "dwell")


def rtp(*args: str, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def create_topics(topics: list[str], partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BROKER})
    for f in admin.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        f.result(10)


def start_serve(project: Path, port: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtp.cli.main", "serve", "-p", str(project), "--port", str(port)],
        env={**ENV, "RTP_KAFKA_BROKER": BROKER},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = proc.stdout.readline().strip()
    assert admin.startswith("rtp_"), admin + proc.stderr.read()
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc, admin
        except httpx.TransportError:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)


def test_feed_consumes_the_generators_kafka_events_exactly_once(tmp_path):
    project = tmp_path / "feed"
    shutil.copytree(ROOT / "examples" / "feed", project, ignore=shutil.ignore_patterns(".rtp"))
    # topics of their own, so runs sharing a broker don't read each other's events
    prefix = f"feed{uuid.uuid4().hex[:8]}_"
    for name in DATASOURCES:
        path = project / "datasources" / f"{name}.yaml"
        text = path.read_text()
        assert f"topic: feed_{name}," in text
        path.write_text(text.replace(f"topic: feed_{name},", f"topic: {prefix}{name},"))
    create_topics([prefix + name for name in DATASOURCES])

    deploy = rtp("deploy", "-p", str(project))
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    port = free_port()
    proc, admin = start_serve(project, port)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {admin}"}

    def sql(q: str) -> list[dict]:
        r = httpx.get(f"{base}/v0/sql", params={"q": q}, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    try:
        gen = subprocess.run(
            [
                sys.executable,
                str(project / "generator.py"),
                "--kafka",
                BROKER,
                "--topic-prefix",
                prefix,
                "--actions",
                "1500",
                "--rate",
                "0",
                "--readers",
                "40",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert gen.returncode == 0, gen.stdout + gen.stderr
        # "posts=N follows=N dwell=N reactions=N"
        sent = dict(kv.split("=") for kv in gen.stdout.strip().splitlines()[-1].split())
        sent = {k: int(v) for k, v in sent.items()}
        assert sent["dwell"] == 1500 and sent["follows"] == 120, sent
        assert sent["posts"] > 30 and sent["reactions"] > 0, sent

        count_all = " UNION ALL ".join(
            f"SELECT '{n}' AS ds, count() AS n FROM {n}" for n in DATASOURCES
        )

        def counts() -> dict[str, int]:
            return {r["ds"]: int(r["n"]) for r in sql(count_all)}

        deadline = time.monotonic() + 120
        while counts() != sent:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, f"consumed {counts()}, produced {sent}"
            time.sleep(0.5)
        time.sleep(2)  # a late duplicate would show now
        assert counts() == sent

        # each message once: distinct keys as many as rows
        assert int(sql("SELECT uniqExact(post_id) AS n FROM posts")[0]["n"]) == sent["posts"]
        follows = sql("SELECT uniqExact(user_id, author_id) AS n FROM follows")
        assert int(follows[0]["n"]) == sent["follows"]
        # the views' targets: seen_posts has a row per dwell row; user_interest (summing)
        # holds, per dimension, the weights of every dwell and reaction row once
        assert int(sql("SELECT count() AS n FROM seen_posts")[0]["n"]) == sent["dwell"]
        expected = sql(
            "SELECT round(sum(w), 6) AS w FROM ("
            " SELECT least(dwell_ms, 30000) / 10000 AS w FROM dwell"
            " UNION ALL SELECT multiIf(kind = 'like', 2., kind = 'comment', 3.,"
            " kind = 'share', 4., kind = 'hide', -6., 0.) AS w FROM reactions)"
        )[0]["w"]
        got = sql(
            "SELECT dimension, round(sum(weight), 6) AS w FROM user_interest"
            " GROUP BY dimension ORDER BY dimension"
        )
        assert got == [
            {"dimension": "author", "w": expected},
            {"dimension": "topic", "w": expected},
        ]

        # the endpoint: a reader we know nothing about pages through every post produced
        # (all fresh, none seen), each once
        seen_ids: list[str] = []
        params = {"user_id": "u_nobody", "limit": 50}
        while True:
            r = httpx.get(f"{base}/v0/pipes/feed.json", params=params, headers=auth, timeout=30)
            assert r.status_code == 200, r.text
            page = r.json()["data"]
            if not page:
                break
            assert {row["reason"] for row in page} == {"fresh"}
            seen_ids += [row["post_id"] for row in page]
            last = page[-1]
            params = {
                **params,
                "snapshot": last["snapshot"],
                "cursor_score": last["score"],
                "cursor_post": last["post_id"],
            }
        all_posts = {r["post_id"] for r in sql("SELECT post_id FROM posts")}
        assert len(seen_ids) == sent["posts"] and set(seen_ids) == all_posts

        # a generated reader's feed leaves out each post they were shown (seen_mv)
        reader = sql("SELECT user_id FROM dwell GROUP BY user_id ORDER BY count() DESC LIMIT 1")
        user = reader[0]["user_id"]
        shown = {
            r["post_id"]
            for r in sql(f"SELECT DISTINCT post_id FROM dwell WHERE user_id = '{user}'")
        }
        r = httpx.get(
            f"{base}/v0/pipes/feed.json",
            params={"user_id": user, "limit": 50},
            headers=auth,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        ranked = {row["post_id"] for row in r.json()["data"]}
        assert shown and ranked and not ranked & shown
        assert ranked <= all_posts
    finally:
        proc.terminate()
        proc.wait(20)
