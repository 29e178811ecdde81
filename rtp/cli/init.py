"""``rtp init``: scaffold a project that shows every kind of file."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import typer

from rtp.cli.output import console, err_console

_FILES = (
    "rtp.yaml",
    "datasources/events.yaml",
    "pipes/top_products.yaml",
    "fixtures/events.ndjson",
    "tests/top_products.yaml",
    "gitignore",
)
# JSON Schemas the YAML files name on their first line (`# yaml-language-server: $schema=`).
# A relative path to a copy in the project, not a URL: it works offline, in CI and behind
# firewalls, and it always matches the rtp version that wrote the project (`rtp schema`
# prints the current ones after an upgrade).
_SCHEMAS = ("project", "datasource", "pipe")


def init(
    directory: Path = typer.Argument(Path("."), help="Folder to create the project in."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
) -> None:
    """Create a working project: rtp.yaml, a datasource, an endpoint pipe, a fixture and
    a test case."""
    directory = directory.resolve()
    name = re.sub(r"[^A-Za-z0-9_]", "_", directory.name) or "project"
    if not re.match(r"[A-Za-z_]", name):
        name = f"p_{name}"
    existing = [
        f for f in (*_FILES, *map(_schema_file, _SCHEMAS)) if (directory / _target(f)).exists()
    ]
    if existing and not force:
        err_console.print(
            f"[red]error[/red] {directory} already has "
            f"{', '.join(_target(f) for f in existing)}; "
            "pass --force to overwrite"
        )
        raise typer.Exit(2)
    source = resources.files("rtp") / "scaffold"
    for rel in _FILES:
        text = (source / rel).read_text(encoding="utf-8").replace("{{name}}", name)
        path = directory / _target(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(f"  [green]created[/green] {path.relative_to(directory.parent)}")
    from rtp.project.schema import json_schema_text

    for kind in _SCHEMAS:
        path = directory / _schema_file(kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json_schema_text(kind), encoding="utf-8")
        console.print(f"  [green]created[/green] {path.relative_to(directory.parent)}")
    rel_dir = directory.name
    console.print(f"\nNext: [bold]cd {rel_dir} && rtp check[/bold]")


def _target(rel: str) -> str:
    return ".gitignore" if rel == "gitignore" else rel


def _schema_file(kind: str) -> str:
    return f"schemas/{kind}.schema.json"
