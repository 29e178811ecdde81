"""``rtp graph``: the dependency tree, datasources -> pipes -> endpoints."""

from __future__ import annotations

from pathlib import Path

from rich.tree import Tree

from rtp.cli.common import PROJECT_OPTION, project_root
from rtp.cli.output import console
from rtp.ops.build import build

_STYLE = {
    "datasource": "bold cyan",
    "endpoint": "green",
    "materialized": "magenta",
    "copy": "yellow",
    "internal": "dim",
}


def graph(project: Path = PROJECT_OPTION) -> None:
    """Print how data flows: each datasource, the pipes that read it, and what those
    pipes feed (materialized targets, endpoints)."""
    root = project_root(project)
    built = build(root, check=False)
    model, compiled = built.project, built.compiled
    readers: dict[str, list[str]] = {}
    for cpipe in compiled.pipes.values():
        for name in cpipe.reads:
            readers.setdefault(name, []).append(cpipe.name)
    targets = {p.target for p in model.pipes.values() if p.target}
    fed = {name for names in readers.values() for name in names}
    roots = [d for d in model.datasources if d not in targets]
    roots += [p for p in model.pipes if p not in fed and not compiled.pipes[p].reads]
    tree = Tree(f"[bold]{model.name}[/bold]")

    def label(name: str) -> str:
        if name in model.datasources:
            return f"[{_STYLE['datasource']}]{name}[/] [dim]datasource[/dim]"
        ptype = model.pipes[name].type
        return f"[{_STYLE[ptype]}]{name}[/] [dim]{ptype}[/dim]"

    def grow(branch: Tree, name: str, path: tuple[str, ...]) -> None:
        children = list(readers.get(name, []))
        pipe = model.pipes.get(name)
        if pipe and pipe.target:
            children.append(pipe.target)
        for child in children:
            if child in path:
                branch.add(f"[red]{child} (cycle)[/red]")
                continue
            grow(branch.add(label(child)), child, (*path, child))

    for name in roots:
        grow(tree.add(label(name)), name, (name,))
    console.print(tree)
    if built.errors:
        console.print(
            f"[yellow]{len(built.errors)} problem(s) found; run `rtp check` for details[/yellow]"
        )
