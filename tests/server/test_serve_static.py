"""`static:` in rtp.yaml: folders served next to the API (the storefront at /storefront/),
and the page token `rtp dev` puts in the storefront's URL."""

from __future__ import annotations

import pytest

from rtp.cli.dev import PAGE_TOKEN, page_token
from rtp.project.load import load_project
from rtp.server.tokens import TokenStore
from tests.server.conftest import FILES

PAGE = {
    "rtp.yaml": "name: shop\nstatic:\n  storefront: web/shop\n",
    "web/shop/index.html": "<!doctype html><title>shop</title><script src=app.js></script>",
    "web/shop/app.js": "console.log('hi')",
}


@pytest.mark.anyio
async def test_static_folder_is_served_next_to_the_api(serve):
    s = serve(PAGE)
    assert s.state.pages == ["/storefront/"]
    r = await s.client.get("/storefront/")  # public: the page's token is in its own URL
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert "<title>shop</title>" in r.text
    r = await s.client.get("/storefront/app.js")
    assert r.status_code == 200 and r.text == "console.log('hi')"
    r = await s.client.get("/storefront", params={"token": "t"})  # keeps the token
    assert r.status_code in (307, 308)
    assert r.headers["location"].endswith("/storefront/?token=t")
    r = await s.client.get("/storefront/missing.js")
    assert r.status_code == 404 and r.json()["code"] == "RTP404"
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": s.admin})
    assert r.status_code == 200


@pytest.mark.anyio
async def test_without_static_there_are_no_pages(serve):
    s = serve()
    assert s.state.pages == []
    r = await s.client.get("/storefront/")
    assert r.status_code == 404 and r.json()["code"] == "RTP404"


def test_static_settings_are_checked(project_factory):
    root = project_factory(
        {
            **FILES,
            **PAGE,
            "rtp.yaml": (
                "name: shop\nstatic:\n  storefront: web/shop\n  v0: web/shop\n  gone: nowhere\n"
            ),
        }
    )
    model, problems = load_project(root)
    assert model.settings.static == (("storefront", "web/shop"),)
    found = {(p.code, p.location.line) for p in problems.errors}
    assert found == {("RTP106", 4), ("RTP107", 5)}
    root.joinpath("rtp.yaml").write_text("name: shop\nstatic: [web/shop]\n")
    _, problems = load_project(root)
    assert [p.code for p in problems.errors] == ["RTP104"]


def test_dev_page_token_is_new_on_every_start_and_not_admin(tmp_path):
    path = tmp_path / "tokens.json"
    first = page_token(path)
    second = page_token(path)
    store = TokenStore(path)
    (entry,) = [t for t in store.tokens if t["name"] == PAGE_TOKEN]
    assert entry["scopes"] == ["DATASOURCES:APPEND:*", "PIPES:READ:*"]
    assert store.grant(second).allows("PIPES:READ", "recommendations")
    assert store.grant(second).allows("DATASOURCES:APPEND", "events")
    assert not store.grant(second).allows("DATASOURCES:READ", "events")
    with pytest.raises(Exception, match="403|token"):
        store.grant(first)
