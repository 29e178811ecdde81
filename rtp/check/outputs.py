"""Materialized and copy pipes: their output must fit the target datasource.

The pipe's output columns and types come from ClickHouse (``DESCRIBE (SELECT ...)``
in the explain rule, which infers ``AggregateFunction(...)`` states exactly). Each
output column must exist in the target with the same type, or a type ClickHouse
converts to; a materialized view is
then really created in the scratch engine, proving ``rtp deploy`` will accept it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtp.check.explain import to_problem
from rtp.engine import QueryError
from rtp.errors import SqlError
from rtp.sql.compose import locate
from rtp.sql.ddl import create_materialized_view
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend


def outputs(ctx) -> None:
    project, compiled = ctx.project, ctx.compiled
    for name, cpipe in compiled.pipes.items():
        if not ctx.pipe_ready(name) or name not in ctx.outputs:
            continue
        pipe = cpipe.pipe
        if pipe.type not in ("materialized", "copy") or not pipe.target:
            continue
        target = project.datasources.get(pipe.target)
        if target is None:
            kind = "a pipe" if pipe.target in project.pipes else "not a datasource"
            ctx.problems.add(
                SqlError(
                    f"target '{pipe.target}' is {kind}",
                    code="RTP302",
                    location=pipe.loc("target"),
                    hint="targets are datasources in datasources/",
                )
            )
            continue
        if target.name not in ctx.tables:
            continue
        last = cpipe.nodes[-1]
        fits = True
        produced = set()
        for row in ctx.outputs[name]:
            col, ctype = row[0], row[1]
            produced.add(col)
            tcol = target.column(col)
            where = locate(last, 0, token=col)
            if tcol is None:
                fits = False
                ctx.problems.add(
                    SqlError(
                        f"output column '{col}' ({ctype}) is not in target '{target.name}'",
                        code="RTP305",
                        location=where,
                        hint=f"add it to {target.file} or alias the expression to one of: "
                        + ", ".join(c.name for c in target.columns),
                    )
                )
            elif _norm(ctype) != _norm(tcol.type):
                if _converts(ctx.backend, ctype, tcol.type):
                    ctx.problems.add(
                        SqlError(
                            f"output column '{col}' is {ctype}, target '{target.name}' has "
                            f"{tcol.type}; ClickHouse will convert it",
                            code="RTP305",
                            location=where,
                            severity="warning",
                            hint=f"CAST it in the pipe to {tcol.type} to make this explicit",
                        )
                    )
                else:
                    fits = False
                    ctx.problems.add(
                        SqlError(
                            f"output column '{col}' is {ctype} but target '{target.name}' "
                            f"declares {tcol.type}",
                            code="RTP305",
                            location=where,
                            hint=f"change the column type in {target.file} to {ctype}, "
                            f"or produce {tcol.type} in the pipe",
                        )
                    )
        for tcol in target.columns:
            if tcol.name not in produced and not tcol.default:
                ctx.problems.add(
                    SqlError(
                        f"target column '{tcol.name}' is not produced by pipe '{name}'; it will "
                        "hold the type's default value",
                        code="RTP305",
                        severity="warning",
                        location=target.loc(*tcol.path, "name"),
                        hint="produce it in the pipe, or give the column a default",
                    )
                )
        if fits and pipe.type == "materialized":
            _create_view(
                ctx, name, target.name, compiled.compose(name, compiled.sample_values(name))
            )


def _create_view(ctx, name: str, target: str, composed) -> None:
    view = f"__rtp_mv_{name}"
    try:
        ctx.backend.execute(create_materialized_view(view, target, composed.sql))
    except QueryError as exc:
        ctx.problems.add(to_problem(exc, ctx.compiled.pipes[name].nodes[-1], composed))
        return
    ctx.backend.execute(f"DROP VIEW IF EXISTS `{view}`")


def _norm(ctype: str) -> str:
    t = ctype.replace(" ", "")
    if t.startswith("LowCardinality(") and t.endswith(")"):
        t = t[len("LowCardinality(") : -1]
    return t


def _converts(backend: Backend, source: str, target: str) -> bool:
    """Whether ClickHouse converts a value of ``source`` type into ``target``."""
    try:
        backend.query(
            f"SELECT CAST(defaultValueOfTypeName({quote_string(source)}) AS {target}) FORMAT Null"
        )
        return True
    except QueryError:
        return False
