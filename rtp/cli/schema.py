"""``rtp schema``: print the JSON Schema of a kind of project file, for editors."""

from __future__ import annotations

from enum import Enum

import typer


class Kind(str, Enum):
    project = "project"
    datasource = "datasource"
    pipe = "pipe"


def schema(
    kind: Kind = typer.Argument(..., help="project (rtp.yaml), datasource or pipe."),
) -> None:
    """Print the JSON Schema of `rtp.yaml`, `datasources/*.yaml` or `pipes/*.yaml`.

    The same models validate the files in `rtp check`; `rtp init` writes these schemas
    into `schemas/` and points each file at its schema, so editors with a YAML language
    server complete and check them."""
    from rtp.project.schema import json_schema_text

    typer.echo(json_schema_text(kind.value), nl=False)
