"""Values of server settings as people write them: seconds, sizes, counts, switches.

One reading for every place a setting comes from (``server:`` in ``rtp.yaml``,
``RTP_SERVER_*`` environment variables, ``rtp serve`` flags), so ``10MiB`` means the same
everywhere. Each function returns the value in ServerSettings' unit or raises
``PydanticCustomError('rtp_setting', ...)`` whose message says what is expected; the
loader reports it at the value's line and column, :func:`rtp.server.settings.server_settings`
names the variable or flag.
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
_TIME_UNITS = {"": 1.0, "S": 1.0, "MS": 0.001, "M": 60.0, "H": 3600.0}
_NUMBER = r"\s*(\d+(?:_\d+)*(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*"
_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def _fail(expected: str, value) -> PydanticCustomError:
    shown = (
        f"'{value}'"
        if isinstance(value, str)
        else (
            "true/false"
            if isinstance(value, bool)
            else type(value).__name__
            if not isinstance(value, int | float)
            else value
        )
    )
    return PydanticCustomError(
        "rtp_setting", "must be {expected}, not {shown}", {"expected": expected, "shown": shown}
    )


def _bound(minimum: float, exclusive: bool) -> str:
    return f"> {minimum:g}" if exclusive else f">= {minimum:g}"


def _scaled(value, units: dict, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(expected, value)
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(_NUMBER, value)
    if not m or m.group(2).upper() not in units:
        raise _fail(expected, value)
    return float(m.group(1).replace("_", "")) * units[m.group(2).upper()]


def seconds(value, minimum: float = 0.0, exclusive: bool = False) -> float:
    """``10``, ``0.5``, ``'500ms'``, ``'2m'`` -> seconds as a float."""
    expected = f"seconds {_bound(minimum, exclusive)} (e.g. 10, 0.5, 500ms, 2m)"
    out = _scaled(value, _TIME_UNITS, expected)
    if out < minimum or (exclusive and out == minimum):
        raise _fail(expected, value)
    return out


def size(value, minimum: int = 0) -> int:
    """``1048576``, ``'10MiB'``, ``'2GB'`` -> bytes as an int."""
    expected = f"a size in bytes >= {minimum} (e.g. 1048576, 10MiB, 2GB)"
    out = _scaled(value, _SIZE_UNITS, expected)
    if out < minimum or (out != int(out)):
        raise _fail(expected, value)
    return int(out)


def count(value, minimum: int = 0) -> int:
    """A whole number ``>= minimum`` (``'1_000'`` reads as 1000)."""
    expected = f"a whole number >= {minimum}"
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(_\d+)*\s*", value):
        value = int(value.replace("_", ""))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(expected, value)
    return value


def rate(value) -> float:
    """A number ``>= 0`` (requests per second; 0 = unlimited)."""
    expected = "a number >= 0 (requests per second; 0 = unlimited)"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _fail(expected, value) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise _fail(expected, value)
    return float(value)


def switch(value) -> bool:
    """``true``/``false``; from text also on/off, yes/no, 1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _ON + _OFF:
        return value.strip().lower() in _ON
    raise _fail("true or false (on/off)", value)


def origins(value) -> tuple[str, ...]:
    """A list of origins, or one text (comma-separated in an environment variable)."""
    if isinstance(value, str):
        value = [v for v in (part.strip() for part in value.split(",")) if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _fail('a list of origins (e.g. ["https://shop.example"] or "*")', value)
    return tuple(value)


def text(value) -> str:
    if not isinstance(value, str):
        raise _fail("text", value)
    return value
