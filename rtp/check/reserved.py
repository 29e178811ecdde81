"""Endpoint parameters can't take the names the HTTP API keeps for itself: ``q`` (SQL
over the endpoint's result), ``token`` and ``format``. A parameter of that name would
never receive the caller's value (Tinybird reserves the same names)."""

from __future__ import annotations

from rtp.errors import SqlError
from rtp.sql.compose import _at

RESERVED = ("q", "token", "format")  # rtp.query.RESERVED; sql/ can't import server/


def reserved(ctx) -> None:
    compiled = ctx.compiled
    exposed: set[str] = set()  # endpoints and the pipes they read: their params are public
    for cpipe in compiled.pipes.values():
        if cpipe.pipe.type == "endpoint" and cpipe.name not in compiled.broken:
            exposed.add(cpipe.name)
            exposed.update(compiled.pipes_read(cpipe.name))
    for name in sorted(exposed):
        for cnode in compiled.pipes[name].nodes:
            for pname, param in cnode.template.params.items():
                if pname not in RESERVED:
                    continue
                error = SqlError(
                    f"parameter '{pname}' has a reserved name: the HTTP API keeps "
                    f"'{pname}' for itself, so the caller's value would never reach it",
                    code="RTP301",
                    hint="rename it (e.g. 'search' for a search text); "
                    "reserved: " + ", ".join(RESERVED),
                )
                error.line = param.line
                ctx.problems.add(_at(error, cnode.node, token=pname))
