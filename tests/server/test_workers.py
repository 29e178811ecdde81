"""Several `rtp serve` processes on one ClickHouse server target, as a user runs them:
tokens, the JWT secret and deploys are shared through the target (tables of rtp's), so
it does not matter which process a request reaches.

Needs a real server: RTP_TEST_CLICKHOUSE_URL (a user with DDL rights, to deploy) and
RTP_TEST_CLICKHOUSE_SERVE_URL (the least-privilege rtp_server user, to serve). Each test
uses a database of its own, dropped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.serving import ROOT, free_port, stop, wait_healthy

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
SERVE_URL = os.environ.get("RTP_TEST_CLICKHOUSE_SERVE_URL")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("RTP_CLICKHOUSE_URL", None)

needs_server = pytest.mark.skipif(
    not (URL and SERVE_URL),
    reason="RTP_TEST_CLICKHOUSE_URL and RTP_TEST_CLICKHOUSE_SERVE_URL are not set: no "
    "ClickHouse server to serve from (.ci/services/clickhouse.sh starts one)",
)

# one node: 18.16 has no table CTEs to compose several with (another change's subject)
BY_USER = """
    nodes:
      - name: top
        sql: |
          SELECT product_id, sum(price) AS spent FROM events
          WHERE user_id = {{ String(user_id, 'u1', required=True) }}
          GROUP BY product_id
"""
SECOND = """
    nodes:
      - name: n
        sql: SELECT count() AS c FROM events
