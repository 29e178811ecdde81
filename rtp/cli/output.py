"""How errors and problems look in a terminal and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from rtp.errors import RtpError, exit_code, source_line

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def render_problem(error: RtpError, root: Path | None, out: Console = console) -> None:
    """``file:line:col: error RTP200 message``, the line with the span underlined, a hint."""
    color = "red" if error.severity == "error" else "yellow"
    where = f"{error.location}: " if error.location else ""
    out.print(
        f"[bold]{escape(where)}[/bold][{color}]{error.severity}[/{color}] "
        f"[dim]{error.code}[/dim] {escape(error.message)}"
    )
    loc = error.location
    if loc and loc.line and root is not None:
        text = source_line(root, loc)
        if text is not None:
            gutter = f"{loc.line:>5} | "
            out.print(f"[dim]{gutter}[/dim]{escape(text)}")
            col = max(1, loc.column)
            width = max(1, min(loc.length, max(1, len(text) - col + 1)))
            out.print(
                f"[dim]{' ' * (len(gutter) - 2)}| [/dim]{' ' * (col - 1)}"
                f"[{color}]{'^' * width}[/{color}]"
            )
    if error.hint:
        out.print(f"      [cyan]hint:[/cyan] {escape(error.hint)}")


def fail(error: RtpError, root: Path | None = None, *, as_json: bool = False) -> None:
    """Print one error on stderr (or as JSON on stdout)."""
    if as_json:
        print(json.dumps({"ok": False, "problems": [error.to_dict()]}, indent=2))
    else:
        render_problem(error, root, err_console)


def exit_for(error: RtpError) -> typer.Exit:
    """The exit for a command stopped by ``error``: its code family's exit code
    (:data:`rtp.errors.FAMILIES`): 2 for usage, project and input errors, 1 when the
    engine failed. Use as ``raise exit_for(exc) from None`` after :func:`fail`."""
    return typer.Exit(exit_code(error))
