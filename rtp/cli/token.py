"""``rtp token``: create, list and revoke the tokens of a project's server, and mint JWTs.

Tokens of the embedded target live in ``<project>/.rtp/tokens.json`` (hashed); those of a
ClickHouse server target in the target's own tables (``_rtp_tokens``, ``_rtp_secrets``:
rtp.server.tokens_target), shared by every ``rtp serve`` of that target. Either way a
running ``rtp serve`` sees changes within a second. ``--target`` chooses, as for
``rtp deploy``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, project_root
from rtp.cli.output import console, err_console, exit_for, fail
from rtp.engine.paths import tokens_file
from rtp.errors import RtpError
from rtp.server.tokens import Tokens, TokenStore, encode_jwt, parse_scope

app = typer.Typer(help="Manage the tokens that callers send to `rtp serve`.", no_args_is_help=True)


def _store(project: Path | None, target: str | None) -> Tokens:
    """The token store of ``target``: the file for the embedded target (never opening
    the engine, which ``rtp serve`` may hold), the target's tables for a server (an
    existing ``.rtp/tokens.json`` is imported into a target that never had tokens,
    once). Raises ProjectError RTP110 (unknown target), EngineError RTP501."""
    from rtp.engine.target import open_backend, resolve_target
    from rtp.project.load import load_project

    root = project_root(project)
    model, _ = load_project(root)
    if resolve_target(model, target) == "embedded":
        return TokenStore(tokens_file(root))
    from rtp.server.tokens_target import TargetTokenStore

    store = TargetTokenStore(open_backend(model, target, command="rtp token"))
    imported = store.import_file(tokens_file(root))
    if imported is not None:
        err_console.print(
            f"imported {imported} token(s) and the JWT secret from .rtp/tokens.json into "
            "the target (_rtp_tokens, _rtp_secrets), once"
        )
    return store


@app.command("create")
def create(
    name: str = typer.Argument(..., help="A name to recognise the token by."),
    scope: list[str] = typer.Option(
        ...,
        "--scope",
        "-s",
        help="`PIPES:READ:<pipe>`, "
        "`DATASOURCES:APPEND:<ds>`, `DATASOURCES:READ:<ds>`, `STAGING:READ:<pipe>` or "
        "`ADMIN`; repeat for several.",
    ),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    try:
        token = _store(project, target).create(name, scope)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    err_console.print(
        f"created token [bold]{name}[/bold] ({', '.join(scope)}); it is shown only now:"
    )
    print(token)


@app.command("list")
def list_tokens(
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show every token's name, scopes and creation time (never the token)."""
    try:
        store = _store(project, target)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    tokens = [{k: t[k] for k in ("name", "scopes", "created")} for t in store.tokens]
    if as_json:
        print(json.dumps(tokens, indent=2))
        return
    if not tokens:
        console.print("no tokens yet; `rtp serve` creates the admin token on first run")
    for t in tokens:
        console.print(f"{t['name']:<20} {t['created']}  {' '.join(t['scopes'])}")


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The token's name."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Delete a token; callers using it get 403 from then on (on every server of a
    ClickHouse target within a second)."""
    try:
        _store(project, target).revoke(name)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    console.print(f"revoked token [bold]{name}[/bold]")


@app.command("jwt")
def jwt(
    name: str = typer.Argument(..., help="Name carried in the token."),
    scope: list[str] = typer.Option(..., "--scope", "-s", help="`PIPES:READ:<pipe>` (repeatable)."),
    fixed: list[str] = typer.Option(
        [],
        "--fixed",
        "-f",
        help="param=value the caller can't override (applies to every scope; repeatable).",
    ),
    expires: int = typer.Option(3600, "--expires", min=1, help="Seconds until it expires."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Mint an HS256 JWT signed with this project's secret (`rtp token secret` prints it
    for signing in your own backend)."""
    try:
        params = {}
        for item in fixed:
            key, sep, value = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--fixed {item}: expected param=value")
            params[key] = value
        scopes = []
        for text in scope:
            kind, _, resource = parse_scope(text).rpartition(":")
            entry = {"type": kind, "resource": resource}
            if params:
                entry["fixed_params"] = params
            scopes.append(entry)
        store = _store(project, target)
        now = int(time.time())
        claims = {"name": name, "iat": now, "exp": now + expires, "scopes": scopes}
        print(encode_jwt(claims, store.jwt_secret))
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None


@app.command("secret")
def secret(project: Path = PROJECT_OPTION, target: str = TARGET_OPTION) -> None:
    """Print the secret JWTs are signed with (keep it on your servers only;
    ``RTP_JWT_SECRET``, when set, is the secret of a ClickHouse target's servers)."""
    try:
        print(_store(project, target).jwt_secret)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