"""


@pytest.fixture
def target():
    """(deploy URL, serve URL) of a fresh database, dropped afterwards."""
    from rtp.engine.clickhouse import ClickHouseBackend

    database = f"rtp_w_{uuid.uuid4().hex[:10]}"
    deploy_url = URL.rsplit("/", 1)[0] + "/" + database
    serve_url = SERVE_URL.rsplit("/", 1)[0] + "/" + database
    yield deploy_url, serve_url
    admin = ClickHouseBackend(URL)
    try:
        admin.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        admin.close()


def rtp(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@contextlib.contextmanager
def serving(root: Path, url: str, *args: str):
    """`rtp serve -t url` on a free port until the block ends: (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtp.cli.main", "serve", "-p", str(root), "-t", url]
        + ["--port", str(port), *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, 60)
        yield proc, base
    finally:
        stop(proc)


def status(base: str, path: str, token: str) -> int:
    # tokens are URL-safe text (rtp_ + base64url, or a JWT's base64url parts and dots)
    sep = "&" if "?" in path else "?"
    return httpx.get(f"{base}{path}{sep}token={token}", timeout=10).status_code


def until(fn, limit: float) -> float:
    """Seconds until ``fn()`` is true; fails past ``limit`` seconds."""
    started = time.monotonic()
    while not fn():
        assert time.monotonic() - started < limit, f"not within {limit} s"
        time.sleep(0.02)
    return time.monotonic() - started


@needs_server
def test_two_servers_share_tokens_secret_and_deploys(project_factory, target):
    deploy_url, serve_url = target
    root = project_factory({"pipes/by_user.yaml": BY_USER})
    rtp("deploy", "-p", root, "-t", deploy_url)
    with serving(root, serve_url) as (a_proc, a), serving(root, serve_url) as (b_proc, b):
        admin = a_proc.stdout.readline().strip()
        assert admin.startswith("rtp_"), "A creates the admin token and prints it once"
        pipe = "/v0/pipes/by_user.json?user_id=u1"
        assert status(b, pipe, admin) == 200  # the admin token A printed works on B
        # a token created on A works on B at once
        r = httpx.post(
            f"{a}/v0/tokens",
            params={"name": "reader", "scope": "PIPES:READ:by_user", "token": admin},
        )
        assert r.status_code == 200, r.text
        reader = r.json()["token"]
        assert status(b, pipe, reader) == 200
        # revoked on B: refused by A within a second
        assert httpx.delete(f"{b}/v0/tokens/reader", params={"token": admin}).status_code == 204
        took = until(lambda: status(a, pipe, reader) == 403, 1.0)
        print(f"revoked on B, refused on A after {took * 1000:.0f} ms")
        # rtp token create/revoke against the target: both servers follow
        made = rtp(
            "token", "create", "cli", "-s", "PIPES:READ:by_user", "-p", root, "-t", serve_url
        )
        cli_token = made.stdout.strip()
        assert status(a, pipe, cli_token) == 200 and status(b, pipe, cli_token) == 200
        listed = json.loads(rtp("token", "list", "--json", "-p", root, "-t", serve_url).stdout)
        assert sorted(t["name"] for t in listed) == ["admin", "cli"]
        rtp("token", "revoke", "cli", "-p", root, "-t", serve_url)
        until(lambda: status(a, pipe, cli_token) == 403 and status(b, pipe, cli_token) == 403, 1.0)
        # a JWT minted by A (the target's secret) is accepted by B, and by `rtp token jwt`
        r = httpx.post(
            f"{a}/v0/tokens",
            params={"expiration_time": int(time.time()) + 600, "token": admin},
            json={"name": "web", "scopes": [{"type": "PIPES:READ", "resource": "by_user"}]},
        )
        assert status(b, pipe, r.json()["token"]) == 200
        minted = rtp("token", "jwt", "web", "-s", "PIPES:READ:by_user", "-p", root, "-t", serve_url)
        assert status(a, pipe, minted.stdout.strip()) == 200
        # a new pipe deployed through A: B serves it without a restart
        assert status(b, "/v0/pipes/second.json", admin) == 404
        (root / "pipes" / "second.yaml").write_text(SECOND.replace("\n    ", "\n").lstrip())
        r = httpx.post(f"{a}/v0/deploy", params={"token": admin}, json={}, timeout=120)
        assert r.status_code == 200, r.text
        assert status(a, "/v0/pipes/second.json", admin) == 200
        took = until(lambda: status(b, "/v0/pipes/second.json", admin) == 200, 1.5)
        print(f"deployed through A, served by B after {took * 1000:.0f} ms")
        health = httpx.get(f"{b}/healthz").json()
        assert health["release"]["matches"] is True and health["endpoints"] == 2


@needs_server
def test_workers_share_one_port_and_run_schedules_once(project_factory, target):
    deploy_url, serve_url = target
    root = project_factory(
        {
            "pipes/by_user.yaml": BY_USER,
            "datasources/snapshot.yaml": """
                columns:
                  - {name: at, type: String}
                  - {name: n, type: UInt64}
                sorting_key: [at]
            """,
            "pipes/tick.yaml": """
                nodes:
                  - name: q
                    sql: SELECT toString(now()) AS at, toUInt64(1) AS n
                type: copy
                target: snapshot
                schedule: '* * * * * *'
            """,
        }
    )
    rtp("deploy", "-p", root, "-t", deploy_url)
    started = time.monotonic()
    with serving(root, serve_url, "--workers", "3") as (proc, base):
        admin = proc.stdout.readline().strip()
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 3, children
        # every worker answers with the same tokens
        codes = {status(base, "/v0/pipes/by_user.json?user_id=u1", admin) for _ in range(30)}
        assert codes == {200}
        time.sleep(3.5)  # the copy fires every second: in worker 0 only

        r = httpx.get(
            f"{base}/v0/sql", params={"q": "SELECT count() AS c FROM snapshot", "token": admin}
        )
        copies = int(r.json()["data"][0]["c"])
        # one run a second at most (3 workers each running it would make ~3 a second)
        assert 2 <= copies <= time.monotonic() - started + 1, copies
        # a worker killed outright is started again; the server keeps answering
        os.kill(int(children[0]), signal.SIGKILL)
        until(
            lambda: (
                len(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()) == 3
                and int(children[0])
                not in map(
                    int, Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                )
            ),
            10,
        )
        until(lambda: status(base, "/v0/pipes/by_user.json?user_id=u1", admin) == 200, 10)
    err = " ".join(proc.stderr.read().split())
    assert proc.returncode == 0, err
    assert "worker 0" in err and "ended (signal 9); starting it again" in err


def test_print_settings_shows_processes_and_threads(project_factory):
    root = project_factory({"rtp.yaml": "name: shop\nserver:\n  workers: 3\n  threads: 6\n"})
    shown = json.loads(rtp("serve", "-p", root, "--print-settings").stdout)
    assert (shown["workers"], shown["threads"]) == (3, 6)
    shown = json.loads(rtp("serve", "-p", root, "--print-settings", "--workers", "2").stdout)
    assert (shown["workers"], shown["threads"]) == (2, 6) and "consumers" not in shown


def test_embedded_target_refuses_several_workers(project_factory):
    root = project_factory({"rtp.yaml": "name: shop\nserver:\n  workers: 2\n"})
    done = rtp("serve", "-p", root, "-t", "embedded", "--port", str(free_port()), check=False)
    assert done.returncode == 2
    assert "RTP107" in done.stderr + done.stdout
    assert "embedded target is served by one process" in " ".join(done.stderr.split())
    done = rtp("serve", "-p", root, "-t", "embedded", "--workers", "3", check=False)
    assert done.returncode == 2 and "--workers" in done.stderr + done.stdout


@needs_server
def test_tokens_json_is_imported_once(project_factory, target):
    deploy_url, serve_url = target
    root = project_factory({"pipes/by_user.yaml": BY_USER})
    old = rtp("token", "create", "old", "-s", "PIPES:READ:by_user", "-p", root, "-t", "embedded")
    old_token = old.stdout.strip()
    secret = rtp("token", "secret", "-p", root, "-t", "embedded").stdout.strip()
    rtp("deploy", "-p", root, "-t", deploy_url)
    first = rtp("token", "list", "--json", "-p", root, "-t", serve_url)
    assert "imported 1 token(s) and the JWT secret" in " ".join(first.stderr.split())
    assert [t["name"] for t in json.loads(first.stdout)] == ["old"]
    again = rtp("token", "list", "-p", root, "-t", serve_url)
    assert "imported" not in again.stderr
    assert rtp("token", "secret", "-p", root, "-t", serve_url).stdout.strip() == secret
    with serving(root, serve_url) as (proc, base):
        # the imported admin-less store gets its admin token; the old token still works
        assert proc.stdout.readline().startswith("rtp_")
        assert status(base, "/v0/pipes/by_user.json?user_id=u1", old_token) == 200
    # what the target holds: hashes, never a token's text
    from rtp.engine.clickhouse import ClickHouseBackend

    backend = ClickHouseBackend(deploy_url)
    try:
        _, rows = backend.query("SELECT hash, name FROM _rtp_tokens")
    finally:
        backend.close()
    assert old_token not in json.dumps(rows) and len(rows) == 2


@needs_server
def test_a_server_that_cannot_reach_the_target_refuses_tokens(target):
    """Past STALE_AFTER seconds without an answer from the target, a token is refused
    (503) rather than accepted while it may have been revoked meanwhile."""
    from rtp.engine.clickhouse import ClickHouseBackend
    from rtp.errors import EngineError
    from rtp.server import tokens_target

    deploy_url, _ = target
    backend = ClickHouseBackend(deploy_url)
    try:
        store = tokens_target.TargetTokenStore(backend, watched=True)
        token = store.create("x", ["ADMIN"])
        assert store.grant(token).name == "x"
        store._fresh -= tokens_target.STALE_AFTER + 1  # the watcher got no answer since
        with pytest.raises(EngineError) as caught:
            store.grant(token)
        assert caught.value.code == "RTP501"
    finally:
        backend.close()


@needs_server
def test_a_deploy_records_a_release_only_when_the_files_change(project_factory, target):
    from rtp.engine.clickhouse import ClickHouseBackend

    deploy_url, _ = target
    root = project_factory({"pipes/by_user.yaml": BY_USER})
    rtp("deploy", "-p", root, "-t", deploy_url)
    rtp("deploy", "-p", root, "-t", deploy_url)  # unchanged: no new release
    (root / "pipes" / "second.yaml").write_text(SECOND.replace("\n    ", "\n").lstrip())
    rtp("deploy", "-p", root, "-t", deploy_url)
    backend = ClickHouseBackend(deploy_url)
    try:
        _, rows = backend.query("SELECT digest FROM _rtp_releases ORDER BY version")
    finally:
        backend.close()
    assert len(rows) == 2 and rows[0][0] != rows[1][0]


@needs_server
def test_a_serving_user_without_rtps_tables_is_told_to_deploy(project_factory, target):
    from rtp.engine.clickhouse import ClickHouseBackend

    deploy_url, serve_url = target
    ClickHouseBackend(deploy_url).close()  # creates the database, nothing in it
    root = project_factory({"pipes/by_user.yaml": BY_USER})
    done = rtp("serve", "-p", root, "-t", serve_url, "--port", str(free_port()), check=False)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert "RTP501" in said and "run `rtp deploy`" in said and "_rtp_tokens" in said


@needs_server
def test_rtp_jwt_secret_keeps_the_secret_out_of_the_target(project_factory, target, monkeypatch):
    from rtp.engine.clickhouse import ClickHouseBackend

    deploy_url, _ = target
    root = project_factory({"pipes/by_user.yaml": BY_USER})
    rtp("deploy", "-p", root, "-t", deploy_url)
    monkeypatch.setitem(ENV, "RTP_JWT_SECRET", "s3cret-from-the-vault")
    rtp("token", "create", "site", "-s", "PIPES:READ:by_user", "-p", root, "-t", deploy_url)
    shown = rtp("token", "secret", "-p", root, "-t", deploy_url).stdout.strip()
    assert shown == "s3cret-from-the-vault"
    backend = ClickHouseBackend(deploy_url)
    try:
        assert backend.query("SELECT count() FROM _rtp_secrets")[1] == [[0]]
    finally:
        backend.close()
