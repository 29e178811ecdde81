"""The command line: version, help, init, check and graph as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rtp import __version__
from tests.conftest import PER_USER


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"rtp {__version__}"


@pytest.mark.parametrize("command", ["init", "check", "graph"])
def test_every_command_has_help(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_init_then_check_is_clean(tmp_path, cli):
    result = cli("init", tmp_path / "demo")
    assert result.exit_code == 0
    for rel in (
        "rtp.yaml",
        "datasources/events.yaml",
        "pipes/top_products.yaml",
        "fixtures/events.ndjson",
        "tests/top_products.yaml",
        ".gitignore",
    ):
        assert (tmp_path / "demo" / rel).is_file(), rel
    assert "name: demo" in (tmp_path / "demo" / "rtp.yaml").read_text()
    result = cli("check", "-p", tmp_path / "demo")
    assert result.exit_code == 0, result.stdout
    assert "ok 1 datasources, 1 pipes checked" in result.stdout


def test_init_refuses_to_overwrite(tmp_path, cli):
    assert cli("init", tmp_path).exit_code == 0
    (tmp_path / "rtp.yaml").write_text("name: mine\n")
    result = cli("init", tmp_path)
    assert result.exit_code == 2 and "--force" in result.stderr
    assert (tmp_path / "rtp.yaml").read_text() == "name: mine\n"


def test_check_finds_project_from_a_subfolder(project_factory, cli, monkeypatch):
    root = project_factory()
    (root / "pipes").mkdir(exist_ok=True)
    monkeypatch.chdir(root / "pipes")
    assert cli("check").exit_code == 0


def test_graph_shows_flow(project_factory, cli):
    root = project_factory(
        {
            **PER_USER,
            "pipes/top_users.yaml": """
            nodes:
              - {name: a, sql: "SELECT user_id, n FROM per_user ORDER BY n DESC"}
        """,
        }
    )
    result = cli("graph", "-p", root)
    assert result.exit_code == 0
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    flat = "\n".join(lines)
    # events -> mv -> per_user -> top_users, and events -> by_user
    order = [
        flat.index(s)
        for s in (
            "events datasource",
            "mv materialized",
            "per_user datasource",
            "top_users endpoint",
        )
    ]
    assert order == sorted(order)
    assert "by_user endpoint" in flat
    assert flat.count("per_user datasource") == 1  # a target is not a root of its own


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"rtp {__version__}"


def test_help_keeps_placeholders_and_joins_lines(cli):
    out = " ".join(cli("--help").stdout.split())
    assert "tests/<pipe>.yaml" in out and "<datasource>_quarantine" in out
    assert "every node's SQL against embedded ClickHouse" in out.replace("│ ", "")


def test_cli_start_does_not_load_the_server_stack():
    """Every command pays for what the CLI imports at start; FastAPI, uvicorn and httpx
    belong to the commands that serve or call a server."""
    code = (
        "import sys, rtp.cli.main; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
