"""Compare an endpoint's rows with a test's expected rows, as data.

Numbers compare as numbers (ClickHouse's JSON quotes 64-bit integers; a test may not),
floats with a relative tolerance of 1e-9; rows compare in order unless ``ignore_order``.
Differences are described per row and column, the way a person would read them.
"""

from __future__ import annotations

import json
import math
import re

MAX_LINES = 20
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf)$")


def same(expected, actual) -> bool:
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    e, a = _number(expected), _number(actual)
    if e is not None and a is not None:
        return math.isclose(e, a, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(e) and math.isnan(a))
    return expected == actual


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMERIC.match(value):
        return float(value)
    return None


def diff_rows(expected: list[dict], actual: list[dict], *, ignore_order: bool = False) -> list[str]:
    """Human-readable differences; empty when the rows match."""
    lines: list[str] = []
    exp_cols = list(expected[0]) if expected else None
    act_cols = list(actual[0]) if actual else None
    if exp_cols is not None and act_cols is not None and set(exp_cols) != set(act_cols):
        missing = [c for c in exp_cols if c not in act_cols]
        extra = [c for c in act_cols if c not in exp_cols]
        if missing:
            lines.append(f"columns missing from the result: {', '.join(missing)}")
        if extra:
            lines.append(f"unexpected columns in the result: {', '.join(extra)}")
        return lines
    if ignore_order:
        unmatched = list(actual)
        for i, row in enumerate(expected, start=1):
            hit = next((j for j, a in enumerate(unmatched) if same(row, a)), None)
            if hit is None:
                lines.append(f"expected row {i} not in the result: {_show(row)}")
            else:
                unmatched.pop(hit)
        lines += [f"unexpected row in the result: {_show(row)}" for row in unmatched]
        return _cap(lines)
    if len(expected) != len(actual):
        lines.append(f"expected {len(expected)} rows, got {len(actual)}")
    for i, (e, a) in enumerate(zip(expected, actual, strict=False), start=1):
        for col, value in e.items():
            if col in a and not same(value, a[col]):
                lines.append(f"row {i}, {col}: expected {_show(value)}, got {_show(a[col])}")
    for i, row in enumerate(expected[len(actual) :], start=len(actual) + 1):
        lines.append(f"row {i} missing: {_show(row)}")
    for i, row in enumerate(actual[len(expected) :], start=len(expected) + 1):
        lines.append(f"row {i} unexpected: {_show(row)}")
    return _cap(lines)


def _show(value) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more differences"]
