"""The JWT secret in SSM: read once per process, bounded retries, no poisoned process."""

from __future__ import annotations

import time
from copy import replace
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError

from chalicelib.auth import TokenVerifier, build_verifier
from chalicelib.errors import ConfigurationError, Unauthorized
from chalicelib.secrets import SECRET_RETRY, SecretSource, is_permanent_client_error
from chalicelib.settings import Settings
from chalicelib.token_keys import token_keys
from tests.conftest import aws_error
from tests.test_retry import Clock

SECRET = "k" * 40
PARAMETER = "/legal-aid-notifications/jwt-secret"


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException"}}, "GetParameter")


def always_throttled() -> str:
    raise throttled()


def source(
    fetch: Any, clock: Clock, *, attempts: int = SECRET_RETRY.attempts, **options: Any
) -> SecretSource:
    """A source on the default backoff (but for `attempts`), pausing on the fake clock."""
    return SecretSource(
        fetch,
        describe="the secret",
        retry=replace(SECRET_RETRY, attempts=attempts, sleep=clock.sleep),
        clock=clock,
        is_permanent=is_permanent_client_error,
        **options,
    )


def test_the_value_is_fetched_once() -> None:
    calls = []
    secrets = source(lambda: calls.append(1) or SECRET, Clock())
    assert {secrets.get() for _ in range(50)} == {SECRET}
    assert calls == [1]


def test_throttling_is_retried_a_bounded_number_of_times_then_fails_clearly() -> None:
    for _ in range(200):  # the pauses are random
        clock = Clock()
        secrets = source(always_throttled, clock)
        with pytest.raises(ConfigurationError, match="ThrottlingException"):
            secrets.get()
        assert secrets.fetches == 3
        # Full jitter under a doubling ceiling: a cold start waits 0.3 s at most.
        assert len(clock.sleeps) == 2
        assert 0 <= clock.sleeps[0] <= 0.1 and 0 <= clock.sleeps[1] <= 0.2


def test_a_deadline_bounds_the_cold_start() -> None:
    clock = Clock()

    def fetch() -> str:
        clock.now += 2.0
        raise throttled()

    secrets = source(fetch, clock, attempts=10, deadline=3.0)
    with pytest.raises(ConfigurationError):
        secrets.get()
    assert secrets.fetches == 2 and len(clock.sleeps) == 1


def test_a_missing_parameter_is_not_retried() -> None:
    def fetch() -> str:
        raise ClientError({"Error": {"Code": "ParameterNotFound"}}, "GetParameter")

    secrets = source(fetch, Clock())
    with pytest.raises(ConfigurationError, match="ParameterNotFound"):
        secrets.get()
    assert secrets.fetches == 1


def test_a_failure_is_retried_by_a_later_invocation_not_every_one() -> None:
    clock = Clock()
    outcomes: list[Any] = [throttled(), throttled(), SECRET]

    def fetch() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    secrets = source(fetch, clock, attempts=2, retry_interval=5.0)
    with pytest.raises(ConfigurationError):
        secrets.get()
    with pytest.raises(ConfigurationError):
        secrets.get()  # within the interval: fails fast, no SSM call
    assert secrets.fetches == 2
    clock.now += 5.0
    assert secrets.get() == SECRET
    assert secrets.fetches == 3


def ssm_reads(session: boto3.session.Session) -> list[str]:
    seen: list[str] = []
    session.events.register(
        "provide-client-params.ssm.GetParameter", lambda params, **_: seen.append(params["Name"])
    )
    return seen


def prod(**env: str) -> Settings:
    return Settings.from_env({"STAGE": "prod", "AWS_REGION": "us-east-1", **env})


def verifier_from_ssm(session: boto3.session.Session) -> TokenVerifier:
    """The verifier of a production stage whose JWT secret is the SSM parameter."""
    settings = prod(JWT_SECRET_PARAMETER=PARAMETER)
    return build_verifier(settings, token_keys(settings, session))


def test_the_secret_is_read_from_ssm_once_and_only_when_a_token_needs_it(aws: None) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PARAMETER, Value=SECRET, Type="SecureString"
    )
    session = boto3.session.Session()
    reads = ssm_reads(session)
    verifier = verifier_from_ssm(session)
    assert reads == []  # a function that never verifies (the fan-out worker) never reads SSM
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    for _ in range(20):
        assert verifier.verify(token).user_id == "alice"
    assert reads == [PARAMETER]


def test_a_short_secret_in_ssm_refuses_to_serve(aws: None) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PARAMETER, Value="short", Type="SecureString"
    )
    verifier = verifier_from_ssm(boto3.session.Session())
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, "short", algorithm="HS256")
    with pytest.raises(ConfigurationError, match="shorter than 32 bytes"):
        verifier.verify(token)


def test_a_missing_parameter_is_a_configuration_error_not_unauthorized(aws: None) -> None:
    verifier = verifier_from_ssm(boto3.session.Session())
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(ConfigurationError) as raised:
        verifier.verify(token)
    assert not isinstance(raised.value, Unauthorized)


def test_ssm_refusing_names_its_code_not_the_account_or_role(aws: None) -> None:
    """The error reaches whoever sent a token (a 500's message, an error frame): it says
    what failed, not AWS's text naming the account, the role and the parameter's ARN."""
    arn = "arn:aws:sts::123456789012:assumed-role/notifications-prod/api_handler"
    session = boto3.session.Session()

    def refuse(**_: Any) -> Any:
        error = {"Code": "AccessDeniedException", "Message": f"User: {arn} is not authorized"}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return aws_error("AccessDeniedException")[0], parsed

    session.events.register("before-call.ssm.GetParameter", refuse)
    verifier = verifier_from_ssm(session)
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    for _ in range(2):  # the first failure, then the one remembered within the interval
        with pytest.raises(ConfigurationError) as raised:
            verifier.verify(token)
        assert "AccessDeniedException" in raised.value.message
        assert "123456789012" not in raised.value.message
