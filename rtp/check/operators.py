"""``sql_and(col__op=...)`` keywords whose ``__op`` is no operator: a warning, since the
key then names a column ``col__op`` (ClickHouse allows it) and is most likely a typo."""

from __future__ import annotations

from rtp.errors import SqlError
from rtp.sql.compose import locate
from rtp.sql.template import SQL_AND_OPERATORS, unknown_operators

_KNOWN = ", ".join(f"__{o}" for o in SQL_AND_OPERATORS if o)


def operators(ctx) -> None:
    for cpipe in ctx.compiled.pipes.values():
        if cpipe.name in ctx.compiled.broken:
            continue
        for cnode in cpipe.nodes:
            for key, line in unknown_operators(cnode.template):
                rendered = cnode.sample_sql
                offset = 0
                for _ in range(line - 1):  # rendered lines are template lines
                    offset = rendered.find("\n", offset) + 1
                col, _, op = key.rpartition("__")
                ctx.problems.add(
                    SqlError(
                        f"sql_and: '__{op}' is not an operator, so '{key}' is compared as a "
                        "column of that name",
                        code="RTP301",
                        severity="warning",
                        location=locate(cnode, offset, token=key),
                        hint=f"operators: {_KNOWN}; or no suffix for =",
                    )
                )
