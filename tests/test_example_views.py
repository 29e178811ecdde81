"""The root project's materialized views keep the same state however the events arrive.

A view sees one insert at a time: co_views pairs an insert's events with the products
their sessions touched in earlier inserts, and the per-shopper rows merge aggregate
states across inserts. So the fixture events appended in several inserts that split
sessions must leave the same co-views, shopper rows and interests as one insert, and the
endpoints' answers must not change. Through the CLI, as separate processes (one
embedded engine per process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

STATE = {
    "co_views": "SELECT product_id, other_id, finalizeAggregation(sessions) AS s, "
    "finalizeAggregation(purchase_sessions) AS b FROM "
    "(SELECT product_id, other_id, uniqCombinedMergeState(12)(sessions) AS sessions, "
    "uniqCombinedIfMergeState(12)(purchase_sessions) AS purchase_sessions "
    "FROM co_views GROUP BY product_id, other_id) ORDER BY product_id, other_id",
    "shoppers": "SELECT user_id, uniqMerge(visits) AS v, uniqIfMerge(orders) AS o, "
    "uniqIfMerge(carted_or_bought) AS c, round(sum(spent), 2) AS s, "
    "arraySort(groupUniqArrayArray(purchased)) AS p, argMaxMerge(last_session) AS l, "
    "argMaxIfMerge(last_cart_session) AS lc, argMaxIfMerge(last_purchase_session) AS lp, "
    "max(last_seen) AS ls "
    "FROM shoppers GROUP BY user_id ORDER BY user_id",
    "shopper_interests": "SELECT user_id, dimension, value, "
    "round(exponentialMovingAverageMerge(24)(interest), 9) AS i, sum(events) AS e, "
    "max(last_hour) AS h FROM shopper_interests GROUP BY user_id, dimension, value "
    "ORDER BY user_id, dimension, value",
}


def rtp(project: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args, "-p", str(project)],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def copy(dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(ROOT / "rtp.yaml", dest / "rtp.yaml")
    for folder in ("datasources", "pipes", "connections", "examples/storefront"):
        shutil.copytree(ROOT / folder, dest / folder)
    return dest


def state(project: Path) -> dict[str, list]:
    return {
        name: json.loads(rtp(project, "sql", sql, "-f", "json"))["data"]
        for name, sql in STATE.items()
    }


def test_views_keep_the_same_state_whatever_the_inserts(tmp_path):
    events = (ROOT / "fixtures" / "events.ndjson").read_text().splitlines()
    # in time order, in four inserts: alice's, bob's and carol's sessions span them
    events.sort(key=lambda line: json.loads(line)["timestamp"])
    one, split = copy(tmp_path / "one"), copy(tmp_path / "split")
    for project in (one, split):
        rtp(project, "deploy")
    (tmp_path / "all.ndjson").write_text("\n".join(events) + "\n")
    rtp(one, "append", "events", str(tmp_path / "all.ndjson"))
    cuts = [0, 16, 30, 42, len(events)]
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        part = tmp_path / f"part{i}.ndjson"
        part.write_text("\n".join(events[a:b]) + "\n")
        rtp(split, "append", "events", str(part))
    whole, parts = state(one), state(split)
    assert whole["co_views"], "co_views is empty"
    # a pair from two inserts: alice viewed the aviators at 11:40 and bought the sport
    # pair at 11:52, in the third and the fourth insert
    pairs = {(r["product_id"], r["other_id"]): (r["s"], r["b"]) for r in parts["co_views"]}
    assert pairs[("sg-aviator", "sg-sport")] == (1, 1)
    assert pairs[("sg-wayfarer", "sg-wayfarer")] == (4, 0)
    for name in STATE:
        assert parts[name] == whole[name], name
