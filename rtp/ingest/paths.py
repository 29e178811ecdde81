"""JSON paths: ``$.product.id`` or ``$.items[0]``, read from parsed events (and written,
for :meth:`RowMapper.to_event`)."""

from __future__ import annotations

import re
from collections.abc import Callable

MISSING = object()  # what a getter returns for a path the event lacks
_STEP = re.compile(r"\.([A-Za-z_0-9$@-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_path(path: str) -> tuple:
    """``$.product.id`` -> ("product", "id"); ``$.items[0]`` -> ("items", 0).

    Raises ValueError for text that is not a JSON path of keys and indexes.
    """
    if not path.startswith("$"):
        raise ValueError(f"JSON path '{path}' must start with $")
    steps, pos = [], 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            raise ValueError(f"cannot read JSON path '{path}' at character {pos + 1}")
        key, index, q1, q2 = m.groups()
        steps.append(
            int(index)
            if index is not None
            else (key if key is not None else (q1 if q1 is not None else q2))
        )
        pos = m.end()
    return tuple(steps)


def getter(steps: tuple) -> Callable:
    """A function reading a JSON path from an event; top-level keys (most columns) take
    one dict lookup."""
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]
        return lambda obj: obj.get(key, MISSING)
    return lambda obj: lookup(obj, steps)


def by_name_getter(steps: tuple, alt: tuple | None, nullable: bool, has_default: bool) -> Callable:
    """For flat records (CSV, Parquet): the column by name, else by its JSON path; an
    empty CSV cell is NULL for a Nullable column, the default for one that has it."""

    def get(obj):
        value = lookup(obj, steps)
        if value is MISSING and alt is not None:
            value = lookup(obj, alt)
        if value == "":
            value = None if nullable else MISSING if has_default else value
        return value

    return get


def lookup(obj, steps: tuple):
    """The value at ``steps`` in ``obj``, or MISSING."""
    for step in steps:
        if isinstance(step, int):
            if not isinstance(obj, list) or step >= len(obj):
                return MISSING
        elif not isinstance(obj, dict) or step not in obj:
            return MISSING
        obj = obj[step]
    return obj


def put(event: dict, steps: tuple, value) -> None:
    """Set ``value`` at ``steps`` in ``event``, creating objects (and lists) on the way."""
    node = event
    for step, following in zip(steps, steps[1:] + (None,), strict=True):
        fresh = [] if isinstance(following, int) else {}
        if following is None:
            fresh = value
        if isinstance(step, int):
            node.extend([None] * (step + 1 - len(node)))
            if node[step] is None:
                node[step] = fresh
            node = node[step]
        else:
            node = node.setdefault(step, fresh)
