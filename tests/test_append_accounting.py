"""`rtp append`: every row of the file is stored or quarantined, never a traceback."""

from __future__ import annotations

import json

from deploy_helpers import SHOP


def test_append_quarantines_an_overflowing_timestamp_and_keeps_its_neighbours(
    project_factory, cli, tmp_path
):
    shop = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", shop).exit_code == 0
    lines = [
        json.dumps(
            {
                "timestamp": "2030-01-01 10:00:00",
                "user_id": f"u{i}",
                "product": {"id": "p", "price": 1},
            }
        )
        for i in range(100)
    ]
    lines.insert(40, '{"timestamp": 1e20, "user_id": "x", "product": {"id": "p", "price": 1}}')
    lines.insert(
        60,
        '{"timestamp": "2030-01-01 10:00:00", "user_id": "y", '
        '"product": {"id": "p", "price": 1e400}}',
    )
    data = tmp_path / "events.ndjson"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("append", "events", data, "-p", shop)
    assert result.exit_code == 1, result.output  # some rows were quarantined
    assert "appended 100 row(s) to events" in result.output
    assert "2 row(s) quarantined" in result.output
    out = cli("sql", "SELECT count() AS c FROM events", "-p", shop, "-f", "csv").output
    assert out == "c\n100\n"
    out = cli(
        "sql", "SELECT error FROM events_quarantine ORDER BY error", "-p", shop, "-f", "json"
    ).output
    errors = [r["error"] for r in json.loads(out)["data"]]
    assert errors[0].startswith(
        "column 'timestamp' ($.timestamp): 1e+20 is not a Unix timestamp"
    ), errors
    assert errors[1].startswith("not JSON"), errors


def test_append_again_after_a_crash_stores_nothing_twice(project_factory, cli, tmp_path):
    shop = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", shop).exit_code == 0
    data = tmp_path / "events.ndjson"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": "2030-01-01 10:00:00",
                    "user_id": "u",
                    "product": {"id": "p", "price": 1},
                }
            )
            + "\n"
            for _ in range(12_000)
        ),
        encoding="utf-8",
    )  # 3 batches
    for _ in range(2):  # the second run is the retry of a run that may have crashed
        assert cli("append", "events", data, "-p", shop).exit_code == 0
    count = "SELECT (SELECT count() FROM events) AS c, (SELECT sum(n) FROM spend) AS n"
    assert cli("sql", count, "-p", shop, "-f", "csv").output == "c,n\n12000,12000\n"
    # on purpose: the same file once more
    assert cli("append", "events", data, "-p", shop, "--no-dedupe").exit_code == 0
    assert cli("sql", count, "-p", shop, "-f", "csv").output == "c,n\n24000,24000\n"


def test_append_ndjson_is_typed_by_the_engine_with_per_column_reasons(
    project_factory, cli, tmp_path
):
    shop = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", shop).exit_code == 0

    def event(user, **product):
        return json.dumps(
            {"timestamp": "2030-01-01T10:00:00Z", "user_id": user, "product": product}
        )

    lines = [event(f"u{i}", id="p", price=i) for i in range(8)]
    lines += [
        event("bad1", id="p", price="cheap"),
        json.dumps({"timestamp": "2030-01-01 10:00:00", "product": {"id": "p", "price": 1}}),
        event("bad3", price=2),
        "",
        event("ünï", id="p", price="2.5"),
    ]
    data = tmp_path / "events.ndjson"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("append", "events", data, "-p", shop)
    assert result.exit_code == 1, result.output
    assert "appended 9 row(s) to events" in result.output
    assert "3 row(s) quarantined" in result.output
    out = cli(
        "sql",
        "SELECT count() AS n, sum(price) AS total, countIf(user_id = 'ünï') AS u FROM events",
        "-p",
        shop,
        "-f",
        "csv",
    ).output
    assert out == "n,total,u\n9,30.5,1\n"
    out = cli(
        "sql", "SELECT error FROM events_quarantine ORDER BY error", "-p", shop, "-f", "json"
    ).output
    assert [r["error"] for r in json.loads(out)["data"]] == [
        "column 'price' ($.product.price): expected a number, got \"cheap\"",
        "column 'product_id' ($.product.id): missing, and the column is not Nullable",
        "column 'user_id' ($.user_id): missing, and the column is not Nullable",
    ]
