"""`rtp append` to a server target whose table is missing fails loudly (it used to print
"appended 300 row(s)" and exit 0). The backends' own insert contract (a missing table
raises, a bad value stores nothing, N rows in one INSERT, tokens) is in
test_backend_contract.py, run against both backends."""

from __future__ import annotations

import json
import os
import uuid

import pytest

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


def test_append_to_a_server_without_the_table_fails_loudly(project_factory, cli, tmp_path):
    if not URL:
        pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test")
    from deploy_helpers import SHOP

    shop = project_factory(SHOP, base=None)
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
            for _ in range(300)
        ),
        encoding="utf-8",
    )
    target = f"{URL.rsplit('/', 1)[0]}/rtp_test_ingest_{uuid.uuid4().hex[:8]}"
    try:
        result = cli("append", "events", data, "-p", shop, "--target", target)
    finally:
        from rtp.engine.clickhouse import ClickHouseBackend

        server = ClickHouseBackend(target)
        server.execute(f"DROP DATABASE IF EXISTS `{server.database}`")
        server.close()
    assert result.exit_code != 0, result.output
    assert "appended" not in result.output
    assert "events" in result.output and "RTP" in result.output, result.output
