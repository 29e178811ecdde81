"""Tokens: every route checks its scope; JWT fixed_params win over the caller's values."""

from __future__ import annotations

import json
import time

import pytest

from rtp.errors import RequestError
from rtp.server.tokens import TokenStore, decode_jwt, encode_jwt

pytestmark = pytest.mark.anyio
EVENT = json.dumps(
    {"timestamp": "2030-01-01 00:00:00", "user_id": "u5", "product": {"id": "p"}}
).encode()


def store(s) -> TokenStore:
    return TokenStore(s.root / ".rtp" / "tokens.json")


async def test_admin_token_is_stored_hashed(serve):
    s = serve()
    text = (s.root / ".rtp" / "tokens.json").read_text()
    assert s.admin.startswith("rtp_") and s.admin not in text
    assert [t["scopes"] for t in json.loads(text)["tokens"]] == [["ADMIN"]]
    assert (s.root / ".rtp" / "tokens.json").stat().st_mode & 0o777 == 0o600
    assert store(s).ensure_admin() is None  # created once only


@pytest.mark.parametrize(
    ("headers", "params", "error"),
    [
        ({}, {}, "a token is required"),
        ({"Authorization": "Bearer rtp_nope"}, {}, "invalid token"),
        ({}, {"token": "rtp_nope"}, "invalid token"),
        ({}, {"token": "a.b.c"}, "invalid token"),
    ],
)
async def test_missing_or_bad_token_is_403(serve, headers, params, error):
    s = serve()
    r = await s.client.get(
        "/v0/pipes/recs.json", headers=headers, params={"user_id": "u1", **params}
    )
    assert r.status_code == 403
    assert r.json()["code"] == "RTP403"
    assert r.json()["error"].startswith(error)


async def test_scopes_are_checked_per_route_and_resource(serve):
    s = serve({"pipes/other.yaml": "nodes:\n  - {name: o, sql: SELECT 1 AS one}\n"})
    tokens = store(s)
    reader = tokens.create("reader", ["PIPES:READ:recs"])
    writer = tokens.create("writer", ["DATASOURCES:APPEND:events"])
    wildcard = tokens.create("all_pipes", ["pipes:read:*"])

    async def pipe(token, name="recs"):
        return (
            await s.client.get(f"/v0/pipes/{name}.json", params={"user_id": "u1", "token": token})
        ).status_code

    async def ingest(token):
        return (
            await s.client.post(
                "/v0/events", params={"name": "events", "token": token}, content=EVENT
            )
        ).status_code

    assert await pipe(reader) == 200
    assert await pipe(reader, "other") == 403
    assert await pipe(writer) == 403
    assert await pipe(wildcard, "other") == 200
    assert await ingest(writer) == 202
    assert await ingest(reader) == 403
    assert await ingest(s.admin) == 202
    r = await s.client.get("/v0/pipes/other.json", params={"token": reader})
    assert r.json()["error"] == (
        "the token 'reader' has no PIPES:READ scope on 'other' "
        "(create one with --scope PIPES:READ:other)"
    )
    # openapi lists only what the token may read
    spec = (await s.client.get("/v0/pipes/openapi.json", params={"token": reader})).json()
    assert sorted(spec["paths"]) == [
        f"/v0/pipes/recs.{f}" for f in ("csv", "json", "ndjson", "parquet")
    ]
    assert (await s.client.get("/v0/pipes/openapi.json")).status_code == 403


async def test_revoked_token_is_refused_by_a_running_server(serve):
    s = serve()
    token = store(s).create("temp", ["PIPES:READ:recs"])
    params = {"user_id": "u1", "token": token}
    assert (await s.client.get("/v0/pipes/recs.json", params=params)).status_code == 200
    store(s).revoke("temp")
    s.state.tokens._checked = 0  # the server re-reads the file at most once a second
    assert (await s.client.get("/v0/pipes/recs.json", params=params)).status_code == 403


