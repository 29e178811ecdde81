"""One build per entry point, and the same gate for the CLI and the server (rtp.ops)."""

from __future__ import annotations

import httpx
import pytest

import rtp.sql.compose as compose
from tests.conftest import MINIMAL, PER_USER

BROKEN_ENDPOINT = {  # loads and compiles; only the check rules (ClickHouse) refuse it
    "pipes/broken.yaml": """
        nodes:
          - name: b
            sql: SELECT no_such_column FROM events
    """,
}


@pytest.fixture
def compiles(monkeypatch):
    """How many times the project is compiled (every path goes through compile_project)."""
    calls = []
    real = compose.compile_project

    def counting(project, problems):
        calls.append(project.name)
        return real(project, problems)

    monkeypatch.setattr(compose, "compile_project", counting)
    for module in (
        "rtp.ops.build",
        "rtp.server.app",
        "rtp.deploy.plan",
        "rtp.deploy.copy",
        "rtp.deploy.health",
        "rtp.check",
    ):
        mod = __import__(module, fromlist=["x"])
        if hasattr(mod, "compile_project"):
            monkeypatch.setattr(mod, "compile_project", counting)
    return calls


@pytest.mark.parametrize(
    "command",
    [
        ("check",),
        ("graph",),
        ("deploy",),
        ("deploy", "--plan"),
        ("test",),
    ],
)
def test_each_command_compiles_once(project_factory, cli, compiles, command):
    root = project_factory({**MINIMAL, **PER_USER})
    result = cli(*command, "-p", root)
    assert result.exit_code == 0, result.stdout
    assert len(compiles) == 1, (command, compiles)


def test_copy_run_compiles_once(project_factory, cli, compiles):
    files = {
        **MINIMAL,
        "datasources/snap.yaml": """
        columns:
          - {name: user_id, type: String}
        sorting_key: [user_id]
    """,
        "pipes/snapshot.yaml": """
        type: copy
        target: snap
        nodes:
          - {name: a, sql: "SELECT DISTINCT user_id FROM events"}
    """,
    }
    root = project_factory(files)
    assert cli("deploy", "-p", root).exit_code == 0
    compiles.clear()
    result = cli("copy", "run", "snapshot", "-p", root)
    assert result.exit_code == 0, result.stdout
    assert len(compiles) == 1, compiles


def test_deploy_refuses_what_check_refuses(project_factory, cli):
    root = project_factory({**MINIMAL, **BROKEN_ENDPOINT})
    check = cli("check", "-p", root)
    assert check.exit_code == 1 and "no_such_column" in check.stdout
    deploy = cli("deploy", "-p", root)
    assert deploy.exit_code == 2, deploy.stdout
    assert "no_such_column" in deploy.stdout and "error(s)" in deploy.stdout
    # nothing was created
    assert (
        not (root / ".rtp" / "data").exists()
        or "events" not in cli("sql", "SHOW TABLES", "-p", root).stdout
    )


def test_server_deploy_refuses_it_the_same_way(project_factory):
    """POST /v0/deploy (what `rtp deploy` sends while a server holds the engine) runs the
    same build and gate: a broken endpoint is 400 RTP109 with every problem."""
    from rtp.engine.target import open_backend
    from rtp.ops.build import build
    from rtp.ops.deploy import deploy
    from rtp.server import ServerSettings, create_app

    root = project_factory(MINIMAL)
    built = build(root)
    backend = open_backend(built.project, "embedded", command="test")
    try:
        deploy(built, backend)
        app = create_app(built, backend, ServerSettings())
        (root / "pipes" / "broken.yaml").write_text(
            "nodes:\n  - name: b\n    sql: SELECT no_such_column FROM events\n"
        )

        async def call():
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://rtp"
            ) as client:
                return await client.post("/v0/deploy", json={})

        import anyio

        r = anyio.run(call)
    finally:
        backend.close()
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "RTP109"
    assert any("no_such_column" in p["message"] for p in body["problems"]), body
    assert all(p["file"] for p in body["problems"])
