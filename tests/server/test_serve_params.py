"""Endpoint parameters at their edges, through HTTP: odd integers, huge numbers, form
bodies, date-times with UTC offsets and Tinybird's ``sql_and`` with arrays."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

TYPED = """
    nodes:
      - name: typed
        sql: |
          SELECT {{ Int32(n, 0) }} AS n, {{ UInt8(small, 0) }} AS small,
                 {{ Float64(x, 0) }} AS x, {{ Float32(y, 0) }} AS y,
                 {{ DateTime(at, '2000-01-01 00:00:00') }} AS at,
                 {{ DateTime64(at64, '2000-01-01 00:00:00') }} AS at64,
                 {{ DateTime(local, '2000-01-01 00:00:00', timezone='Europe/Madrid') }} AS local
"""
# sql_and, Tinybird's idiom: each condition only when its value was sent
FILTER = """
    nodes:
      - name: filtered
        sql: |
          SELECT product_id, qty, toString(timestamp) AS ts FROM events
          WHERE {{ sql_and(product_id__in=Array(products, 'String'),
                           product_id__not_in=Array(skip, 'String'),
                           qty__gte=Int32(min_qty), qty__lt=Int32(below),
                           price__gt=Float64(over), price__lte=Float64(upto),
                           user_id=String(user)) }}
          ORDER BY timestamp
