"""`rtp check` warns (RTP312) when a cluster target would split a materialized view's
groups across shards in a way its target can't combine. Offline: no cluster needed."""

from __future__ import annotations

import json

import pytest

from tests.cluster.shop import FILES

CLUSTER_YAML = """
    name: shop
    targets:
      prod: {url: "clickhouse://ch1.internal:9000/shop", cluster: shop_cluster}
"""
LAST_SEEN = {
    "datasources/last_seen.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: at, type: DateTime}
        engine: {type: ReplacingMergeTree, ver: at}
        sorting_key: [user_id]
    """,
    "pipes/last_seen_mv.yaml": """
        type: materialized
        target: last_seen
        nodes:
          - {name: latest, sql: "SELECT user_id, max(timestamp) AS at FROM events GROUP BY user_id"}
    """,
}


def _warnings(cli, root) -> list[dict]:
    result = cli("check", "-p", root, "--format", "json")
    return [p for p in json.loads(result.output)["problems"] if p["code"] == "RTP312"]


@pytest.mark.parametrize(
    ("shard_key", "warned"), [(None, True), ("cityHash64(user_id)", False), ("rand()", True)]
)
def test_a_view_whose_groups_span_shards_is_warned(project_factory, cli, shard_key, warned):
    events = FILES["datasources/events.yaml"].replace(
        "shard_key: cityHash64(user_id)", f"shard_key: {shard_key}" if shard_key else ""
    )
    root = project_factory(
        {**FILES, **LAST_SEEN, "rtp.yaml": CLUSTER_YAML, "datasources/events.yaml": events},
        base=None,
    )
    found = _warnings(cli, root)
    assert bool(found) == warned, found
    if warned:
        assert found[0]["severity"] == "warning"
        assert (
            "view 'last_seen_mv' groups by user_id into last_seen (ReplacingMergeTree)"
            in (found[0]["message"])
        )
        assert found[0]["file"].endswith("last_seen_mv.yaml")


def test_states_and_single_server_projects_are_not_warned(project_factory, cli):
    events = FILES["datasources/events.yaml"].replace("shard_key: cityHash64(user_id)", "")
    # per_user keeps -State columns: partial rows of a group merge on read
    clustered = {**FILES, "rtp.yaml": CLUSTER_YAML, "datasources/events.yaml": events}
    assert _warnings(cli, project_factory(clustered, base=None)) == []
    # no cluster target: nothing to warn about
    single = {**FILES, **LAST_SEEN, "datasources/events.yaml": events}
    assert _warnings(cli, project_factory(single, base=None)) == []
