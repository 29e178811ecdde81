"""``rtp token``: create, list and revoke the tokens of a project's server, and mint JWTs.

Tokens live in ``<project>/.rtp/tokens.json`` (hashed); a running ``rtp serve`` sees
changes within a second.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, project_root
from rtp.cli.output import console, err_console, exit_for, fail
from rtp.engine.paths import tokens_file
from rtp.errors import RtpError
from rtp.server.tokens import TokenStore, encode_jwt, parse_scope

app = typer.Typer(help="Manage the tokens that callers send to `rtp serve`.", no_args_is_help=True)


def _store(project: Path | None) -> TokenStore:
    return TokenStore(tokens_file(project_root(project)))


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
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    try:
        token = _store(project).create(name, scope)
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
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show every token's name, scopes and creation time (never the token)."""
    tokens = [{k: t[k] for k in ("name", "scopes", "created")} for t in _store(project).tokens]
    if as_json:
        print(json.dumps(tokens, indent=2))
        return
    if not tokens:
        console.print("no tokens yet; `rtp serve` creates the admin token on first run")
    for t in tokens:
        console.print(f"{t['name']:<20} {t['created']}  {' '.join(t['scopes'])}")


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The token's name."), project: Path = PROJECT_OPTION
) -> None:
    """Delete a token; callers using it get 403 from then on."""
    try:
        _store(project).revoke(name)
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
        store = _store(project)
        now = int(time.time())
        claims = {"name": name, "iat": now, "exp": now + expires, "scopes": scopes}
        print(encode_jwt(claims, store.jwt_secret))
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None


@app.command("secret")
def secret(project: Path = PROJECT_OPTION) -> None:
    """Print the secret JWTs are signed with (keep it on your servers only)."""
    print(_store(project).jwt_secret)
