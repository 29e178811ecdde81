"""Every node, rendered with sample parameter values, is accepted by ClickHouse.

ClickHouse is the judge of what it accepts: unknown columns, unknown functions, type
mismatches and syntax errors come from the engine, and are mapped back to the line and
column of the node in the user's file.

On the happy path one statement per pipe suffices: ``DESCRIBE (<the pipe's output>)``
analyses the output node and every node it reads, and records the output columns for
later rules. Only when it fails are the nodes explained one by one (``EXPLAIN PLAN``) to
find the first one ClickHouse rejects; nodes the output doesn't read are explained too.
"""

from __future__ import annotations

import re

from rtp.engine import QueryError
from rtp.errors import SqlError
from rtp.sql.compose import CompiledNode, Composed, locate

_POSITION = re.compile(r"failed at position (\d+)")
_QUOTED = re.compile(r"(?:`([^`]+)`|'([^']+)')")


def explain(ctx) -> None:
    compiled = ctx.compiled
    for name, cpipe in compiled.pipes.items():
        if not ctx.pipe_ready(name):
            continue
        values = compiled.sample_values(name)
        composed = compiled.compose(name, values)
        try:
            ctx.outputs[name] = ctx.backend.query(f"DESCRIBE ({composed.sql})")[1]
            unchecked = compiled.unread_nodes(name)
        except QueryError:
            ctx.failed_pipes.add(name)
            unchecked = [n.node.name for n in cpipe.nodes]
        for node_name in unchecked:
            composed = compiled.compose(name, values, node_name)
            try:
                ctx.backend.execute(f"EXPLAIN PLAN {composed.sql}")
            except QueryError as exc:
                ctx.problems.add(to_problem(exc, cpipe.node(node_name), composed))
                ctx.failed_pipes.add(name)
                break


def to_problem(exc: QueryError, cnode: CompiledNode, composed: Composed) -> SqlError:
    """ClickHouse's error as a problem located in the node's file."""
    detail = _brief(exc.detail)
    location = None
    m = _POSITION.search(exc.detail)
    if m:
        # ClickHouse counts bytes from 1 in the statement it was sent (after "EXPLAIN PLAN ")
        byte_pos = int(m.group(1)) - 1 - exc.sql.find(composed.sql)
        char_pos = len(composed.sql.encode("utf-8")[: max(0, byte_pos)].decode("utf-8", "ignore"))
        offset = char_pos - composed.prefix + composed.shift
        if 0 <= offset <= len(cnode.sample_sql):
            location = locate(cnode, offset, _token_length(cnode.sample_sql, offset))
    if location is None:
        token = _token(exc.detail)
        location = locate(cnode, 0, token=token) if token else locate(cnode, 0)
    hint = _suggestion(exc.detail)
    return SqlError(
        f"ClickHouse rejects this node: {detail}",
        code="RTP304",
        location=location,
        hint=hint or f"ClickHouse error {exc.ch_name or exc.ch_code}",
    )


def _brief(detail: str) -> str:
    """The error without ClickHouse's echo of the whole query."""
    detail = re.split(r"\.?\s+In scope\b", detail)[0]
    detail = re.split(r":\s*while executing\b", detail)[0]
    detail = re.sub(r"\s*Maybe you meant:?\s*\[[^\]]*\]\.?", "", detail)
    return detail.strip().rstrip(".:")


def _suggestion(detail: str) -> str | None:
    m = re.search(r"Maybe you meant:?\s*\[([^\]]*)\]", detail)
    return f"did you mean {m.group(1)}?" if m else None


def _token(detail: str) -> str | None:
    for m in _QUOTED.finditer(detail):
        token = m.group(1) or m.group(2)
        token = token.split(".")[-1]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token):
            return token
    return None


def _token_length(sql: str, offset: int) -> int:
    m = re.match(r"[A-Za-z0-9_]+", sql[offset:])
    return len(m.group(0)) if m else 1