async def test_jwt_fixed_params_cannot_be_overridden(serve):
    s = serve()
    secret = store(s).jwt_secret
    s.state.tokens._checked = 0
    claims = {
        "name": "shop_u2",
        "exp": time.time() + 60,
        "scopes": [{"type": "PIPES:READ", "resource": "recs", "fixed_params": {"user_id": "u2"}}],
    }
    token = encode_jwt(claims, secret)
    r = await s.client.get(
        "/v0/pipes/recs.json",
        params={"user_id": "u1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"product_id": "p3", "spent": 99, "n": 1}]
    # no ingestion with a read JWT, and no other pipe
    r = await s.client.post("/v0/events", params={"name": "events", "token": token}, content=EVENT)
    assert r.status_code == 403


@pytest.mark.parametrize("mutate", ["expired", "forged", "wrong_alg", "admin_scope"])
async def test_bad_jwts_are_403(serve, mutate):
    s = serve()
    secret = store(s).jwt_secret
    s.state.tokens._checked = 0
    claims = {"exp": time.time() + 60, "scopes": [{"type": "PIPES:READ", "resource": "recs"}]}
    if mutate == "expired":
        claims["exp"] = time.time() - 120  # past the 30 s leeway
    if mutate == "admin_scope":
        claims["scopes"] = [{"type": "ADMIN", "resource": ""}]
    forged = "not the secret, though just as long"
    token = encode_jwt(claims, forged if mutate == "forged" else secret)
    if mutate == "wrong_alg":
        head, body, _ = token.split(".")
        token = "eyJhbGciOiJub25lIn0." + body + "."
    r = await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": token})
    assert r.status_code == 403, r.text


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # jwt.io's key
def test_jwt_round_trip_and_signature():
    key = "k" * 32
    token = encode_jwt({"a": 1, "exp": 2_000_000_000}, key)
    assert decode_jwt(token, key) == {"a": 1, "exp": 2_000_000_000}
    # a known HS256 vector (jwt.io's default example): the signature checks, but it has no
    # exp, which rtp (like Tinybird) requires
    known = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpva"
        "G4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    with pytest.raises(RequestError, match="'exp' claim is required"):
        decode_jwt(known, "your-256-bit-secret")
    with pytest.raises(RequestError, match="bad signature"):
        decode_jwt(known, "not-your-256-bit-secret")


def test_token_cli_create_list_revoke_jwt(cli, project_factory):
    root = project_factory()
    r = cli(
        "token",
        "create",
        "site",
        "--scope",
        "PIPES:READ:by_user",
        "-s",
        "DATASOURCES:APPEND:events",
        "-p",
        root,
    )
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert TokenStore(root / ".rtp/tokens.json").grant(token).scopes == {
        "PIPES:READ:by_user",
        "DATASOURCES:APPEND:events",
    }
    r = cli("token", "list", "--json", "-p", root)
    listed = json.loads(r.stdout)
    assert [(t["name"], t["scopes"]) for t in listed] == [
        ("site", ["DATASOURCES:APPEND:events", "PIPES:READ:by_user"])
    ]
    assert token not in r.stdout
    r = cli("token", "create", "bad", "--scope", "PIPES:WRITE:x", "-p", root)
    assert r.exit_code == 2
    assert "is not a scope" in r.output
    r = cli(
        "token", "jwt", "tenant", "-s", "PIPES:READ:by_user", "--fixed", "user_id=u7", "-p", root
    )
    claims = decode_jwt(r.stdout.strip(), TokenStore(root / ".rtp/tokens.json").jwt_secret)
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "by_user", "fixed_params": {"user_id": "u7"}}
    ]
    assert cli("token", "revoke", "site", "-p", root).exit_code == 0
    assert cli("token", "revoke", "site", "-p", root).exit_code == 2
    assert json.loads(cli("token", "list", "--json", "-p", root).stdout) == []
