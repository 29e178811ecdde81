"""Server settings through the user's door: ``server:`` in rtp.yaml, ``RTP_SERVER_<NAME>``
and ``rtp serve`` flags, one precedence rule (flag > environment > rtp.yaml > default);
observed on a running ``rtp serve`` (429s of its rate limit) and with ``--print-settings``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
RATE_2 = "name: shop\nserver:\n  rate_limit: 2\n  max_body_bytes: 1MiB\n  batch_wait: 20ms\n"


def _env(**extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RTP_SERVER_") and k not in ("RTP_COPY_TIMEOUT", "RTP_SCHEDULES")
    }
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _rtp(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *map(str, args)],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _settings(root: Path, *flags, **env: str) -> dict:
    done = _rtp("serve", "-p", root, "--print-settings", *flags, env=_env(**env))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _statuses(root: Path, *flags, **env: str) -> list[int]:
    """Start `rtp serve --no-auth`, send 12 quick /v0/sql requests, stop it: the statuses."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtp.cli.main",
            "serve",
            "-p",
            str(root),
            "--port",
            str(port),
            "--no-auth",
            *flags,
        ],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        out = []
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(12):
                r = client.get("/v0/sql", params={"q": "SELECT 1 AS one"})
                if r.status_code == 429:
                    assert r.json()["code"] == "RTP406", r.text
                out.append(r.status_code)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_rate_limit_from_rtp_yaml_then_env_then_flag(project_factory):
    root = project_factory({"rtp.yaml": RATE_2})
    # rtp.yaml: 2 requests a second, a burst of 2 s worth (4): 12 quick requests meet 429s
    statuses = _statuses(root)
    assert statuses[0] == 200 and 429 in statuses, statuses
    # the environment overrides the file: unlimited
    assert _statuses(root, RTP_SERVER_RATE_LIMIT="0") == [200] * 12
    # a flag overrides the environment: limited again
    statuses = _statuses(root, "--rate-limit", "1", RTP_SERVER_RATE_LIMIT="0")
    assert statuses[0] == 200 and 429 in statuses, statuses


def test_print_settings_shows_each_layer(project_factory):
    root = project_factory({"rtp.yaml": RATE_2})
    base = _settings(root)
    assert (base["rate_limit"], base["max_body_bytes"], base["batch_wait"]) == (2.0, 2**20, 0.02)
    assert base["query_timeout"] == 10.0 and base["copy_timeout"] == 300.0  # defaults
    assert "control_token" not in base and "tokens_file" not in base  # never printed
    env = _settings(
        root,
        RTP_SERVER_RATE_LIMIT="5",
        RTP_SERVER_MAX_BODY_BYTES="2KiB",
        RTP_SERVER_CORS_ORIGINS="https://a.example, https://b.example",
        RTP_SERVER_SCHEDULES="off",
    )
    assert (env["rate_limit"], env["max_body_bytes"], env["schedules"]) == (5.0, 2048, False)
    assert env["cors_origins"] == ["https://a.example", "https://b.example"]
    assert env["batch_wait"] == 0.02  # still the file's
    flag = _settings(
        root,
        "--rate-limit",
        "7",
        "--max-memory",
        "1GiB",
        "--cors",
        "https://c",
        "--schedules",
        RTP_SERVER_RATE_LIMIT="5",
        RTP_SERVER_SCHEDULES="off",
    )
    assert (flag["rate_limit"], flag["schedules"], flag["cors_origins"]) == (
        7.0,
        True,
        ["https://c"],
    )
    # ADMIN's memory follows the caller's (4x) unless set itself
    assert (flag["max_memory_usage"], flag["admin_max_memory_usage"]) == (2**30, 4 * 2**30)


def test_deprecated_environment_names_still_work(project_factory):
    root = project_factory()
    old = _settings(root, RTP_COPY_TIMEOUT="8", RTP_SCHEDULES="off")
    assert (old["copy_timeout"], old["schedules"]) == (8.0, False)
    new = _settings(root, RTP_COPY_TIMEOUT="8", RTP_SERVER_COPY_TIMEOUT="9")
    assert new["copy_timeout"] == 9.0


def test_bad_server_value_is_reported_at_its_line_and_column(project_factory):
    root = project_factory(
        {"rtp.yaml": "name: shop\nserver:\n  workers: 4\n  query_timeout: soon\n  rate_limt: 2\n"}
    )
    done = _rtp("check", "-p", root)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "rtp.yaml:4:18: error RTP107 server.query_timeout must be seconds > 0" in out, out
    assert "rtp.yaml:5:3: error RTP102 unknown key 'rate_limt' in server" in out, out
    assert "did you mean 'rate_limit'?" in out
    # rtp serve refuses to start rather than serve with a default the file didn't ask for
    done = _rtp("serve", "-p", root, "--print-settings")
    assert done.returncode == 2 and "rtp.yaml:4:18" in done.stdout + done.stderr


def test_bad_env_and_flag_values_name_their_source(project_factory):
    root = project_factory()
    done = _rtp("serve", "-p", root, "--print-settings", env=_env(RTP_SERVER_RATELIMIT="2"))
    assert done.returncode == 2
    assert "unknown server setting RTP_SERVER_RATELIMIT" in done.stderr + done.stdout
    assert "did you mean RTP_SERVER_RATE_LIMIT?" in done.stderr + done.stdout
    done = _rtp("serve", "-p", root, "--print-settings", "--max-body-bytes", "lots")
    assert done.returncode == 2
    assert "--max-body-bytes" in done.stderr + done.stdout
    assert "max_body_bytes must be a size in bytes >= 1" in done.stderr + done.stdout
