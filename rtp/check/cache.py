"""A node's ``cache`` is shared by every caller, so its SQL must not depend on the request:
the node may read no request parameter, directly or through the nodes and pipes it
reads (RTP310, at the node's ``cache`` key)."""

from __future__ import annotations

from rtp.errors import SqlError
from rtp.sql.dependence import parameter_read


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