"""


def _get(s, pipe, **params):
    return s.client.get(f"/v0/pipes/{pipe}.json", params={**params, "token": s.admin})


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("--5", "Int32"),
        ("+-5", "Int32"),
        ("5e3", "Int32"),
        (" 5", "Int32"),
        ("0x10", "Int32"),
        ("1_000", "Int32"),
        ("5 ", "Int32"),
        ("٣", "Int32"),
        ("9" * 5000, "out of range for Int32"),
        ("2147483648", "out of range for Int32"),
        ("-2147483649", "out of range for Int32"),
    ],
    ids=lambda v: repr(v)[:20],
)
async def test_odd_integers_are_400_naming_the_parameter(serve, value, what):
    s = serve({"pipes/typed.yaml": TYPED})
    r = await _get(s, "typed", n=value)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "RTP400"
    assert r.json()["error"].startswith("parameter 'n' ")
    assert what in r.json()["error"]


async def test_integer_edges_still_work(serve):
    s = serve({"pipes/typed.yaml": TYPED})
    r = await _get(s, "typed", n="-2147483648", small="255")
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["n"] == -2147483648 and r.json()["data"][0]["small"] == 255
    r = await _get(s, "typed", n="+7")
    assert r.json()["data"][0]["n"] == 7


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ('{"x": 1%s}' % ("0" * 400), "out of range for Float64"),  # int too large for float
        ('{"x": -1%s}' % ("0" * 400), "out of range for Float64"),
        ('{"y": 1e39}', "out of range for Float32"),
        ('{"x": "1_000"}', "Float64"),
        ('{"x": "nan"}', "finite Float64"),
        ('{"n": 1e300}', "out of range for Int32"),
        ('{"n": 1%s}' % ("0" * 400), "out of range for Int32"),
        ('{"small": true}', "UInt8"),
        ('{"at": 5}', "DateTime"),
        ('{"at": ["2020-01-01"]}', "DateTime"),
    ],
    ids=lambda v: repr(v)[:20],
)
async def test_json_values_past_the_type_are_400(serve, body, what):
    s = serve({"pipes/typed.yaml": TYPED})
    r = await s.client.post(
        "/v0/pipes/typed.json",
        content=body,
        headers={"Authorization": f"Bearer {s.admin}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "RTP400"
    assert what in r.json()["error"]


async def test_form_encoded_post(serve):
    s = serve()
    r = await s.client.post(
        "/v0/pipes/recs.json",
        data={"user_id": "u1", "limit": "1"},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"product_id": "p2", "spent": 51, "n": 1}]
    # the query string is read too; the body wins for the same name
    r = await s.client.post(
        "/v0/pipes/recs.json?user_id=u2&limit=1",
        content="user_id=u1&token=ignored",
        headers={
            "Authorization": f"Bearer {s.admin}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"product_id": "p2", "spent": 51, "n": 1}]


async def test_form_values_are_checked_like_any_other(serve):
    s = serve()
    r = await s.client.post(
        "/v0/pipes/recs.json",
        data={"user_id": "u1", "limit": "--1"},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 400 and r.json()["code"] == "RTP400"
    assert r.json()["error"].startswith("parameter 'limit' must be Int32")


async def test_multipart_post_is_415(serve):
    s = serve()
    r = await s.client.post(
        "/v0/pipes/recs.json",
        files={"user_id": ("a.txt", b"u1")},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 415, r.text
    assert r.json()["code"] == "RTP412"
    assert "multipart" in r.json()["error"]


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T10:00:00+02:00",
        "2024-05-01T08:00:00Z",
        "2024-05-01 08:00:00",
        "2024-05-01T03:00:00-05:00",
        "2024-05-01T08:00:00.000+00:00",
    ],
)
async def test_datetime_offsets_convert_to_utc(serve, value):
    s = serve({"pipes/typed.yaml": TYPED})
    r = await _get(s, "typed", at=value, at64=value, local=value)
    assert r.status_code == 200, r.text
    row = r.json()["data"][0]
    assert row["at"] == "2024-05-01 08:00:00"
    assert row["at64"].startswith("2024-05-01 08:00:00")
    # a parameter declared with a timezone gets the wall time there (UTC+2 in May);
    # a value without an offset is already that wall time
    assert row["local"] == (
        "2024-05-01 08:00:00" if value == "2024-05-01 08:00:00" else "2024-05-01 10:00:00"
    )


async def test_datetime_offset_filters_real_rows(serve):
    since = """
        nodes:
          - name: since
            sql: |
              SELECT product_id FROM events
              WHERE timestamp >= {{ DateTime(since) }} ORDER BY timestamp
    """
    s = serve({"pipes/since.yaml": since})
    # the rows are at 2030-01-01 10:00:00..03 UTC; 12:00:02+02:00 is 10:00:02Z
    r = await _get(s, "since", since="2030-01-01T12:00:02+02:00")
    assert r.status_code == 200, r.text
    assert [d["product_id"] for d in r.json()["data"]] == ["p1", "p3"]


async def test_datetime_offset_past_the_calendar_is_400(serve):
    s = serve({"pipes/typed.yaml": TYPED})
    r = await _get(s, "typed", at="0001-01-01T00:00:00+05:00")
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("parameter 'at' ")


async def test_sql_and_in_array_matches_rows(serve):
    s = serve({"pipes/filtered.yaml": FILTER})
    r = await _get(s, "filtered", products="p1,p3")
    assert r.status_code == 200, r.text
    assert [d["product_id"] for d in r.json()["data"]] == ["p1", "p1", "p3"]
    r = await _get(s, "filtered", skip="p1,p3")
    assert [d["product_id"] for d in r.json()["data"]] == ["p2"]
    r = await _get(s, "filtered")  # nothing sent: no condition at all
    assert len(r.json()["data"]) == 4


@pytest.mark.parametrize(
    ("params", "products"),
    [
        ({"min_qty": "2"}, ["p2"]),
        ({"below": "2"}, ["p1", "p1", "p3"]),
        ({"over": "10"}, ["p2", "p3"]),
        ({"upto": "25.5"}, ["p1", "p2", "p1"]),
        ({"user": "u2"}, ["p3"]),
        ({"products": "p1,p2", "over": "10", "user": "u1"}, ["p2"]),
        ({"products": "nope"}, []),
    ],
)
async def test_sql_and_operators(serve, params, products):
    s = serve({"pipes/filtered.yaml": FILTER})
    r = await _get(s, "filtered", **params)
    assert r.status_code == 200, r.text
    assert [d["product_id"] for d in r.json()["data"]] == products


async def test_sql_and_array_from_a_json_body(serve):
    s = serve({"pipes/filtered.yaml": FILTER})
    r = await s.client.post(
        "/v0/pipes/filtered.json",
        json={"products": ["p2", "p3"]},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 200, r.text
    assert [d["product_id"] for d in r.json()["data"]] == ["p2", "p3"]
    r = await s.client.post(
        "/v0/pipes/filtered.json",
        json={"products": []},
        headers={"Authorization": f"Bearer {s.admin}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []  # IN an empty list matches nothing


async def test_openapi_describes_arrays_as_comma_separated_lists(serve):
    pipe = """
        nodes:
          - name: pick
            sql: |
              SELECT product_id FROM events
              WHERE product_id IN {{ Array(ids, 'String', 'p1,p2', example='p3') }}
    """
    s = serve({"pipes/pick.yaml": pipe})
    r = await s.client.get("/v0/pipes/openapi.json", params={"token": s.admin})
    assert r.status_code == 200, r.text
    [ids] = r.json()["paths"]["/v0/pipes/pick.json"]["get"]["parameters"]
    assert ids["schema"] == {"type": "array", "items": {"type": "string"}, "default": ["p1", "p2"]}
    assert (ids["style"], ids["explode"], ids["example"]) == ("form", False, ["p3"])
