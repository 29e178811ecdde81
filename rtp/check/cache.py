"""A node's ``cache`` is shared by every caller, so its SQL must not depend on the request:
the node may read no request parameter, directly or through the nodes and pipes it
reads (RTP310, at the node's ``cache`` key)."""

from __future__ import annotations

from rtp.errors import SqlError
from rtp.sql.compose import CompiledPipe, CompiledProject


def cache(ctx) -> None:
    compiled = ctx.compiled
    for cpipe in compiled.pipes.values():
        if cpipe.name in compiled.broken:
            continue
        for index, cnode in enumerate(cpipe.nodes):
            if cnode.node.cache is None:
                continue
            found = parameter_read(compiled, cpipe, index)
            if found is None:
                continue
            param, via = found
            through = f" through {via}" if via else ""
            ctx.problems.add(
                SqlError(
                    f"node '{cnode.node.name}' is cached for every caller but reads the "
                    f"request parameter '{param}'{through}",
                    code="RTP310",
                    location=cpipe.pipe.loc(*cnode.node.path, "cache", key=True),
                    hint="cache a node that reads no parameter (and read it from the "
                    "parameterized one), or the endpoint's whole answer with the pipe's "
                    "own `cache:`",
                )
            )


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
