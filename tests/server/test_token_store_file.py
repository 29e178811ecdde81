"""tokens.json is replaced atomically, private (0600) whatever was on disk before, and
concurrent writers (rtp token create while rtp serve creates its admin token) lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rtp.server import tokens as tokens_module
from rtp.server.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[2]


def test_token_file_is_private_even_over_a_stale_temp_file(cli, project_factory):
    root = project_factory()
    rtp_dir = root / ".rtp"
    for name in ("site", "other"):
        r = cli("token", "create", name, "--scope", "PIPES:READ:by_user", "-p", root)
        assert r.exit_code == 0, r.output
    # what an interrupted earlier write may leave behind, world-readable
    stale = rtp_dir / "tokens.tmp"
    stale.write_text("{}")
    os.chmod(stale, 0o644)
    assert cli("token", "revoke", "other", "-p", root).exit_code == 0
    assert (rtp_dir / "tokens.json").stat().st_mode & 0o777 == 0o600
    assert [t["name"] for t in json.loads((rtp_dir / "tokens.json").read_text())["tokens"]] == [
        "site"
    ]


def test_a_crash_mid_write_leaves_the_old_file_whole(project_factory, monkeypatch):
    root = project_factory()
    path = root / ".rtp" / "tokens.json"
    store = TokenStore(path)
    store.create("first", ["PIPES:READ:by_user"])
    before = path.read_text()

    def dump_half(data, out, **kwargs):
        out.write(json.dumps(data)[:20])
        raise OSError("disk full")

    monkeypatch.setattr(tokens_module.json, "dump", dump_half)
    with pytest.raises(OSError, match="disk full"):
        TokenStore(path).create("second", ["PIPES:READ:by_user"])
    monkeypatch.undo()
    assert path.read_text() == before
    assert [t["name"] for t in TokenStore(path).tokens] == ["first"]
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_writers_lose_no_token(project_factory):
    root = project_factory()
    path = root / ".rtp" / "tokens.json"
    script = textwrap.dedent("""
        import sys
        from rtp.server.tokens import TokenStore
        for i in range(15):
            TokenStore(sys.argv[1]).create(f"{sys.argv[2]}_{i}", ["PIPES:READ:by_user"])
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), f"w{n}"], env=env)
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    names = {t["name"] for t in TokenStore(path).tokens}
    assert names == {f"w{n}_{i}" for n in range(4) for i in range(15)}
