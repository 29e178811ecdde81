"""The benchmark suite keeps working: a tiny configuration, checked for shape only.

Benchmarks never fail on timing; this asserts the JSON has every figure and that each is
a positive number.
"""

from __future__ import annotations

import json
import os

from bench.__main__ import main


def test_tiny_bench_writes_every_figure(tmp_path, capsys):
    assert main(["--tiny", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert {
        "machine",
        "versions",
        "dataset",
        "endpoint",
        "server_path",
        "ingest",
        "freshness",
        "tooling",
    } <= result.keys()
    assert result["machine"]["cores"] > 0
    assert result["versions"]["clickhouse"]
    # the scheduled copy similar_products reads ran before the endpoints were measured
    assert result["dataset"]["copies_rows"]["product_similarities_copy"] > 0
    endpoint = result["endpoint"]
    assert endpoint["generator"] in ("wrk", "httpx")
    assert set(endpoint["pipes"]) == {
        "recommendations",
        "similar_products",
        "user_profile",
        "offer",
        "trending",
    }
    for pipe, figures in endpoint["pipes"].items():
        assert figures["rows_read_p50"] > 0, pipe
        for c in ("c1", "c4"):
            for side in ("engine", "http"):
                for key in ("p50_ms", "p99_ms", "throughput_rps"):
                    assert figures[c][side][key] > 0, (pipe, c, side, key)
            assert figures[c]["http"]["generator"] == endpoint["generator"]
            for key in ("p50_ratio", "p99_ratio", "throughput_ratio"):
                assert figures[c][key] > 0
            # trending has `cache: {ttl: 1}`: most calls are hits; the others have no cache
            hits = figures[c]["http"]["cache_hit_rate"]
            assert (hits > 0.5) if pipe == "trending" else (hits is None), (pipe, c, hits)
    for kind in ("with_views", "table_only", "bad_rows"):
        ingest = result["ingest"][kind]
        assert ingest["rows"] > 0 and ingest["ratio"] > 0
        for side in ("engine", "http"):
            assert ingest[side]["rows_per_s"] > 0 and ingest[side]["mb_per_s"] > 0
    assert result["freshness"]["probes"] > 0 and result["freshness"]["p99_ms"] > 0
    assert result["server_path"]["p50_ms"] > 0
    root = result["tooling"]["projects"]["root"]
    for key in ("check_s", "deploy_empty_s", "deploy_unchanged_s", "test_s"):
        assert root[key] > 0
    assert "| recommendations | 1 |" in capsys.readouterr().out
    if os.environ.get("RTP_TEST_KAFKA"):  # bench/kafka.py needs a broker
        k = result["kafka"]
        for side in ("kafka", "http", "engine"):
            assert k["throughput"][side]["rows_per_s"] > 0, side
        assert k["throughput"]["ratio_to_http"] > 0 and k["throughput"]["ratio_to_engine"] > 0
        assert k["freshness"]["probes"] > 0 and k["freshness"]["p99_ms"] > 0
    else:
        assert "skipped" in result["kafka"]
