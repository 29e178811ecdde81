"""Everything rtp keeps under <project>/.rtp (database files, tokens, the owner record)
is private to the user who runs rtp: `.rtp` is 0700 and nothing under it is readable by
the group or others."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree(folder: Path) -> list[Path]:
    """``folder`` and everything under it, read while a live server may be merging parts:
    a temporary part folder that vanishes mid-walk is skipped, not an error."""
    found = [folder]
    for top, dirs, files in os.walk(folder):  # os.walk skips folders gone before listing
        found += [Path(top, name) for name in dirs + files]
    return found


def open_to_others(folder: Path) -> list[str]:
    """Files and folders under ``folder`` (itself included) with any group/other bit."""
    found = []
    for path in tree(folder):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a merge removed it after the listing
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{stat.filemode(mode)} {path.relative_to(folder.parent)}")
    return found


def rtp(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_writes_private_files(project_factory):
    root = project_factory()
    r = rtp("deploy", "-p", root)
    assert r.returncode == 0, r.stderr
    files = [p for p in (root / ".rtp").rglob("*") if p.is_file()]
    assert len(files) > 5  # the engine's metadata and parts are there to check
    assert (root / ".rtp").stat().st_mode & 0o777 == 0o700
    assert open_to_others(root / ".rtp") == []


def test_an_open_rtp_folder_from_an_older_rtp_is_made_private(project_factory, cli):
    root = project_factory()
    (root / ".rtp").mkdir()
    os.chmod(root / ".rtp", 0o755)
    r = cli("token", "create", "site", "--scope", "PIPES:READ:by_user", "-p", root)
    assert r.exit_code == 0, r.output
    assert (root / ".rtp").stat().st_mode & 0o777 == 0o700
    assert open_to_others(root / ".rtp") == []


def test_the_process_umask_is_restored_when_the_engine_closes(project_factory, cli):
    root = project_factory()
    before = os.umask(0o022)
    try:
        r = cli("deploy", "-p", root)
        assert r.exit_code == 0, r.output
        assert os.umask(0o022) == 0o022  # rtp's own files were private; ours aren't
    finally:
        os.umask(before)
    assert open_to_others(root / ".rtp") == []
