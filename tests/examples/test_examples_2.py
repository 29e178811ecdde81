"""The feed and marketing examples through the CLI a user runs: `rtp check` and `rtp test`
pass with every case, and the feed's hourly copy pipe writes what its fixture stands for."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}


def rtp(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(("name", "cases"), [("feed", 11), ("marketing", 18)])
def test_example_checks_and_passes_its_tests(name, cases):
    project = str(EXAMPLES / name)
    check = rtp("check", "-p", project)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip().startswith("ok"), check.stdout
    result = rtp("test", "-p", project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{cases} passed, 0 failed", result.stdout
    assert result.stdout.count("  PASS ") == cases


FIXTURE_TIME = dt.datetime(2026, 11, 25, 12, 0, 0)


def test_feed_copy_pipe_scores_authors(tmp_path):
    """`rtp copy run author_scores_hourly` on the fixture's posts and reactions, moved so
    the fixture's 12:00 is now (the copy scores the last 7 days before now()).

    Expected, from fixtures/posts.ndjson and reactions.ndjson; p09 (12:30) is in the
    future and left out; points are like 1, comment 2, share 3, hide -3:
      a_kim  p02 p08 p12: 3 posts, no reactions              -> 0 / 3 = 0
      a_lee  p01 p06 p10: 3 posts, ana's like on p06         -> 1 / 3 = 0.333
      a_max  p03 p07:     2 posts, comment p07 + share p03   -> 5 / 2 = 2.5
      a_spam p05 p11:     2 posts, cy's hide on p05          -> -3 / 2 = -1.5
      a_zoe  p04 p13:     2 posts, cy's share of p13         -> 3 / 2 = 1.5
    """
    project = tmp_path / "feed"
    shutil.copytree(EXAMPLES / "feed", project, ignore=shutil.ignore_patterns(".rtp"))
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    shift = now - FIXTURE_TIME
    moved = tmp_path / "moved"
    moved.mkdir()
    for name, column in (("posts", "created_at"), ("reactions", "timestamp")):
        rows = []
        for line in (project / "fixtures" / f"{name}.ndjson").read_text().splitlines():
            row = json.loads(line)
            row[column] = str(dt.datetime.fromisoformat(row[column]) + shift)
            rows.append(json.dumps(row))
        (moved / f"{name}.ndjson").write_text("\n".join(rows) + "\n")
    deploy = rtp("deploy", "-p", str(project))
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    for name in ("posts", "reactions"):
        append = rtp("append", name, str(moved / f"{name}.ndjson"), "-p", str(project))
        assert append.returncode == 0, append.stdout + append.stderr
    copy = rtp("copy", "run", "author_scores_hourly", "-p", str(project))
    assert copy.returncode == 0, copy.stdout + copy.stderr
    assert "author_scores has 5 row(s)" in copy.stdout, copy.stdout
    out = rtp(
        "sql",
        "-p",
        str(project),
        "-f",
        "json",
        "SELECT author_id, posts, positive, hides, quality, "
        "computed_at >= now() - INTERVAL 5 MINUTE AS recent "
        "FROM author_scores ORDER BY author_id",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = json.loads(out.stdout)
    rows = rows["data"] if isinstance(rows, dict) else rows
    assert [
        (
            r["author_id"],
            int(r["posts"]),
            int(r["positive"]),
            int(r["hides"]),
            r["quality"],
            bool(r["recent"]),
        )
        for r in rows
    ] == [
        ("a_kim", 3, 0, 0, 0, True),
        ("a_lee", 3, 1, 0, 0.333, True),
        ("a_max", 2, 2, 0, 2.5, True),
        ("a_spam", 2, 0, 1, -1.5, True),
        ("a_zoe", 2, 1, 0, 1.5, True),
    ]
