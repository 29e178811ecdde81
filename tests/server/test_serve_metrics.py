"""/metrics: prometheus_client's exposition, one registry per app, closed label sets."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_made_up_methods_paths_and_statuses_fall_into_closed_labels(serve):
    s = serve()
    for method in ("BREW", "PROPFIND", "X" * 50):
        await s.client.request(method, "/v0/pipes/recs.json", params={"token": s.admin})
    await s.client.request("DELETE", f"/{'a' * 30}")
    await s.client.get("/v0/pipes/not_a_pipe.csv")
    s.state.metrics.observe("GET", "/healthz", 599, 0.001)  # a status no standard names
    got = samples((await s.client.get("/metrics")).text)
    assert got['rtp_requests_total{method="other",route="/v0/pipes/recs",status="405"}'] == 3
    assert got['rtp_requests_total{method="DELETE",route="other",status="404"}'] == 1
    assert got['rtp_requests_total{method="GET",route="/v0/pipes/<unknown>",status="404"}'] == 1
    assert got['rtp_requests_total{method="GET",route="/healthz",status="5xx"}'] == 1
    assert not [k for k in got if "BREW" in k or "aaaa" in k or "not_a_pipe" in k]


async def test_each_app_has_its_own_registry(serve):
    first, second = serve(), serve()
    await first.client.get("/healthz")
    await first.client.get("/healthz")
    await second.client.get("/healthz")
    key = 'rtp_requests_total{method="GET",route="/healthz",status="200"}'
    assert samples((await first.client.get("/metrics")).text)[key] == 2
    assert samples((await second.client.get("/metrics")).text)[key] == 1


async def test_ingested_rows_are_labelled_by_known_datasources_only(serve):
    s = serve()
    s.state.metrics.ingested("events", 3, 1)
    s.state.metrics.ingested("made_up", 5, 0)
    got = samples((await s.client.get("/metrics")).text)
    assert got['rtp_rows_ingested_total{datasource="events"}'] == 3
    assert got['rtp_rows_quarantined_total{datasource="events"}'] == 1
    assert got['rtp_rows_ingested_total{datasource="other"}'] == 5
