"""Advice for ``rtp check --strict`` (RTP311, a warning; the rule runs only there): a node an
endpoint runs on every call reads a table with no condition on its primary key (a prefix
of the sorting key), so every call scans the whole table and its cost grows with the data.

ClickHouse judges, as everywhere in ``rtp check``: each such node, composed with the
sample values, is explained (``EXPLAIN json = 1, indexes = 1``) in the scratch engine,
with one row of defaults in each table (an empty table has no parts, so no key analysis)
and every other node it reads replaced by an empty result of the same columns, so the
plan holds the node's own reads only. A read whose primary-key analysis does not use the
key's first expression (``Keys`` in the plan) narrows nothing by a prefix of the key.
Nodes with a ``cache`` (and what only they read) run once per ttl, not on every call, so
they are left alone; so are engines without a primary key.
"""

from __future__ import annotations

import contextlib
import json

from rtp.engine import QueryError
from rtp.errors import SqlError
from rtp.sql.compose import CompiledPipe, locate
from rtp.sql.escape import identifier, quote_string


def indexes(ctx) -> None:
    if not ctx.strict:
        return
    compiled, project = ctx.compiled, ctx.project
    keyed = {
        name
        for name in ctx.tables
        if project.datasources[name].engine.type.endswith("MergeTree")
        and (project.datasources[name].sorting_key or project.datasources[name].primary_key)
    }
    filled = False
    for cpipe in compiled.pipes.values():
        if cpipe.pipe.type != "endpoint" or not ctx.pipe_ready(cpipe.name):
            continue
        for cnode in _per_call(cpipe):
            tables = {r.name for r in cnode.refs if r.name in keyed}
            if not tables:
                continue
            if not filled:
                for name in sorted(keyed):
                    # a table that takes no row of defaults shows no key analysis: no advice
                    with contextlib.suppress(QueryError):
                        ctx.backend.insert_json(name, [{}])
                filled = True
            unkeyed = _unkeyed(ctx, cpipe, cnode.node.name) & tables
            for ref in cnode.refs:
                if ref.name in unkeyed:
                    unkeyed.discard(ref.name)
                    ds = project.datasources[ref.name]
                    key = ", ".join(ds.primary_key or ds.sorting_key)
                    ctx.problems.add(
                        SqlError(
                            f"endpoint node '{cnode.node.name}' reads '{ref.name}' with no "
                            f"condition on its primary key ({key}): every call scans it all",
                            code="RTP311",
                            severity="warning",
                            location=locate(cnode, ref.start, ref.end - ref.start, token=ref.name),
                            hint="filter on the key's first column, read a materialized "
                            "view keyed for this lookup, or cache the node (`cache: {ttl}`)",
                        )
                    )


def _per_call(cpipe: CompiledPipe) -> list:
    """The nodes the pipe's output runs on every call: what it reads, not through a
    cached node."""
    names = {n.node.name: n for n in cpipe.nodes}
    out, stack, seen = [], [cpipe.nodes[-1]], set()
    while stack:
        cnode = stack.pop()
        if cnode.node.name in seen or cnode.node.cache is not None:
            continue
        seen.add(cnode.node.name)
        out.append(cnode)
        stack.extend(names[r.name] for r in cnode.refs if r.name in names)
    return out


def _unkeyed(ctx, cpipe: CompiledPipe, node: str) -> set[str]:
    """Tables the node's own plan reads with no primary-key condition."""
    compiled = ctx.compiled
    values = compiled.sample_values(cpipe.name)
    empties: dict[tuple[str, str], str] = {}

    def empty(pipe: str, name: str, own: tuple[str, str] = (cpipe.name, node)) -> str | None:
        if (pipe, name) == own:
            return None  # the node explained (or described) runs its own SQL
        if (pipe, name) not in empties:
            sql = compiled.compose(
                pipe, values, name, cached=lambda p, n: empty(p, n, (pipe, name))
            ).sql
            columns = ctx.backend.query(f"DESCRIBE ({sql})")[1]
            arrays = ", ".join(
                f"CAST([] AS Array({row[1]})) AS _rtp_c{i}" for i, row in enumerate(columns)
            )
            outer = ", ".join(f"_rtp_c{i} AS {identifier(row[0])}" for i, row in enumerate(columns))
            unnest = ", ".join(f"_rtp_c{i}" for i in range(len(columns)))
            empties[(pipe, name)] = f"SELECT {outer} FROM (SELECT {arrays}) ARRAY JOIN {unnest}"
        return empties[(pipe, name)]

    try:
        sql = compiled.compose(cpipe.name, values, node, cached=empty).sql
        rows = ctx.backend.query(f"EXPLAIN json = 1, indexes = 1\n{sql}")[1]
        plan = json.loads("\n".join(str(r[0]) for r in rows))
    except (QueryError, ValueError):
        return set()  # the explain rule reports a node the engine refuses
    out: set[str] = set()
    stack = [plan]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("Node Type") == "ReadFromMergeTree":
                table = str(item.get("Description", "")).rsplit(".", 1)[-1]
                key = next(
                    (i for i in item.get("Indexes", ()) if i.get("Type") == "PrimaryKey"), {}
                )
                used = {k.replace("`", "") for k in key.get("Keys", ())}
                if _first_key(ctx, table) not in used:
                    out.add(table)
            stack.extend(v for k, v in item.items() if k in ("Plan", "Plans"))
    return out


def _first_key(ctx, table: str) -> str:
    """The first expression of ``table``'s primary key as ClickHouse writes it (the
    names EXPLAIN lists under ``Keys``)."""
    rows = ctx.backend.query(
        "SELECT primary_key FROM system.tables "
        f"WHERE database = currentDatabase() AND name = {quote_string(table)}"
    )[1]
    text = _unwrap((rows[0][0] if rows else "").strip()) + ","
    depth = 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            return text[:i].strip().replace("`", "")
    return ""


def _unwrap(text: str) -> str:
    """``(a, b)`` -> ``a, b``: a key written as a tuple (``ORDER BY (a, b)``)."""
    if not text.startswith("("):
        return text
    depth = 0
    for i, char in enumerate(text):
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth == 0:
            return text[1:i] if i == len(text) - 1 else text
    return text
