"""The server backend's URL parsing, redaction and version handling."""

from __future__ import annotations

import pytest

from rtp.engine import version_tuple
from rtp.engine.clickhouse import parse_url, redact
from rtp.errors import EngineError


def test_parse_url():
    assert parse_url("clickhouse://ana:p%40ss@db.local:9001/shop") == {
        "host": "db.local",
        "port": 9001,
        "user": "ana",
        "password": "p@ss",
        "database": "shop",
        "secure": False,
        "cluster": None,
        "zookeeper_path": None,
        "replica": None,
    }
    assert parse_url("clickhouse://h/shop?cluster=c1")["cluster"] == "c1"
    with pytest.raises(EngineError) as err:
        parse_url("clickhouse://h/shop?clustre=c1")
    assert "unknown option clustre" in err.value.message
    assert parse_url("clickhouses://h")["port"] == 9440
    assert parse_url("clickhouse://h")["database"] == "default"
    assert redact("clickhouse://ana:secret@h:9000/db") == "clickhouse://ana:***@h:9000/db"
    with pytest.raises(EngineError) as err:
        parse_url("http://h:8123")
    assert err.value.code == "RTP501"


def test_version_tuple():
    assert version_tuple("18.16.1") == (18, 16)
    assert version_tuple("26.9.1.1") == (26, 9)
