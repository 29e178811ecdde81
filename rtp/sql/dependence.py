"""What a node's SQL depends on, beyond its own text."""

from __future__ import annotations

from rtp.sql.compose import CompiledPipe, CompiledProject


def parameter_read(
    compiled: CompiledProject, cpipe: CompiledPipe, index: int, _seen: set | None = None
) -> tuple[str, str] | None:
    """(a request parameter, what it is read through: '' for the node itself, "node 'x'"
    or "pipe 'p'") when node ``index`` of ``cpipe`` depends on one, else None."""
    seen = _seen if _seen is not None else set()
    target = cpipe.nodes[index]
    if target.template.params:
        return next(iter(sorted(target.template.params))), ""
    for cnode in compiled._nodes_for(cpipe, index):
        if cnode.template.params:
            return next(iter(sorted(cnode.template.params))), f"node '{cnode.node.name}'"
    for other in compiled._pipes_for(cpipe, index):
        if other in seen or other not in compiled.pipes:
            continue
        seen.add(other)
        opipe = compiled.pipes[other]
        found = parameter_read(compiled, opipe, len(opipe.nodes) - 1, seen)
        if found is not None:
            return found[0], f"pipe '{other}'"
    return None
