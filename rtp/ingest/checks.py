"""Type checkers: a value read from JSON -> the value JSONEachRow stores for a ClickHouse
column type, or ValueError saying why not. They also write the readable reason of a row
the engine's own checks sent to quarantine."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable

import orjson

from rtp.sql.params import INT_RANGES

# what a checker (or json) may raise on a value it can't read: all of them quarantine the
# row (RecursionError: deeply nested values; OverflowError: timestamps past time_t)
CHECK_ERRORS = (ValueError, TypeError, OverflowError, ArithmeticError, RecursionError, OSError)


def show(value) -> str:
    """A short JSON-ish text of ``value`` for messages; never raises."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        text = orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME, default=str)
        return text.decode("utf-8")[:40]
    except (TypeError, ValueError):  # past orjson's nesting limit, integers past 64 bits
        return f"a {type(value).__name__}" if isinstance(value, dict | list) else str(value)[:40]


class RowError(ValueError):
    """A row does not fit the datasource; the message says which column and why.
    ``column`` is the 1-based character in the raw line where reading failed (1 when
    the whole row is at fault)."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


def unwrap(ch_type: str) -> tuple[str, bool]:
    """``Nullable(LowCardinality(String))`` -> ("String", True)."""
    nullable = False
    while True:
        m = re.fullmatch(r"(Nullable|LowCardinality)\((.*)\)", ch_type.strip(), re.S)
        if not m:
            return ch_type.strip(), nullable
        nullable = nullable or m.group(1) == "Nullable"
        ch_type = m.group(2)


def _string(value):
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Infinity; json.dumps would write them
    try:
        # numbers and booleans as their JSON text, objects and arrays compact
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        raise ValueError("the value is nested too deeply to store as text") from None


def _int(type_name: str):
    lo, hi = INT_RANGES[type_name]

    def check(value):
        if isinstance(value, bool):
            raise ValueError(f"expected {type_name}, got a boolean")
        if isinstance(value, float):
            if not value.is_integer():  # NaN, Infinity and fractions
                raise ValueError(f"expected {type_name}, got {show(value)}")
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,80}", value.strip()):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"expected {type_name}, got {show(value)}")
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range for {type_name}")
        return value

    return check


def _float(value):
    """Float32/Float64. NaN and +-inf are ClickHouse floats: sent as text ("nan"), since
    a JSON writer turns them into null (stored as 0, silently)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        # past 64 bits the row encoder writes exact digits the engine reads as a float
        return value if -(2**63) <= value < 2**64 else float(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if not math.isfinite(number) and value.strip().lstrip("+-").lower() not in (
                "nan",
                "inf",
                "infinity",
            ):
                raise ValueError(f"{show(value)} overflows a 64-bit float")
            return value.strip()
    raise ValueError(f"expected a number, got {show(value)}")


def _decimal(precision: int, scale: int):
    """Decimal(P, S): a number whose integer part has at most P - S digits (the engine
    refuses more; its message is per batch, ours per row)."""
    bound = decimal.Decimal(10) ** (precision - scale)

    def check(value):
        if isinstance(value, bool):
            raise ValueError("expected a number, got a boolean")
        if isinstance(value, int | float | decimal.Decimal | str):
            try:
                number = decimal.Decimal(value.strip() if isinstance(value, str) else value)
            except (decimal.InvalidOperation, ValueError):
                number = None
            if number is not None and number.is_finite():
                if abs(number) >= bound:
                    raise ValueError(
                        f"{show(value)} is out of range for Decimal({precision}, {scale})"
                    )
                # rounded to the scale here: the engine's text reader refuses extra digits
                return str(
                    number.quantize(
                        decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_EVEN
                    )
                )
        raise ValueError(f"expected a decimal number, got {show(value)}")

    return check


def _bool(value):
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError(f"expected a boolean, got {show(value)}")


# what each type stores; outside, ClickHouse clamps or wraps the value silently
_RANGES = {
    "Date": (dt.datetime(1970, 1, 1), dt.datetime(2149, 6, 6, 23, 59, 59)),
    "Date32": (dt.datetime(1900, 1, 1), dt.datetime(2299, 12, 31, 23, 59, 59)),
    "DateTime": (dt.datetime(1970, 1, 1), dt.datetime(2106, 2, 7, 6, 28, 15)),
    "DateTime64": (dt.datetime(1900, 1, 1), dt.datetime(2299, 12, 31, 23, 59, 59)),
}


def _date(type_name: str):
    lo, hi = _RANGES[type_name]

    def check(value):
        day = None
        if isinstance(value, dt.date):
            day = value if not isinstance(value, dt.datetime) else value.date()
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(value.strip()[:10])
        if day is None:
            raise ValueError(f"expected a date YYYY-MM-DD, got {show(value)}")
        if not lo.date() <= day <= hi.date():
            raise ValueError(
                f"{show(value)} is outside the {type_name} range ({lo.date()} to {hi.date()})"
            )
        return day.isoformat()

    return check


def _datetime(precision: int, type_name: str = "DateTime"):
    lo, hi = _RANGES[type_name]

    def check(value):
        if isinstance(value, dt.datetime):
            stamp = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:  # NaN, inf and seconds past the platform's time_t raise here
                stamp = dt.datetime.fromtimestamp(value, dt.timezone.utc)
            except (ValueError, OverflowError, OSError):
                raise ValueError(
                    f"{show(value)} is not a Unix timestamp in the {type_name} range"
                ) from None
        elif isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            try:
                stamp = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"expected a date-time, got {show(value)}") from None
        else:
            raise ValueError(f"expected a date-time, got {show(value)}")
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if not lo <= stamp <= hi:
            raise ValueError(f"{show(value)} is outside the {type_name} range ({lo} to {hi} UTC)")
        text = stamp.isoformat(sep=" ", timespec="microseconds")
        return text[: 20 + precision] if precision else text[:19]

    return check


def _uuid(value):
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"expected a UUID, got {show(value)}") from None


def _passthrough(value):
    return value


def checker(ch_type: str) -> tuple[Callable, bool]:
    """(check function, nullable) for a ClickHouse column type."""
    base, nullable = unwrap(ch_type)
    if base.startswith("Array(") and base.endswith(")"):
        inner, inner_nullable = checker(base[6:-1])

        def array(value):
            if not isinstance(value, list):
                raise ValueError(f"expected an array, got {show(value)}")
            return [None if (v is None and inner_nullable) else inner(v) for v in value]

        return array, nullable
    name = base.split("(", 1)[0]
    if name in ("String", "FixedString", "Enum8", "Enum16", "Enum"):
        return _string, nullable
    if name in INT_RANGES:
        return _int(name), nullable
    if name in ("Float32", "Float64"):
        return _float, nullable
    if name.startswith("Decimal"):
        args = [int(a) for a in re.findall(r"\d+", base[len(name) :])]
        digits = {"Decimal32": 9, "Decimal64": 18, "Decimal128": 38, "Decimal256": 76}
        if name in digits and len(args) == 1:
            return _decimal(digits[name], args[0]), nullable
        if name == "Decimal" and args:
            return _decimal(args[0], args[1] if len(args) > 1 else 0), nullable
        return _float, nullable
    if name in ("Bool", "Boolean"):
        return _bool, nullable
    if name in ("Date", "Date32"):
        return _date(name), nullable
    if name == "DateTime":
        return _datetime(0), nullable
    if name == "DateTime64":
        m = re.match(r"DateTime64\(\s*(\d+)", base)
        return _datetime(min(6, int(m.group(1))) if m else 3, "DateTime64"), nullable
    if name == "UUID":
        return _uuid, nullable
    return _passthrough, nullable
