"""The one place request values become SQL text.

Every value a caller sends reaches ClickHouse through :func:`literal` (values) or
:func:`identifier` (column names), after it was converted to a Python value of the
parameter's type. Strings are quoted with every character that could end or bend a
ClickHouse string literal escaped; numbers are rendered from Python numbers, never from
the caller's text. ``tests/test_escape.py`` fuzzes both with hypothesis.
"""

from __future__ import annotations

import datetime as dt
import math

# ClickHouse string literal escapes: backslash and quote always; control characters so
# the statement stays one line-safe token whatever the value.
_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\0": "\\0",
    "\b": "\\b",
    "\f": "\\f",
    "\r": "\\r",
    "\n": "\\n",
    "\t": "\\t",
}
_STRING_TABLE = str.maketrans(_STRING_ESCAPES)


class SqlText(str):
    """Text that is already safe SQL (produced by this module or by the template
    itself); the template engine emits it unchanged."""


def quote_string(value: str) -> SqlText:
    """A ClickHouse string literal for ``value``.

    Raises ValueError for text that is not valid Unicode (lone surrogates).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode") from None
    return SqlText("'" + value.translate(_STRING_TABLE) + "'")


def identifier(name: str) -> SqlText:
    """A back-quoted ClickHouse identifier for ``name``."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("name is not valid Unicode") from None
    escaped = name.replace("\\", "\\\\").replace("`", "\\`").replace("\0", "\\0")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r")
    return SqlText("`" + escaped + "`")


def literal(value) -> SqlText:
    """A ClickHouse literal for a Python value of a parameter's type.

    Raises ValueError for values that have no safe literal (NaN, infinities, objects).
    """
    if isinstance(value, SqlText):
        return value
    if value is None:
        return SqlText("NULL")
    if isinstance(value, bool):
        return SqlText("1" if value else "0")
    if isinstance(value, int):
        return SqlText(str(int(value)))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return SqlText(repr(float(value)))
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, dt.datetime):
        return quote_string(value.isoformat(sep=" "))
    if isinstance(value, dt.date):
        return quote_string(value.isoformat())
    if isinstance(value, list | tuple):
        return SqlText("[" + ", ".join(literal(v) for v in value) + "]")
    raise ValueError(f"no SQL literal for {type(value).__name__}")
