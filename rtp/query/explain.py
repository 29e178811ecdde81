"""``rtp explain``: what each node of an endpoint costs for one set of parameter values.

Every node of the pipe is composed as the server composes it (cached nodes substituted by
their result, as a warm cache serves them: :mod:`rtp.query.cache`) and run read-only
``runs`` times; the figures are the fastest run's (the engine's own ``statistics``:
elapsed, rows and bytes read). A node's figures include the nodes it reads, since that
is what running it takes. Index use comes from ClickHouse's
``EXPLAIN json = 1, indexes = 1``: for each MergeTree table the plan reads, the parts and
granules its primary key selected out of all (ClickHouse 21.6 or newer; an older server
reports none).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rtp.engine import Backend, QueryError, nested
from rtp.engine.limits import Limits
from rtp.query import coerce_params, endpoint_params, node_results, refused
from rtp.query.cache import ResultCache
from rtp.sql.compose import CompiledProject


@dataclass(frozen=True)
class TableRead:
    """One read of a MergeTree table in a plan, as its primary key narrowed it."""

    table: str
    condition: str  # the key condition ClickHouse derived; "true" = none (a full scan)
    keys: tuple[str, ...]  # the key columns the condition uses
    parts: tuple[int, int]  # selected, all
    granules: tuple[int, int]  # selected, all


@dataclass
class NodeProfile:
    pipe: str
    node: str
    seconds: float  # the fastest run, the engine's elapsed time
    rows: int  # rows in its result
    rows_read: int
    bytes_read: int
    reads: list[TableRead] = field(default_factory=list)
    cache_ttl: float | None = None  # the node's `cache` setting
    substituted: bool = False  # read by the nodes below as a literal (not too large)


@dataclass
class Profile:
    pipe: str
    values: dict[str, Any]
    target: str
    nodes: list[NodeProfile]
    cache_ttl: float | None  # the pipe's own `cache` setting (whole answers)
    explained: bool  # the engine gave index use (EXPLAIN ... indexes = 1)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["values"] = {k: _plain(v) for k, v in self.values.items()}
        return out


def profile(
    compiled: CompiledProject,
    backend: Backend,
    pipe: str,
    raw: dict,
    *,
    runs: int = 3,
    limits: Limits | None = None,
) -> Profile:
    """Each node of endpoint ``pipe`` run with ``raw`` parameter values (see the module
    doc). Raises RequestError as an endpoint call does (404 unknown endpoint, 400 a bad
    value), RTP304/RTP410/RTP507 when the engine refuses a node."""
    values = coerce_params(endpoint_params(compiled, pipe), raw)
    limits = limits or Limits(deadline=60)
    cache = ResultCache()
    lookup = node_results(compiled, backend, cache, limits)
    cpipe = compiled.pipes[pipe]
    explained = True
    nodes = []
    for cnode in cpipe.nodes:
        name = cnode.node.name
        sql = compiled.compose(
            pipe,
            values,
            name,
            cached=lambda p, n, name=name: lookup(p, n, (pipe, name)),
            nested=nested(backend),
        ).sql
        best = None
        for _ in range(max(1, runs)):
            stats = _run(backend, sql, limits)
            if best is None or stats["elapsed"] < best["elapsed"]:
                best = stats
        reads = _reads(backend, sql, limits)
        explained = explained and reads is not None
        ttl = cnode.node.cache.ttl if cnode.node.cache else None
        nodes.append(
            NodeProfile(
                pipe,
                name,
                best["elapsed"],
                best["rows"],
                best["rows_read"],
                best["bytes_read"],
                reads or [],
                ttl,
                ttl is not None and lookup(pipe, name) is not None,
            )
        )
    spec = cpipe.pipe.cache
    return Profile(pipe, values, backend.name, nodes, spec.ttl if spec else None, explained)


def _run(backend: Backend, sql: str, limits: Limits) -> dict:
    settings = {"max_query_size": len(sql.encode()) + 4096}
    started = time.perf_counter()
    try:
        body = backend.query_bytes(sql, "JSON", limits, settings)
    except QueryError as exc:
        raise refused(exc, limits.deadline) from None
    wall = time.perf_counter() - started
    data = json.loads(body)
    stats = data.get("statistics") or {}
    return {
        "elapsed": float(stats.get("elapsed") or wall),
        "rows": int(data.get("rows", 0)),
        "rows_read": int(stats.get("rows_read") or 0),
        "bytes_read": int(stats.get("bytes_read") or 0),
    }


def _reads(backend: Backend, sql: str, limits: Limits) -> list[TableRead] | None:
    """The MergeTree reads of ``sql``'s plan; None when the engine can't say (EXPLAIN
    with ``indexes`` is ClickHouse 21.6+)."""
    try:
        _, rows = backend.query(
            f"EXPLAIN json = 1, indexes = 1\n{sql}",
            limits,
            {"max_query_size": len(sql.encode()) + 4096},
        )
    except QueryError:
        return None
    try:
        plan = json.loads("\n".join(str(r[0]) for r in rows))
    except ValueError:
        return None
    return table_reads(plan)


def table_reads(plan: Any) -> list[TableRead]:
    """Every ``ReadFromMergeTree`` step of an ``EXPLAIN json = 1, indexes = 1`` plan with
    what its primary key selected."""
    out: list[TableRead] = []
    stack = [plan]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            if item.get("Node Type") == "ReadFromMergeTree":
                key = next(
                    (i for i in item.get("Indexes", ()) if i.get("Type") == "PrimaryKey"), {}
                )
                out.append(
                    TableRead(
                        str(item.get("Description", "")),
                        str(key.get("Condition", "true")),
                        tuple(str(k) for k in key.get("Keys", ())),
                        (int(key.get("Selected Parts", 0)), int(key.get("Initial Parts", 0))),
                        (
                            int(key.get("Selected Granules", 0)),
                            int(key.get("Initial Granules", 0)),
                        ),
                    )
                )
            stack.extend(v for k, v in item.items() if k in ("Plan", "Plans"))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
