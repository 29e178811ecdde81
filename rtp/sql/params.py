"""Typed parameters: what a template declares and how a caller's value is checked.

A template declares a parameter by calling a type function, Tinybird-style:
``{{ Int32(limit, 10, min=1, max=100, description="Rows") }}``. :class:`Param` is that
declaration; :func:`coerce` turns a caller's value (text from a URL, or JSON) into a
Python value of the type, or raises RequestError naming the parameter and the type.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
import zoneinfo
from dataclasses import dataclass

from rtp.errors import RequestError

INT_RANGES: dict[str, tuple[int, int]] = {}
for _bits in (8, 16, 32, 64, 128, 256):
    INT_RANGES[f"Int{_bits}"] = (-(2 ** (_bits - 1)), 2 ** (_bits - 1) - 1)
    INT_RANGES[f"UInt{_bits}"] = (0, 2**_bits - 1)
INT_RANGES["Int"] = INT_RANGES["Int32"]
INT_RANGES["Integer"] = INT_RANGES["Int32"]

SCALAR_TYPES = (
    "String",
    *INT_RANGES,
    "Float32",
    "Float64",
    "Boolean",
    "Date",
    "DateTime",
    "DateTime64",
)
PARAM_FUNCTIONS = (*SCALAR_TYPES, "Array")
PARAM_OPTIONS = (
    "description",
    "required",
    "example",
    "enum",
    "min",
    "max",
    "format",
    "timezone",
    "defined",
)

MAX_TEXT = 1_000_000  # characters; a longer value is refused rather than rendered


@dataclass(frozen=True)
class Param:
    """One parameter as the template declares it."""

    name: str
    type: str = "String"  # scalar type name, or Array(<scalar>)
    default: object = None
    description: str = ""
    required: bool = False
    example: object = None
    enum: tuple = ()
    min: float | None = None
    max: float | None = None
    timezone: str | None = None  # DateTime: the zone a value with an offset converts to
    line: int = 0  # template line of the declaration (1-based), for error locations
    declared: bool = True  # False: used by the template but never given a type

    @property
    def element_type(self) -> str:
        return self.type[6:-1] if self.type.startswith("Array(") else self.type

    @property
    def is_array(self) -> bool:
        return self.type.startswith("Array(")

    def sample(self):
        """A value to render the template with when checking it offline: the example,
        else the default, else a neutral value of the type."""
        for candidate in (self.example, self.default):
            if candidate is not None:
                try:
                    return coerce(self, candidate)
                except RequestError:
                    continue
        base = _neutral(self.element_type, self)
        return [base] if self.is_array else base


def _neutral(type_name: str, param: Param):
    if param.enum:
        return coerce(Param(param.name, type_name), param.enum[0])
    if type_name == "String":
        return "__no_value__"  # Tinybird's placeholder: checks render what it renders
    if type_name in INT_RANGES:
        lo, hi = INT_RANGES[type_name]
        value = 0 if param.min is None else int(math.ceil(param.min))
        return max(lo, min(hi, value))
    if type_name.startswith("Float"):
        return 0.0 if param.min is None else float(param.min)
    if type_name == "Boolean":
        return False
    if type_name == "Date":
        return dt.date(2019, 1, 1)
    return dt.datetime(2019, 1, 1)


def coerce(param: Param, value):
    """``value`` (a caller's text or JSON value) as a Python value of ``param``'s type.

    Raises RequestError (RTP400) naming the parameter and the expected type when the
    value does not parse, is out of range, or is not in ``enum``.
    """
    if param.is_array:
        items = value
        if isinstance(value, str):
            items = [] if value == "" else value.split(",")
        if not isinstance(items, list | tuple):
            raise _bad(param, value, f"a comma-separated list of {param.element_type}")
        element = Param(
            param.name,
            param.element_type,
            enum=param.enum,
            min=param.min,
            max=param.max,
            timezone=param.timezone,
        )
        return [coerce(element, item) for item in items]
    out = _scalar(param, value)
    if param.enum and out not in [_scalar(param, e) for e in param.enum]:
        raise RequestError(
            f"parameter '{param.name}' must be one of {', '.join(map(str, param.enum))}",
            code="RTP400",
        )
    if isinstance(out, int | float) and not isinstance(out, bool):
        if param.min is not None and out < param.min:
            raise RequestError(
                f"parameter '{param.name}' must be at least {param.min}", code="RTP400"
            )
        if param.max is not None and out > param.max:
            raise RequestError(
                f"parameter '{param.name}' must be at most {param.max}", code="RTP400"
            )
    return out


def _scalar(param: Param, value):
    t = param.element_type
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise RequestError(
            f"parameter '{param.name}' is longer than {MAX_TEXT} characters", code="RTP400"
        )
    if t == "String":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _bad(param, value, "text")
        text = value if isinstance(value, str) else _number_text(param, value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad(param, value, "valid Unicode text") from None
        return text
    if t in INT_RANGES:
        return _integer(param, value, t)
    if t in ("Float32", "Float64"):
        return _float(param, value, t)
    if t == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        text = value.strip().lower() if isinstance(value, str) else None
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise _bad(param, value, "Boolean (true or false)")
    if t == "Date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            if not isinstance(value, str):
                raise ValueError
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _bad(param, value, "Date (YYYY-MM-DD)") from None
    if t in ("DateTime", "DateTime64"):
        out = _datetime(param, value, t)
        return out.replace(microsecond=0) if t == "DateTime" else out
    raise RequestError(f"parameter '{param.name}' has unknown type {t}", code="RTP400")


# An integer is ASCII digits with one optional sign, nothing else: no spaces, `_`,
# exponents, hex or other scripts' digits (Python's int() takes all of those).
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 80  # past every type's range (UInt256 has 78); int() of more is slow


def _integer(param: Param, value, t: str) -> int:
    if isinstance(value, bool):
        raise _bad(param, value, t)
    if isinstance(value, float):
        if not value.is_integer():  # NaN and infinities too
            raise _bad(param, value, t)
        value = int(value)
    elif isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise _bad(param, value, t)
        if len(value.lstrip("+-0")) > _MAX_DIGITS:
            raise _out_of_range(param, t)
        value = int(value)
    if not isinstance(value, int):
        raise _bad(param, value, t)
    lo, hi = INT_RANGES[t]
    if not lo <= value <= hi:
        raise _out_of_range(param, t)
    return value


_FLOAT_MAX = {"Float32": 3.4028234663852886e38, "Float64": sys.float_info.max}


def _float(param: Param, value, t: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(param, value, t)
    if isinstance(value, str) and ("_" in value or not value.isascii()):
        raise _bad(param, value, t)  # float() takes 1_000 and other scripts' digits
    try:
        out = float(value.strip() if isinstance(value, str) else value)
    except OverflowError:  # an int past the float range, e.g. 10**400 from JSON
        raise _out_of_range(param, t) from None
    except ValueError:
        raise _bad(param, value, t) from None
    if math.isnan(out):
        raise _bad(param, value, f"a finite {t}")
    if abs(out) > _FLOAT_MAX[t]:  # "1e999" parses as inf
        if isinstance(value, str) and "inf" in value.lower():
            raise _bad(param, value, f"a finite {t}")
        raise _out_of_range(param, t)
    return out


def _datetime(param: Param, value, t: str) -> dt.datetime:
    """A naive date-time: the wall time in the parameter's timezone (UTC unless the
    template declares ``timezone=``). A value with a UTC offset is converted there, so
    10:00+02:00 and 08:00Z are the same instant."""
    if isinstance(value, dt.datetime):
        out = value
    else:
        try:
            if not isinstance(value, str):
                raise ValueError
            out = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _bad(param, value, f"{t} (YYYY-MM-DD HH:MM:SS[+HH:MM])") from None
    if out.tzinfo is not None:
        try:
            out = out.astimezone(_zone(param.timezone))
        except (OverflowError, ValueError):
            raise _bad(param, value, f"a {t} within the calendar") from None
    return out.replace(tzinfo=None)


def _zone(name: str | None) -> dt.tzinfo:
    if not name or name == "UTC":
        return dt.timezone.utc
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise RequestError(f"unknown timezone '{name}'", code="RTP400") from exc


def _number_text(param: Param, value) -> str:
    try:
        return str(value)
    except ValueError:  # an int of more digits than Python prints
        raise _bad(param, "<a number too long>", "text") from None


def _out_of_range(param: Param, t: str) -> RequestError:
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        bounds = f" ({lo} to {hi})"
    else:
        bounds = f" (±{_FLOAT_MAX[t]:.7g})"
    return RequestError(f"parameter '{param.name}' is out of range for {t}{bounds}", code="RTP400")


def _bad(param: Param, value, expected: str) -> RequestError:
    try:
        shown = repr(value)
    except ValueError:  # an int of more digits than Python prints
        shown = "<a number too long to show>"
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return RequestError(f"parameter '{param.name}' must be {expected}, got {shown}", code="RTP400")
