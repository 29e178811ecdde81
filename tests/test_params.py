"""``coerce``: any value a caller can send becomes a value of the parameter's type or a
RequestError (RTP400) naming the parameter, never another exception."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.errors import RequestError
from rtp.sql.params import INT_RANGES, Param, coerce

SCALARS = ["String", *INT_RANGES, "Float32", "Float64", "Boolean", "Date", "DateTime", "DateTime64"]
# Decimal and UUID are not parameter types (nor in Tinybird): a clear RTP400, not a crash
TYPES = [*SCALARS, *(f"Array({t})" for t in SCALARS), "Decimal", "UUID"]

# what URL text, a form or a JSON body can hold, plus text that looks almost right
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(10**400), 10**400),
        st.floats(),
        st.text(max_size=30),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
NEAR = st.one_of(
    st.from_regex(r"\A[ +\-]{0,2}[0-9٣０_xXeE.]{1,12}[ ]?\Z"),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}"
        r"(\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\Z"
    ),
    st.sampled_from(
        [
            "--5",
            "+-5",
            "5e3",
            " 5",
            "0x10",
            "1_000",
            "inf",
            "-Infinity",
            "nan",
            "1e999",
            "9" * 5000,
            "true",
            "On",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2024-02-30",
            ",",
            "1,,2",
        ]
    ),
)
PARAM = st.builds(
    Param,
    name=st.just("p"),
    type=st.sampled_from(TYPES),
    enum=st.sampled_from([(), ("1", "2"), ("a",)]),
    min=st.sampled_from([None, 0, -1.5]),
    max=st.sampled_from([None, 10, 1e300]),
    timezone=st.sampled_from([None, "UTC", "Europe/Madrid", "Pacific/Kiritimati"]),
)


def _fits(param: Param, value) -> bool:
    t = param.element_type
    if t == "String":
        return isinstance(value, str)
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        return type(value) is int and lo <= value <= hi
    if t.startswith("Float"):
        return type(value) is float and math.isfinite(value)
    if t == "Boolean":
        return type(value) is bool
    if t == "Date":
        return type(value) is dt.date
    return type(value) is dt.datetime and value.tzinfo is None


@settings(max_examples=1000, deadline=None)
@given(param=PARAM, value=st.one_of(JSONISH, NEAR))
def test_coerce_gives_a_typed_value_or_a_request_error(param, value):
    try:
        out = coerce(param, value)
    except RequestError as exc:
        assert exc.code == "RTP400"
        assert exc.message.startswith("parameter 'p' "), exc.message
        return
    if param.is_array:
        assert isinstance(out, list) and all(_fits(param, v) for v in out)
    else:
        assert _fits(param, out), (param.type, value, out)


@pytest.mark.parametrize(
    "value",
    [
        "--5",
        "+-5",
        "5e3",
        " 5",
        "5 ",
        "0x10",
        "1_000",
        "٣",
        "+",
        "",
        "9" * 5000,
        2**31,
        -(2**31) - 1,
        1.5,
        True,
        float("nan"),
        float("inf"),
        10**400,
    ],
)
def test_odd_integers_are_refused(value):
    with pytest.raises(RequestError) as info:
        coerce(Param("limit", "Int32"), value)
    assert info.value.message.startswith("parameter 'limit' ")
    assert "Int32" in info.value.message


def test_floats_past_their_range():
    with pytest.raises(RequestError, match="out of range for Float64"):
        coerce(Param("x", "Float64"), 10**400)
    with pytest.raises(RequestError, match="out of range for Float32"):
        coerce(Param("x", "Float32"), "1e39")
    with pytest.raises(RequestError, match="finite Float64"):
        coerce(Param("x", "Float64"), "-inf")
    assert coerce(Param("x", "Float64"), 10**300) == 1e300
    assert coerce(Param("x", "Float32"), " 2.5") == 2.5


def test_datetime_offsets_become_the_parameter_zone():
    utc = Param("at", "DateTime")
    madrid = Param("at", "DateTime", timezone="Europe/Madrid")
    for text in ("2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z", "2024-05-01 08:00:00+00:00"):
        assert coerce(utc, text) == dt.datetime(2024, 5, 1, 8, 0)
        assert coerce(madrid, text) == dt.datetime(2024, 5, 1, 10, 0)
    # no offset: already the wall time in the parameter's zone
    assert coerce(madrid, "2024-05-01 08:00:00") == dt.datetime(2024, 5, 1, 8, 0)
    assert coerce(Param("at", "DateTime64"), "2024-05-01T10:00:00.123+02:00") == dt.datetime(
        2024, 5, 1, 8, 0, 0, 123000
    )
