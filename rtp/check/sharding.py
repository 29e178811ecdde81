"""Materialized views whose groups a cluster would split across shards (RTP312, a
warning; only for projects with a cluster target).

On a cluster each node's view sees only the rows its node stores (rtp.deploy.cluster), so
a view that groups by a key writes one partial row per shard for each group. That is
right when the target combines partial rows on read (``-State`` columns of an
AggregatingMergeTree, sums and counts of a SummingMergeTree) or when every row of a group
is on one shard (the source's ``shard_key`` uses only the group's columns). Otherwise (a
ReplacingMergeTree keeping "the" latest row, a ``uniq`` or ``max`` summed, a plain
MergeTree) readers see a row per shard.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import sqlglot
from sqlglot import exp

from rtp.errors import SqlError

# SummingMergeTree adds these up correctly across shards (and across parts)
_ADDITIVE = {"sum", "count", "sumif", "sum_if", "countif", "count_if"}


def sharding(ctx) -> None:
    clusters = [
        t.name
        for t in ctx.project.settings.targets
        if parse_qs(urlparse(t.url).query).get("cluster")
    ]
    if not clusters:
        return
    project = ctx.project
    for pipe in project.pipes.values():
        if pipe.type != "materialized" or pipe.name in ctx.compiled.broken or not pipe.target:
            continue
        target = project.datasources.get(pipe.target)
        source = next(
            (
                project.datasources[r]
                for r in ctx.compiled.pipes[pipe.name].reads
                if r in project.datasources
            ),
            None,
        )
        if target is None or source is None:
            continue
        sql = ctx.compiled.compose(pipe.name, ctx.compiled.sample_values(pipe.name)).sql
        try:
            select = sqlglot.parse_one(sql, read="clickhouse")
        except sqlglot.errors.SqlglotError:
            continue
        group = select.args.get("group") if isinstance(select, exp.Select) else None
        if group is None:
            continue
        keys = {c.name for g in group.expressions for c in g.find_all(exp.Column)}
        if source.shard_key:
            try:
                shard = {
                    c.name
                    for c in sqlglot.parse_one(source.shard_key, read="clickhouse").find_all(
                        exp.Column
                    )
                }
            except sqlglot.errors.SqlglotError:
                continue
            if shard and shard <= keys:
                continue  # every row of a group is on one shard
        if _combines(target.engine.type, select, keys):
            continue
        ctx.problems.add(
            SqlError(
                f"on a cluster ({', '.join(clusters)}), view '{pipe.name}' groups by "
                f"{', '.join(sorted(keys))} into {target.name} ({target.engine.type}), but "
                f"{source.name} is sharded by {source.shard_key or 'rand()'}: a group's rows "
                f"are on several shards, so {target.name} gets one partial row per shard",
                code="RTP312",
                severity="warning",
                location=pipe.loc("nodes"),
                hint=f"shard {source.name} by the group's columns (shard_key: "
                f"cityHash64({sorted(keys)[0]}) in {source.file}), or keep -State columns in "
                "an AggregatingMergeTree target and -Merge them when reading",
            )
        )


def _combines(engine: str, select: exp.Select, keys: set[str]) -> bool:
    """Whether ``engine`` combines the view's partial rows of one group correctly."""
    if engine == "AggregatingMergeTree":
        return True
    if engine != "SummingMergeTree":
        return False
    for column in select.expressions:
        inner = column.this if isinstance(column, exp.Alias) else column
        if isinstance(inner, exp.Column) and inner.name in keys:
            continue
        name = (inner.sql_name() if isinstance(inner, exp.Func) else "").lower()
        if isinstance(inner, exp.Anonymous):
            name = str(inner.this).lower()
        if name not in _ADDITIVE:
            return False
    return True
