"""Options and steps shared by commands."""

from __future__ import annotations

from pathlib import Path

import typer

from rtp.project.load import find_root

PROJECT_OPTION = typer.Option(
    None, "--project", "-p", help="Project folder (default: the nearest folder above the "
    "current one holding rtp.yaml).", file_okay=False,
)


def project_root(project: Path | None) -> Path:
    """The project's root folder. Raises ProjectError (RTP100) when there is none."""
    return find_root(project or Path.cwd())
