"""The ``rtp`` application: registers one module per command and maps errors to exits.

Exit codes: 0 success, 1 the command ran and found problems (check, test), 2 usage or
project errors (no rtp.yaml, bad flags).
"""

from __future__ import annotations

import sys

import typer

from rtp import __version__
from rtp.cli import (
    append,
    check,
    connect,
    copy,
    deploy,
    dev,
    explain,
    graph,
    init,
    schema,
    serve,
    sql,
    status,
    test,
    token,
)
from rtp.cli.output import fail
from rtp.errors import RtpError

app = typer.Typer(
    name="rtp",
    help="Real-time data APIs on ClickHouse: datasources, pipes and typed endpoints "
    "declared in files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstring lines of a paragraph join, as in prose
)


def _version(value: bool) -> None:
    if value:
        print(f"rtp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show rtp's version and exit."
    ),
) -> None:
    """Real-time data APIs on ClickHouse."""


app.command("init")(init.init)
app.command("check")(check.check)
app.command("graph")(graph.graph)
app.command("test")(test.test)
app.add_typer(deploy.app, name="deploy")
app.command("sql")(sql.sql)
app.command("explain")(explain.explain)
app.command("append")(append.append)
app.add_typer(copy.app, name="copy")
app.command("serve")(serve.serve)
app.command("dev")(dev.dev)
app.add_typer(token.app, name="token")
app.command("schema")(schema.schema)
app.command("connect")(connect.connect)
app.command("status")(status.status)


def main() -> None:
    try:
        app()
    except RtpError as exc:  # anything a command didn't report itself
        fail(exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
