"""Each node holds one query: a SELECT (or WITH/UNION of SELECTs), nothing else."""

from __future__ import annotations

from rtp.errors import SqlError
from rtp.sql.compose import locate


def statements(ctx) -> None:
    for cpipe in ctx.compiled.pipes.values():
        if cpipe.name in ctx.compiled.broken:
            continue
        for cnode in cpipe.nodes:
            sql = cnode.sample_sql
            if not sql.strip():
                ctx.problems.add(
                    SqlError("node SQL is empty", code="RTP306", location=locate(cnode, 0))
                )
                ctx.failed_pipes.add(cpipe.name)
                continue
            count = cnode.facts.statements
            if count is not None and count > 1:
                ctx.problems.add(
                    SqlError(
                        "a node holds one query; this one has several statements",
                        code="RTP306",
                        location=locate(cnode, 0),
                        hint="split it into several nodes that read each other",
                    )
                )
                ctx.failed_pipes.add(cpipe.name)
            elif cnode.facts.is_query is False:
                ctx.problems.add(
                    SqlError(
                        "a node must be a SELECT query",
                        code="RTP306",
                        location=locate(cnode, 0),
                        hint="pipes read data; tables are declared in datasources/",
                    )
                )
                ctx.failed_pipes.add(cpipe.name)
