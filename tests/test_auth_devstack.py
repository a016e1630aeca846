"""The local stack's dev RS256 issuer (README.md), end to end: the app in the stack verifies
RS256 tokens through the JWKS the stack serves, exactly as it would with Cognito."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest

from devstack.stack import LocalStack
from tests.e2e.support import connect, http, recv_json, recv_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running
    assert running.stop() == 0


def rs256(stack: LocalStack, user_id: str, **fields: object) -> str:
    reply = http(
        "POST", f"{stack.rest_url}/dev/token", {"user_id": user_id, "rs256": True, **fields}
    )
    assert reply.status == 200, reply.body
    return reply.body["token"]


def test_the_stack_serves_its_jwks_and_mints_rs256_tokens(stack: LocalStack) -> None:
    jwks = http("GET", f"{stack.rest_url}/dev/jwks.json").body
    [key] = jwks["keys"]
    token = rs256(stack, "alice", groups=["clients"])
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": key["kid"], "typ": "JWT"}
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="notifications-local",
        issuer=f"{stack.rest_url}/dev",
    )
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["clients"]
    assert "private" not in str(key) and "d" not in key


def test_rs256_tokens_connect_register_and_receive(stack: LocalStack) -> None:
    user = rs256(stack, "rita")
    admin = rs256(stack, "staff", admin=True)

    async def scenario() -> list[dict[str, object]]:
        async with connect(f"{stack.ws_url}/?token={user}") as socket:
            await socket.send('{"action": "register", "request_id": "r1"}')
            registered = await recv_json(socket)
            assert registered["event"] == "registered", registered
            assert registered["user_id"] == "rita"
            sent = await asyncio.to_thread(
                http,
                "POST",
                f"{stack.rest_url}/api/notifications",
                {"user_id": "rita", "message": "Signed with RS256"},
                token=admin,
            )
            assert sent.status == 201, sent.body
            return await recv_until(socket, lambda frame: frame["event"] == "notification")

    frames = asyncio.run(scenario())
    assert frames[-1]["notification"]["message"] == "Signed with RS256"


def test_rs256_admin_comes_from_the_admin_group_and_users_are_not_admins(
    stack: LocalStack,
) -> None:
    body = {"user_id": "rita", "message": "hi"}
    user = http("POST", f"{stack.rest_url}/api/notifications", body, token=rs256(stack, "u"))
    assert user.status == 403
    me = http("GET", f"{stack.rest_url}/api/notifications", token=rs256(stack, "u"))
    assert me.status == 200


def test_a_forged_rs256_token_is_rejected(stack: LocalStack) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    kid = http("GET", f"{stack.rest_url}/dev/jwks.json").body["keys"][0]["kid"]
    forged = jwt.encode(
        {
            "sub": "mallory",
            "exp": 2_000_000_000,
            "iss": f"{stack.rest_url}/dev",
            "aud": "notifications-local",
            "cognito:groups": ["admins"],
        },
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": kid},
    )
    reply = http("GET", f"{stack.rest_url}/api/notifications", token=forged)
    assert reply.status == 401


def test_hs256_dev_tokens_still_work_beside_it(stack: LocalStack) -> None:
    reply = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token("alice"))
    assert reply.status == 200


def test_the_cli_asks_the_stack_for_an_rs256_token(stack: LocalStack) -> None:
    port = str(urlsplit(stack.rest_url).port)
    env = {k: v for k, v in os.environ.items() if k not in {"REST_URL"}} | {"REST_PORT": port}
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "token", "carl", "--rs256", "--admin"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = result.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    sent = http(
        "POST",
        f"{stack.rest_url}/api/notifications",
        {"user_id": "rita", "message": "from the CLI's admin"},
        token=token,
    )
    assert sent.status == 201, sent.body
