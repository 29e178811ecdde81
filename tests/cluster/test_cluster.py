"""rtp deploy, rtp append and rtp serve against a real ClickHouse cluster (2 shards x 2
replicas, .ci/services/cluster.sh): what lands on every node, unchanged redeploys,
migrations, an unreachable node, ingest while a replica is killed, and the same answers
as the embedded engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import httpx
import pytest

from tests.cluster.nodes import (
    BASE,
    NODES,
    ddl_queue,
    needs_cluster,
    on_node,
    service,
    wait_until,
)
from tests.cluster.shop import FILES, ndjson, rows, write_rows
from tests.serving import ENV, rtp_serve

pytestmark = needs_cluster


def _db(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def _objects(node: int, db: str) -> dict[str, tuple[str, str]]:
    return {
        name: (engine, query)
        for name, engine, query in on_node(
            node,
            f"SELECT name, engine, create_table_query FROM system.tables WHERE database = '{db}'",
        )
    }


def _columns(node: int, db: str, table: str) -> list[str]:
    return [
        r[0]
        for r in on_node(
            node,
            f"SELECT name FROM system.columns WHERE database = '{db}' AND table = '{table}'",
        )
    ]


def test_deploy_redeploy_and_alter_on_every_node(project_factory, cli, cluster_url):
    root = project_factory(FILES, base=None)
    db = _db(cluster_url)
    first = cli("deploy", "-p", root, "--target", cluster_url)
    assert first.exit_code == 0, first.output
    assert f"on cluster {cluster_url.split('=')[1]}" in first.output
    for node in NODES:
        engines = {name: engine for name, (engine, _) in _objects(node, db).items()}
        assert engines == {
            "events": "Distributed",
            "events__local": "ReplicatedMergeTree",
            "per_user": "Distributed",
            "per_user__local": "ReplicatedAggregatingMergeTree",
            "per_user_mv": "MaterializedView",
            "top_users": "Distributed",
            "top_users__local": "ReplicatedMergeTree",
            "_rtp_state": "ReplicatedMergeTree",
            "_rtp_journal": "ReplicatedMergeTree",
            "_rtp_lock": "ReplicatedMergeTree",  # rtp's own tables: on every node
            "_rtp_tokens": "ReplicatedMergeTree",
            "_rtp_secrets": "ReplicatedMergeTree",
            "_rtp_releases": "ReplicatedMergeTree",
        }, f"node {node}"
    assert "cityHash64(user_id)" in _objects(1, db)["events"][1]

    # unchanged: nothing runs on any node (no ON CLUSTER statement is queued)
    before = {node: _objects(node, db) for node in NODES}
    queued = ddl_queue()
    again = cli("deploy", "-p", root, "--target", cluster_url)
    assert again.exit_code == 0 and "up to date, nothing to do" in again.output, again.output
    assert ddl_queue() == queued
    assert {node: _objects(node, db) for node in NODES} == before

    loaded = cli(
        "append", "-p", root, "--target", cluster_url, "events", write_rows(root, rows(500))
    )
    assert loaded.exit_code == 0, loaded.output
    # ALTER first: a new column keeps every row on every replica
    (root / "datasources/events.yaml").write_text(
        textwrap.dedent(FILES["datasources/events.yaml"]).replace(
            "  - {name: price, type: UInt32}",
            "  - {name: price, type: UInt32}\n  - {name: qty, type: UInt8, default: '1'}",
        )
    )
    plan = cli("deploy", "-p", root, "--target", cluster_url, "--plan", "--sql")
    assert "~ alter table events: add column qty" in plan.output, plan.output
    assert "ALTER TABLE `events__local` ON CLUSTER" in plan.output
    altered = cli("deploy", "-p", root, "--target", cluster_url)
    assert altered.exit_code == 0, altered.output
    for node in NODES:
        assert "qty" in _columns(node, db, "events") and "qty" in _columns(
            node, db, "events__local"
        ), f"node {node}"
        assert on_node(node, f"SELECT count(), sum(qty) FROM `{db}`.events") == [(500, 500)]
    assert "up to date" in cli("deploy", "-p", root, "--target", cluster_url).output

    # a new sorting key rebuilds: fresh tables on every node, the rows copied, swapped in
    path = root / "datasources/events.yaml"
    path.write_text(path.read_text().replace("[user_id, id]", "[user_id, category, id]"))
    rebuilt = cli("deploy", "-p", root, "--target", cluster_url, "--allow-destructive")
    assert "rebuild table events" in rebuilt.output and rebuilt.exit_code == 0, rebuilt.output
    for node in NODES:
        objects = _objects(node, db)
        assert set(objects) == set(before[node]), f"node {node}"
        assert "ORDER BY (user_id, category, id)" in objects["events__local"][1]
        assert on_node(node, f"SELECT count(), uniqExact(id) FROM `{db}`.events") == [(500, 500)]
    assert on_node(1, f"SELECT countMerge(n) FROM `{db}`.per_user") == [(500,)]
    assert "up to date" in cli("deploy", "-p", root, "--target", cluster_url).output

    # a copy pipe replacing its target: twice, the second replaces the first's rows
    for _ in range(2):
        copied = cli("copy", "run", "-p", root, "--target", cluster_url, "top_users_copy")
        assert copied.exit_code == 0, copied.output
    for node in NODES:
        assert set(_objects(node, db)) == set(before[node]), f"node {node}"
        assert on_node(node, f"SELECT count() FROM `{db}`.top_users") == [(10,)]


@pytest.mark.parametrize("crash_after", [8, 9])
def test_a_rebuild_killed_mid_way_is_finished_by_the_next_deploy(
    project_factory, cli, cluster_url, crash_after
):
    """Killed after the copy into the fresh tables (8) or after the swap (9): the next
    deploy finishes from the journal, every row once on every node, nothing left over."""
    root = project_factory(FILES, base=None)
    db = _db(cluster_url)
    assert cli("deploy", "-p", root, "--target", cluster_url).exit_code == 0
    loaded = cli(
        "append", "-p", root, "--target", cluster_url, "events", write_rows(root, rows(300))
    )
    assert loaded.exit_code == 0, loaded.output
    objects = set(_objects(1, db))
    path = root / "datasources/events.yaml"
    path.write_text(path.read_text().replace("[user_id, id]", "[user_id, price, id]"))
    killed = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root), "--target",
         cluster_url, "--allow-destructive"],
        env={**ENV, "RTP_TEST_DEPLOY_CRASH_AFTER": str(crash_after)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == 137, killed.stderr
    finished = cli("deploy", "-p", root, "--target", cluster_url)
    assert finished.exit_code == 0 and "resum" in finished.output.lower(), finished.output
    for node in NODES:
        assert set(_objects(node, db)) == objects, f"node {node}"
        assert "ORDER BY (user_id, price, id)" in _objects(node, db)["events__local"][1]
        assert on_node(node, f"SELECT count(), uniqExact(id) FROM `{db}`.events") == [(300, 300)]
    assert "up to date" in cli("deploy", "-p", root, "--target", cluster_url).output


def test_drift_on_one_node_is_reported_with_its_host(project_factory, cli, cluster_url):
    root = project_factory(FILES, base=None)
    db = _db(cluster_url)
    assert cli("deploy", "-p", root, "--target", cluster_url).exit_code == 0
    on_node(3, f"DETACH TABLE `{db}`.per_user_mv")
    # the same target, written in rtp.yaml as a mapping
    url, cluster = cluster_url.split("?cluster=")
    (root / "rtp.yaml").write_text(
        f"name: shop\ntargets:\n  prod: {{url: '{url}', cluster: {cluster}}}\n"
    )
    plan = cli("deploy", "-p", root, "--target", "prod", "--plan")
    assert f"drift: view per_user_mv was changed by hand on 127.0.0.1:{BASE + 3}" in plan.output
    fixed = cli("deploy", "-p", root, "--target", cluster_url)
    assert fixed.exit_code == 0, fixed.output
    for node in NODES:
        assert "per_user_mv" in _objects(node, db), f"node {node}"


def test_unreachable_node_is_named_and_a_rerun_converges(project_factory, cli, cluster_url):
    root = project_factory(FILES, base=None)
    db = _db(cluster_url)
    assert cli("deploy", "-p", root, "--target", cluster_url).exit_code == 0
    (root / "datasources/events.yaml").write_text(
        textwrap.dedent(FILES["datasources/events.yaml"]).replace(
            "  - {name: price, type: UInt32}",
            "  - {name: price, type: UInt32}\n  - {name: note, type: String}",
        )
    )
    service("kill-node", "4")
    refused = cli("deploy", "-p", root, "--target", cluster_url)
    assert refused.exit_code != 0
    assert f"127.0.0.1:{BASE + 4} (shard 2, replica 2) is unreachable" in refused.output
    assert all("note" not in _columns(node, db, "events__local") for node in (1, 2, 3))
    service("start-node", "4")
    again = cli("deploy", "-p", root, "--target", cluster_url)
    assert again.exit_code == 0, again.output
    for node in NODES:
        assert "note" in _columns(node, db, "events__local"), f"node {node}"


# 8,000 rows by default (18.16 inserts ~450 rows/s through rtp, see docs/deploy.md);
# RTP_TEST_CLUSTER_EVENTS=100000 for the full run
EVENTS = int(os.environ.get("RTP_TEST_CLUSTER_EVENTS", "8000"))
BATCH = 400 if EVENTS <= 8000 else 2000
BATCHES = EVENTS // BATCH


def test_events_while_a_replica_is_killed_land_exactly_once(project_factory, cli, cluster_url):
    root = project_factory(FILES, base=None)
    db = _db(cluster_url)
    assert cli("deploy", "-p", root, "--target", cluster_url).exit_code == 0
    acknowledged: list[int] = []
    with rtp_serve(root, "--target", cluster_url) as srv:
        for b in range(BATCHES):
            if b == BATCHES // 3:
                service("kill-node", "4")  # shard 2, replica 2: its peer takes the rows
            if b == 2 * BATCHES // 3:
                service("start-node", "4")
            batch = rows(BATCH, b * BATCH)
            for _ in range(3):  # a client retries what was not acknowledged
                r = httpx.post(
                    f"{srv.base}/v0/events",
                    params={"name": "events", "token": srv.admin},
                    content=ndjson(batch),
                    timeout=60,
                )
                if r.status_code in (200, 202):
                    assert r.json()["successful_rows"] == BATCH
                    acknowledged += [row["id"] for row in batch]
                    break
        # replacing rows through the API is refused on a cluster, and changes nothing
        r = httpx.post(
            f"{srv.base}/v0/datasources",
            params={"name": "events", "mode": "replace", "format": "ndjson", "token": srv.admin},
            content=ndjson(rows(10, 10**6)),
            timeout=60,
        )
        assert r.status_code == 400 and "not supported on a cluster" in r.json()["error"], r.text
    assert len(acknowledged) == BATCHES * BATCH
    total, distinct = on_node(2, f"SELECT count(), uniqExact(id) FROM `{db}`.events")[0]
    assert (total, distinct) == (len(acknowledged), len(acknowledged))
    # the restarted replica catches up with its peer, and the view's states with it
    for node in NODES:
        on_node(node, f"SYSTEM SYNC REPLICA `{db}`.events__local")

    def converged() -> bool:
        shard2 = [
            on_node(n, f"SELECT count(), sum(id) FROM `{db}`.events__local")[0] for n in (3, 4)
        ]
        return shard2[0] == shard2[1]

    wait_until(converged, 90, "replica 4 to catch up")
    local = {n: on_node(n, f"SELECT count() FROM `{db}`.events__local")[0][0] for n in NODES}
    assert local[1] == local[2] and local[3] == local[4]
    assert local[1] + local[3] == len(acknowledged)
    merged = on_node(1, f"SELECT countMerge(n) FROM `{db}`.per_user")[0][0]
    assert merged == len(acknowledged)


@pytest.mark.parametrize("users", [["u1", "u2", "u36"]])
def test_endpoints_answer_as_on_the_embedded_engine(project_factory, cli, cluster_url, users):
    root = project_factory(FILES, base=None)
    embedded = root.parent / "embedded"
    shutil.copytree(root, embedded)
    data = rows(3000)
    for folder, target in ((root, cluster_url), (embedded, "embedded")):
        assert cli("deploy", "-p", folder, "--target", target).exit_code == 0
        loaded = cli("append", "-p", folder, "--target", target, "events", write_rows(folder, data))
        assert loaded.exit_code == 0, loaded.output

    def answers(folder, *args) -> list:
        out = []
        with rtp_serve(folder, *args) as srv:
            for pipe, params in [
                ("user_stats", {}),
                ("buyers_of", {"product": "p3"}),
                ("spend_by_product", {}),
                *[("by_user", {"user_id": u}) for u in users],
            ]:
                r = httpx.get(
                    f"{srv.base}/v0/pipes/{pipe}.json",
                    params={**params, "token": srv.admin},
                    timeout=30,
                )
                assert r.status_code == 200, r.text
                out.append(r.json()["data"])
        return out

    on_cluster = answers(root, "--target", cluster_url)
    assert on_cluster == answers(embedded)
    assert len(on_cluster[0]) == 37 and sum(int(r["n"]) for r in on_cluster[0]) == 3000
    assert on_cluster[1] and len(on_cluster[2]) == 11


def _settled(db: str, sql: str, expected: tuple) -> None:
    """``sql`` (``{db}`` filled in) answers ``expected`` on every node, within 30 s (a
    row a view wrote on one replica reaches the other by replication)."""

    def answers() -> set:
        return {on_node(n, sql.format(db=f"`{db}`"))[0] for n in NODES}

    try:
        wait_until(lambda: answers() == {expected}, 30, sql)
    except AssertionError:
        assert answers() == {expected}, sql


def _stage_names(db: str) -> dict[int, set[str]]:
    return {n: {t for t in _objects(n, db) if "__rtp_" in t} for n in NODES}


def test_stage_promote_rollback_discard_on_every_node(project_factory, cli, cluster_url):
    """A version's objects are made, switched and dropped ON CLUSTER: every node has the
    same ones; rows ingested while staged (and after promote) reach both versions."""
    root = project_factory(FILES, base=None)
    db, target = _db(cluster_url), ("-p", root, "--target", cluster_url)

    def append(start: int, count: int) -> None:
        loaded = cli("append", *target, "events", write_rows(root, rows(count, start)))
        assert loaded.exit_code == 0, loaded.output

    assert cli("deploy", *target).exit_code == 0
    append(0, 300)
    (root / "datasources/events.yaml").write_text(
        textwrap.dedent(FILES["datasources/events.yaml"]).replace(
            "  - {name: price, type: UInt32}",
            "  - {name: price, type: UInt32}\n  - {name: qty, type: UInt8, default: '1'}",
        )
    )
    staged = cli("deploy", "--stage", *target)
    assert staged.exit_code == 0 and "staged version 2" in staged.output, staged.output
    names = _stage_names(db)
    assert names[1] == {
        "events__rtp_stage",
        "events__rtp_stage__local",
        "events__rtp_fwd_stage",
        "per_user__rtp_stage",
        "per_user__rtp_stage__local",
        "per_user_mv__rtp_stage",
    }, names[1]
    assert all(names[n] == names[1] for n in NODES), names
    for node in NODES:
        objects = _objects(node, db)
        assert objects["events__rtp_stage__local"][0] == "ReplicatedMergeTree", node
        assert objects["events__rtp_stage"][0] == "Distributed", node
        assert "qty" in _columns(node, db, "events__rtp_stage") and "qty" not in _columns(
            node, db, "events"
        )
    append(300, 200)  # while staged: both versions get them
    for table in ("events", "events__rtp_stage"):
        _settled(db, f"SELECT count(), uniqExact(id) FROM {{db}}.{table}", (500, 500))
    _settled(db, "SELECT countMerge(n) FROM {db}.per_user__rtp_stage", (500,))
    _settled(db, "SELECT countMerge(n) FROM {db}.per_user", (500,))

    promoted = cli("deploy", "promote", *target)
    assert promoted.exit_code == 0, promoted.output
    for node in NODES:
        assert "qty" in _columns(node, db, "events") and "qty" in _columns(
            node, db, "events__local"
        ), node
        assert "qty" not in _columns(node, db, "events__rtp_v1"), node
        assert _objects(node, db)["events__rtp_v1__local"][0] == "ReplicatedMergeTree", node
    append(500, 100)  # after promote: the kept version is fed too
    for table in ("events", "events__rtp_v1"):
        _settled(db, f"SELECT count(), uniqExact(id) FROM {{db}}.{table}", (600, 600))
    _settled(db, "SELECT sum(qty) FROM {db}.events", (600,))
    _settled(db, "SELECT countMerge(n) FROM {db}.per_user", (600,))
    _settled(db, "SELECT countMerge(n) FROM {db}.per_user__rtp_v1", (600,))

    rolled = cli("deploy", "rollback", *target)
    assert rolled.exit_code == 0 and "version 1 is live again" in rolled.output, rolled.output
    for node in NODES:
        assert "qty" not in _columns(node, db, "events"), node
        assert "qty" in _columns(node, db, "events__rtp_v2"), node
    append(600, 50)
    for table in ("events", "events__rtp_v2"):
        _settled(db, f"SELECT count(), uniqExact(id) FROM {{db}}.{table}", (650, 650))
    _settled(db, "SELECT countMerge(n) FROM {db}.per_user", (650,))
    _settled(db, "SELECT countMerge(n) FROM {db}.per_user__rtp_v2", (650,))

    assert cli("deploy", "--stage", *target).exit_code == 0
    discarded = cli("deploy", "discard", *target)
    assert discarded.exit_code == 0, discarded.output
    names = _stage_names(db)
    assert all(not {t for t in names[n] if "stage" in t} for n in NODES), names
    assert all(names[n] == names[1] for n in NODES), names
    _settled(db, "SELECT count(), uniqExact(id) FROM {db}.events", (650, 650))


def test_a_forward_query_feeding_a_staged_view_is_refused_before_tables(
    project_factory, cli, cluster_url
):
    root = project_factory(FILES, base=None)
    db, target = _db(cluster_url), ("-p", root, "--target", cluster_url)
    assert cli("deploy", *target).exit_code == 0
    (root / "datasources/events.yaml").write_text(
        textwrap.dedent(FILES["datasources/events.yaml"]).replace(
            "  - {name: price, type: UInt32}",
            "  - {name: price, type: UInt32}\n  - {name: qty, type: UInt8}",
        )
        + "forward_query: SELECT id, timestamp, user_id, product_id, category, price, "
        "toUInt8(1) AS qty\n"
    )
    staged = cli("deploy", "--stage", *target)
    assert staged.exit_code == 1 and "RTP518" in staged.output, staged.output
    assert "per_user_mv" in staged.output and "forward_query" in staged.output
    assert all(not names for names in _stage_names(db).values())
    discarded = cli("deploy", "discard", *target)
    assert discarded.exit_code == 0, discarded.output
    assert "discarded version 2" in discarded.output
