"""Token verification (docs/rest.md): HS256 with the standard library, RS256 from a JWKS served
over HTTP on 127.0.0.1, the fail-closed settings, and the lazy import of `cryptography`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import pytest
from chalice.test import Client
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import app as lambda_app
from chalicelib.auth import TokenVerifier
from chalicelib.errors import ConfigurationError, Unauthorized
from chalicelib.settings import Settings
from chalicelib.token_keys import JwksKeys
from tests.conftest import WsClient
from tests.local_http import LocalServer, respond

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s" * 32
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test"
AUDIENCE = "client-123"


def hs256(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def claims(user_id: str = "alice", ttl: int = 600, **extra: Any) -> dict[str, Any]:
    return {"sub": user_id, "exp": int(time.time()) + ttl, **extra}


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- HS256 ------------------------------------------------------------------------------------


def test_hs256_tokens_minted_by_pyjwt_verify() -> None:
    token = hs256(claims(roles=["admin"], groups=["staff"], iat=int(time.time())))
    principal = TokenVerifier(SECRET).verify(token)
    assert principal.user_id == "alice"
    assert principal.is_admin
    assert principal.groups == ("staff", "admins")


@pytest.mark.parametrize(
    "token",
    [
        hs256(claims(), secret="another-secret-of-at-least-32-bytes"),
        hs256(claims(ttl=-1)),
        hs256({"sub": "alice"}),
        hs256(claims(exp="soon")),
        hs256({"sub": "alice", "exp": True}),
        hs256(claims(nbf=int(time.time()) + 600)),
        hs256(claims(user_id="has space")),
        hs256({"exp": int(time.time()) + 600}),
        hs256(claims(roles="admin")),
        hs256(claims(), crit=["exp"]),
        jwt.encode(claims(), SECRET, algorithm="HS512"),
        f"{segment({'alg': 'none'})}.{segment(claims())}.",
        f"{segment({'alg': 'HS256'})}.{segment([1, 2])}.abc",
        f"{segment({'alg': 'HS256'})}.{segment(b'[' * 100_000)}.abc",
        "a.b",
        "ä.b.c",
        "",
    ],
    # Named, not shown: some carry the time of collection, which each test worker reads anew.
    ids=[
        "other-secret",
        "expired",
        "no-exp",
        "exp-text",
        "exp-bool",
        "not-yet-valid",
        "user-id-with-space",
        "no-sub",
        "roles-text",
        "crit-header",
        "hs512",
        "alg-none",
        "payload-array",
        "payload-deep",
        "two-segments",
        "non-ascii",
        "empty",
    ],
)
def test_hs256_rejects_forged_expired_and_malformed_tokens(token: str) -> None:
    with pytest.raises(Unauthorized):
        TokenVerifier(SECRET).verify(token)


def test_a_padded_or_tampered_signature_is_rejected() -> None:
    token = hs256(claims())
    header, payload, signature = token.split(".")
    for suffix in ("=", "!", "\n", " "):
        with pytest.raises(Unauthorized):
            TokenVerifier(SECRET).verify(f"{header}.{payload}.{signature}{suffix}")
        with pytest.raises(Unauthorized):
            TokenVerifier(SECRET).verify(f"{header}.{payload}{suffix}.{signature}")
    forged_payload = segment(claims(roles=["admin"]))
    with pytest.raises(Unauthorized):
        TokenVerifier(SECRET).verify(f"{header}.{forged_payload}.{signature}")


@pytest.mark.parametrize(
    "exp",
    ["NaN", "Infinity", "1e400", "1" + "0" * 400, "9007199254740993"],
    ids=["nan", "inf", "1e400", "10**400", "2**53+1"],
)
def test_a_signed_token_whose_exp_is_no_time_is_unauthorized(exp: str) -> None:
    """Signed, so only a holder of the secret could send it: still a 401, never a 500 (NaN
    passes every comparison; a number past 2**53 fits no store)."""
    header = segment({"alg": "HS256", "typ": "JWT"})
    payload = segment(f'{{"sub":"alice","exp":{exp}}}'.encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    token = f"{header}.{payload}.{segment(signature.digest())}"
    with pytest.raises(Unauthorized):
        TokenVerifier(SECRET).verify(token)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.lists(st.text(max_size=40), max_size=4).map(".".join))
def test_hostile_tokens_only_ever_raise_unauthorized(token: str) -> None:
    with pytest.raises(Unauthorized):
        TokenVerifier(SECRET).verify(token)


# --- RS256 from a JWKS --------------------------------------------------------------------------


class Issuer:
    """A JWKS endpoint on 127.0.0.1 with keys that can be rotated, counting its requests."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests = 0
        self.rotate()
        self.server = LocalServer(self._serve)
        self.url = f"http://127.0.0.1:{self.server.port}/.well-known/jwks.json"

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        body = json.dumps(self.jwks()).encode()
        respond(request, 200, body, {"Content-Type": "application/json"})

    def rotate(self) -> str:
        kid = f"key-{len(self.keys) + 1}"
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def jwks(self) -> dict[str, Any]:
        entries = []
        for kid, key in self.keys.items():
            entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            entries.append({**entry, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": entries}

    def token(self, kid: str | None = None, **overrides: Any) -> str:
        kid = kid or next(iter(self.keys))
        body = {**claims(), "iss": ISSUER, "aud": AUDIENCE, **overrides}
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    yield running
    running.server.close()


def rs_verifier(issuer: Issuer, **options: Any) -> TokenVerifier:
    jwks = JwksKeys(issuer.url, refresh_interval=options.pop("refresh_interval", 60.0))
    return TokenVerifier(
        options.pop("secret", None), jwks=jwks, issuer=ISSUER, audience=AUDIENCE, **options
    )


def test_cognito_id_token_with_groups_and_admin_group(issuer: Issuer) -> None:
    token = issuer.token(**{"cognito:groups": ["admins", "staff"]})
    principal = rs_verifier(issuer).verify(token)
    assert principal.user_id == "alice"
    assert principal.is_admin
    assert set(principal.groups) == {"admins", "staff"}


def test_admin_group_is_configurable_and_roles_grant_admin(issuer: Issuer) -> None:
    verifier = rs_verifier(issuer, admin_group="caseworkers")
    assert verifier.verify(issuer.token(groups=["caseworkers"])).is_admin
    assert not verifier.verify(issuer.token(groups=["admins"])).is_admin
    assert verifier.verify(issuer.token(roles=["admin"])).is_admin


@pytest.mark.parametrize(
    "exp",
    [float("nan"), float("inf"), 10**400, 2**53 + 1],
    ids=["nan", "inf", "10**400", "2**53+1"],
)
def test_an_identity_provider_token_whose_exp_is_no_time_is_unauthorized(
    issuer: Issuer, exp: float
) -> None:
    with pytest.raises(Unauthorized):
        rs_verifier(issuer).verify(issuer.token(exp=exp))


def test_cognito_access_token_is_checked_by_client_id(issuer: Issuer) -> None:
    verifier = rs_verifier(issuer)
    access = issuer.token(aud=None, client_id=AUDIENCE, token_use="access")
    assert verifier.verify(access).user_id == "alice"
    with pytest.raises(Unauthorized):
        verifier.verify(issuer.token(aud=None, client_id="someone-else"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example.com"},
        {"iss": None},
        {"aud": "another-client"},
        {"aud": ["another-client"]},
        {"exp": int(time.time()) - 5},
        {"sub": None},
        {"cognito:groups": "admins"},
    ],
)
def test_rs256_claims_are_checked(issuer: Issuer, overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        rs_verifier(issuer).verify(issuer.token(**overrides))


def test_a_token_signed_by_another_key_with_a_known_kid_is_rejected(issuer: Issuer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {**claims(), "iss": ISSUER, "aud": AUDIENCE}, stranger, algorithm="RS256",
        headers={"kid": "key-1"},
    )  # fmt: skip
    with pytest.raises(Unauthorized):
        rs_verifier(issuer).verify(forged)


def test_hs256_with_the_public_key_as_secret_is_rejected(issuer: Issuer) -> None:
    """Algorithm confusion: an HS256 token "signed" with the public JWK must not pass."""
    public = json.dumps(issuer.jwks()["keys"][0]).encode()
    signing_input = ".".join(
        [segment({"alg": "HS256", "kid": "key-1"}), segment({**claims(), "iss": ISSUER})]
    )
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{segment(signature)}"
    with pytest.raises(Unauthorized):
        rs_verifier(issuer).verify(confused)


def test_keys_are_cached_and_refetched_for_an_unknown_kid(issuer: Issuer) -> None:
    verifier = rs_verifier(issuer, refresh_interval=0.0)
    for _ in range(5):
        verifier.verify(issuer.token())
    assert issuer.requests == 1
    rotated = issuer.rotate()
    assert verifier.verify(issuer.token(kid=rotated)).user_id == "alice"
    assert issuer.requests == 2


def test_unknown_kids_refetch_at_most_once_per_interval(issuer: Issuer) -> None:
    verifier = rs_verifier(issuer, refresh_interval=3600.0)
    verifier.verify(issuer.token())
    header = segment({"alg": "RS256", "kid": "forged"})
    for _ in range(20):
        with pytest.raises(Unauthorized):
            verifier.verify(f"{header}.{segment(claims())}.c2ln")
    assert issuer.requests == 1


def test_hs256_and_jwks_both_on(issuer: Issuer) -> None:
    verifier = rs_verifier(issuer, secret=SECRET)
    assert verifier.verify(hs256(claims(user_id="service"))).user_id == "service"
    assert verifier.verify(issuer.token()).user_id == "alice"
    assert issuer.requests == 1


def test_rs256_without_a_jwks_is_rejected(issuer: Issuer) -> None:
    with pytest.raises(Unauthorized):
        TokenVerifier(SECRET).verify(issuer.token())


def test_an_unreachable_jwks_rejects_tokens_without_crashing() -> None:
    jwks = JwksKeys("http://127.0.0.1:9/jwks.json")
    header = segment({"alg": "RS256", "kid": "k"})
    with pytest.raises(Unauthorized):
        TokenVerifier(jwks=jwks, issuer=ISSUER).verify(f"{header}.{segment(claims())}.c2ln")


# --- settings: fail closed outside local/dev ------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"STAGE": "prod"},
        {"STAGE": "prod", "JWT_SECRET": "too-short"},
        {"STAGE": "staging", "JWT_SECRET": ""},
        {"STAGE": "prod", "JWT_JWKS_URL": "https://idp.example.com/jwks.json"},
        {"STAGE": "prod", "JWT_JWKS_URL": "http://idp.example.com/jwks.json", "JWT_ISSUER": "x"},
        {"STAGE": "local", "JWT_ISSUER": "https://idp.example.com"},
    ],
)
def test_settings_fail_closed(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "env",
    [
        {"STAGE": "prod", "JWT_SECRET": SECRET},
        {"STAGE": "prod", "JWT_SECRET_PARAMETER": "/app/jwt-secret"},
        {"STAGE": "prod", "JWT_JWKS_URL": "https://idp.example.com/jwks", "JWT_ISSUER": ISSUER},
    ],
)
def test_settings_accept_a_secret_or_an_identity_provider(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert settings.jwt_secret != "local-dev-secret"
    assert not settings.test_routes_enabled


@pytest.mark.parametrize("stage", ["local", "dev"])
def test_only_local_and_dev_fall_back_to_the_public_secret(stage: str) -> None:
    settings = Settings.from_env({"STAGE": stage})
    assert settings.jwt_secret == "local-dev-secret"
    assert settings.test_routes_enabled


def test_a_misconfigured_function_refuses_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.delenv("JWT_SECRET")
    with Client(lambda_app.app, stage_name="prod") as client:
        response = client.http.get(
            "/api/notifications", headers={"Authorization": f"Bearer {hs256(claims())}"}
        )
        assert response.status_code == 500
        assert "local-dev-secret" not in response.body.decode()
    with pytest.raises(ConfigurationError, match="Refusing to serve"):
        WsClient().connect(hs256(claims()))


def test_the_test_route_is_404_outside_local_and_dev(
    monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    with Client(lambda_app.app, stage_name="prod") as client:
        response = client.http.post(
            "/api/test/notification/alice",
            body=json.dumps({"message": "hi"}),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 404


# --- cryptography is imported only for RS256 ------------------------------------------------------

LAZY_CHILD = """
import json, sys
import app
from chalicelib.auth import TokenVerifier
from chalicelib.token_keys import JwksKeys
token, secret, jwks_url, issuer = sys.argv[1:]
jwks = JwksKeys(jwks_url) if jwks_url else None
TokenVerifier(secret or None, jwks=jwks, issuer=issuer or None).verify(token)
print(json.dumps(sorted({n.split(".")[0] for n in sys.modules} & {"jwt", "cryptography"})))
"""


def imported_by_verifying(*arguments: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", LAZY_CHILD, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_hs256_path_never_imports_pyjwt_or_cryptography(issuer: Issuer) -> None:
    assert imported_by_verifying(hs256(claims()), SECRET, issuer.url, ISSUER) == []


def test_the_rs256_path_imports_them_when_it_meets_a_token(issuer: Issuer) -> None:
    assert imported_by_verifying(issuer.token(), SECRET, issuer.url, ISSUER) == [
        "cryptography",
        "jwt",
    ]
