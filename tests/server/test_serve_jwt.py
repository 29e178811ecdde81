"""JWTs through HTTP: HS256 only, exp/nbf/iat with a bounded leeway, every malformed token
a 403 RTP403 (never a 500), Tinybird's claim shape with unknown claims ignored."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rtp.server.tokens import JWT_LEEWAY, TokenStore

pytestmark = [
    pytest.mark.anyio,  # the HS512 and RSA cases use keys PyJWT warns about
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]
SCOPES = [{"type": "PIPES:READ", "resource": "recs", "fixed_params": {"user_id": "u2"}}]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json64(value) -> str:
    return _b64(json.dumps(value).encode())


def _sign(secret: str, head: str, body: str) -> str:
    import hashlib
    import hmac

    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _served(serve):
    s = serve()
    secret = TokenStore(s.root / ".rtp" / "tokens.json").jwt_secret
    s.state.tokens._checked = 0  # the server re-reads the file at most once a second
    return s, secret


async def _get(s, token):
    if not token.isascii():  # a header can't carry it; the query string can
        return await s.client.get("/v0/pipes/recs.json", params={"user_id": "u1", "token": token})
    return await s.client.get(
        "/v0/pipes/recs.json",
        params={"user_id": "u1"},
        headers={"Authorization": f"Bearer {token}"},
    )


def _claims(**extra) -> dict:
    return {"name": "shop_u2", "exp": int(time.time()) + 600, "scopes": SCOPES, **extra}


async def test_valid_tinybird_jwt_applies_fixed_params(serve):
    s, secret = _served(serve)
    # Tinybird's JWT shape: workspace_id and limits are Tinybird's own, ignored here
    token = pyjwt.encode(
        _claims(
            workspace_id="1f6a5a3a-0000-4000-8000-000000000000",
            limits={"rps": 10},
            iat=int(time.time()),
        ),
        secret,
        algorithm="HS256",
    )
    r = await _get(s, token)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"product_id": "p3", "spent": 99, "n": 1}]  # u2's, not u1's


async def test_clock_skew_within_the_leeway_is_accepted(serve):
    s, secret = _served(serve)
    now = int(time.time())
    token = pyjwt.encode(
        _claims(exp=now - JWT_LEEWAY // 3, nbf=now + JWT_LEEWAY // 3, iat=now + JWT_LEEWAY // 3),
        secret,
        algorithm="HS256",
    )
    assert (await _get(s, token)).status_code == 200


def _cases(secret: str) -> dict[str, str]:
    now = int(time.time())
    good = _claims()
    head = _json64({"alg": "HS256", "typ": "JWT"})
    valid = pyjwt.encode(good, secret, algorithm="HS256")
    h, b, sig = valid.split(".")
    tampered = {**good, "scopes": [{"type": "PIPES:READ", "resource": "recs"}]}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "expired": pyjwt.encode(_claims(exp=now - JWT_LEEWAY - 60), secret, algorithm="HS256"),
        "no_exp": pyjwt.encode(
            {k: v for k, v in good.items() if k != "exp"}, secret, algorithm="HS256"
        ),
        "not_yet_valid": pyjwt.encode(
            _claims(nbf=now + JWT_LEEWAY + 600), secret, algorithm="HS256"
        ),
        "issued_in_future": pyjwt.encode(
            _claims(iat=now + JWT_LEEWAY + 600), secret, algorithm="HS256"
        ),
        "alg_none": f"{_json64({'alg': 'none', 'typ': 'JWT'})}.{b}.",
        "alg_none_signed": _sign(secret, _json64({"alg": "none"}), b),
        "hs512": pyjwt.encode(good, secret, algorithm="HS512"),
        "rs256": pyjwt.encode(good, rsa_key, algorithm="RS256"),
        # algorithm confusion: HS256 keyed with a public key a server might also hold
        "confusion": _sign(public_pem.decode(), head, b),
        "wrong_key": pyjwt.encode(good, "another secret of at least 32 bytes!", algorithm="HS256"),
        "tampered_payload": f"{h}.{_json64(tampered)}.{sig}",
        "tampered_signature": f"{h}.{b}.{sig[:-4]}AAAA",
        "garbage": "a.b.c",
        "empty_parts": "..",
        "not_base64": "!!!.@@@.###",
        "unicode": "é.é.é",
        "header_not_object": _sign(secret, _json64([1, 2]), b),
        "claims_not_object": _sign(secret, head, _json64([1, 2])),
        "claims_not_json": _sign(secret, head, _b64(b"{nope")),
        "scopes_not_list": pyjwt.encode(_claims(scopes=5), secret, algorithm="HS256"),
        "scopes_string": pyjwt.encode(_claims(scopes="PIPES:READ:recs"), secret, algorithm="HS256"),
        "scope_not_object": pyjwt.encode(_claims(scopes=[5]), secret, algorithm="HS256"),
        "admin_scope": pyjwt.encode(
            _claims(scopes=[{"type": "ADMIN", "resource": ""}]), secret, algorithm="HS256"
        ),
        "fixed_params_list": pyjwt.encode(
            _claims(scopes=[{"type": "PIPES:READ", "resource": "recs", "fixed_params": [1]}]),
            secret,
            algorithm="HS256",
        ),
        "exp_not_number": pyjwt.encode(_claims(exp="tomorrow"), secret, algorithm="HS256"),
        "name_object": pyjwt.encode(_claims(name={"a": 1}), secret, algorithm="HS256"),
    }


CASES = list(_cases("x" * 32))


@pytest.mark.parametrize("case", CASES)
async def test_bad_jwt_is_a_clean_403(serve, case):
    s, secret = _served(serve)
    token = _cases(secret)[case]
    r = await _get(s, token)
    assert r.status_code == 403, (case, r.status_code, r.text)
    assert r.json()["code"] == "RTP403"
    assert r.json()["error"].startswith(("invalid token", "token expired")), r.json()


async def test_jwt_errors_say_what_is_wrong(serve):
    s, secret = _served(serve)
    cases = _cases(secret)
    assert (await _get(s, cases["expired"])).json()["error"].startswith("token expired")
    assert "not yet valid" in (await _get(s, cases["not_yet_valid"])).json()["error"]
    assert "HS256" in (await _get(s, cases["rs256"])).json()["error"]
    assert "exp" in (await _get(s, cases["no_exp"])).json()["error"]


def test_token_cli_jwt_is_accepted_by_the_server(cli, project_factory):
    root = project_factory()
    r = cli(
        "token",
        "jwt",
        "tenant",
        "-s",
        "PIPES:READ:by_user",
        "--fixed",
        "user_id=u7",
        "--expires",
        "120",
        "-p",
        root,
    )
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    secret = TokenStore(root / ".rtp/tokens.json").jwt_secret
    claims = pyjwt.decode(token, secret, algorithms=["HS256"])
    assert pyjwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "by_user", "fixed_params": {"user_id": "u7"}}
    ]
    assert 100 <= claims["exp"] - time.time() <= 121
    assert abs(claims["iat"] - time.time()) < 60
    grant = TokenStore(root / ".rtp/tokens.json").grant(token)
    assert grant.name == "tenant" and grant.fixed("PIPES:READ", "by_user") == {"user_id": "u7"}
