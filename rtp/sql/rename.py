"""Point a statement at other tables: ``rename_tables(sql, {"events": "events__rtp_stage"})``.

A staged deploy version keeps its changed tables under other names next to the live ones
(see :mod:`rtp.deploy.versions`); an answer from that version is the project's own
statement with each table it reads by an unqualified name replaced at the exact offsets
sqlglot found. The text is otherwise the user's, byte for byte: string literals,
comments and columns that share a table's name are untouched. A table read without an
alias keeps its old name as one (``events__rtp_stage AS events``), so ``events.col``
still resolves.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from rtp.sql.analysis import analyze


def rename_tables(sql: str, tables: dict[str, str]) -> str:
    """``sql`` reading ``tables[name]`` wherever it reads table ``name`` (a CTE or a
    ``db.table`` is not a table of the project and stays). A value in parentheses is a
    subquery put in the table's place as it is. No mapping, no parse."""
    if not tables:
        return sql
    spots = _spots(sql, tables)
    out, last = [], 0
    for start, end, text in sorted(spots):
        out += [sql[last:start], text]
        last = end
    return "".join(out) + sql[last:]


def _spots(sql: str, tables: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, replacement) for each read of a renamed table."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="clickhouse") if t is not None]
    except (ParseError, TokenError, ValueError):
        return [
            (r.start, r.end, t if (t := tables[r.name]).startswith("(") else f"`{t}`")
            for r in analyze(sql).refs
            if r.name in tables and sql[r.start : r.end] == r.name
        ]
    spots = []
    for tree in trees:
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            ident = table.this
            if table.args.get("db") or not isinstance(ident, exp.Identifier):
                continue
            name = table.name
            if name not in tables or name in ctes:
                continue
            start = (ident.meta or {}).get("start")
            if start is None:
                continue
            end = (ident.meta or {}).get("end", start + len(name) - 1) + 1
            if sql[start:end] not in (name, f"`{name}`", f'"{name}"'):
                continue
            new = tables[name]
            text = new if new.startswith("(") else f"`{new}`"
            spots.append((start, end, text if table.alias else f"{text} AS `{name}`"))
    return spots
