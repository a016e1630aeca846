"""Typed settings, read once from the environment.

Auth fails closed (docs/rest.md): outside stages `local` and `dev` the settings refuse to load
unless a JWT secret (`JWT_SECRET`, at least 32 bytes, or `JWT_SECRET_PARAMETER` naming an SSM
parameter) or an identity provider (`JWT_JWKS_URL` with `JWT_ISSUER`) is configured. Only
`local` and `dev` fall back to the public `local-dev-secret`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cache
from typing import NamedTuple

from chalicelib.errors import ConfigurationError

LOCAL_STAGES = frozenset({"local", "dev"})
LOCAL_DEV_SECRET = "local-dev-secret"
MIN_SECRET_BYTES = 32
# Records of one SQS worker invocation run side by side (SQS hands the worker up to 10); the
# clients' connection pools are sized for them.
JOB_CONCURRENCY = 10


class Settings(NamedTuple):
    stage: str = "local"
    region: str = "us-east-1"
    jwt_secret: str | None = LOCAL_DEV_SECRET
    jwt_secret_parameter: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    admin_group: str = "admins"
    connections_table: str = "connections"
    notifications_table: str = "notifications"
    receipts_table: str = "receipts"
    dynamodb_endpoint: str | None = None
    sqs_endpoint: str | None = None
    websocket_endpoint: str | None = None
    rate_limit_per_minute: int = 120
    notification_retention_days: int = 90
    receipt_retention_days: int = 2555
    connection_ttl_seconds: int = 3 * 3600
    push_concurrency: int = 16
    push_max_attempts: int = 4
    fanout_queue_url: str | None = None
    fanout_threshold: int = 1000
    fanout_batch_size: int = 100
    org_name: str = "Legal Aid"
    app_url: str = "http://127.0.0.1:8000/demo/"
    email_from: str = "notices@example.org"
    escalation_content: str = "summary"  # or "full": the message in the user's locale too
    ses_endpoint: str | None = None
    sns_endpoint: str | None = None
    event_bus_name: str | None = None
    events_endpoint: str | None = None
    # Web Push: the VAPID private key itself (local stacks) or the SSM parameter holding it.
    vapid_private_key: str | None = None
    vapid_private_key_parameter: str | None = None
    push_subject: str | None = None  # VAPID `sub`; APP_URL when unset

    @property
    def test_routes_enabled(self) -> bool:
        return self.stage in LOCAL_STAGES

    @property
    def is_local(self) -> bool:
        return self.stage in LOCAL_STAGES

    def check_auth(self) -> None:
        """Raise ConfigurationError unless the auth settings are safe to serve with."""
        if self.jwt_jwks_url and not self.jwt_issuer:
            raise ConfigurationError("JWT_JWKS_URL is set without JWT_ISSUER: set both")
        if self.jwt_issuer and not self.jwt_jwks_url:
            raise ConfigurationError("JWT_ISSUER is set without JWT_JWKS_URL: set both")
        if self.is_local:
            return
        if self.jwt_jwks_url and not self.jwt_jwks_url.startswith("https://"):
            raise ConfigurationError(f"JWT_JWKS_URL must be https:// on stage {self.stage!r}")
        if self.jwt_secret is not None:
            check_secret(self.jwt_secret, "JWT_SECRET")
        if self.jwt_secret is None and not self.jwt_secret_parameter and not self.jwt_jwks_url:
            raise ConfigurationError(
                f"Refusing to serve on stage {self.stage!r}: no JWT secret (JWT_SECRET or "
                "JWT_SECRET_PARAMETER) and no identity provider (JWT_JWKS_URL) is configured"
            )

    @property
    def shortest_escalation(self) -> timedelta:
        """Steps from PT1M, or from PT1S in local/dev stages (for tests and demos)."""
        return timedelta(seconds=1 if self.stage in LOCAL_STAGES else 60)

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] = os.environ) -> Settings:
        def integer(name: str, default: int, minimum: int = 1) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
            if value < minimum:
                raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
            return value

        defaults = cls()
        stage = env.get("STAGE", defaults.stage)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or defaults.region
        secret_parameter = env.get("JWT_SECRET_PARAMETER") or None
        secret = env.get("JWT_SECRET") or None
        if secret is None and secret_parameter is None and stage in LOCAL_STAGES:
            secret = LOCAL_DEV_SECRET
        settings = cls(
            stage=stage,
            region=region,
            jwt_secret=secret,
            jwt_secret_parameter=secret_parameter,
            jwt_jwks_url=env.get("JWT_JWKS_URL") or None,
            jwt_issuer=env.get("JWT_ISSUER") or None,
            jwt_audience=env.get("JWT_AUDIENCE") or None,
            admin_group=env.get("ADMIN_GROUP") or defaults.admin_group,
            connections_table=env.get("CONNECTIONS_TABLE", defaults.connections_table),
            notifications_table=env.get("NOTIFICATIONS_TABLE", defaults.notifications_table),
            receipts_table=env.get("RECEIPTS_TABLE", defaults.receipts_table),
            dynamodb_endpoint=env.get("DYNAMODB_ENDPOINT") or None,
            sqs_endpoint=env.get("SQS_ENDPOINT") or None,
            websocket_endpoint=(env.get("WEBSOCKET_ENDPOINT") or "").rstrip("/")
            or (
                management_endpoint(api_id, stage, region)
                if (api_id := env.get("WEBSOCKET_API_ID"))
                else None
            ),
            rate_limit_per_minute=integer("RATE_LIMIT_PER_MINUTE", defaults.rate_limit_per_minute),
            notification_retention_days=integer(
                "NOTIFICATION_RETENTION_DAYS", defaults.notification_retention_days
            ),
            receipt_retention_days=integer(
                "RECEIPT_RETENTION_DAYS", defaults.receipt_retention_days
            ),
            push_concurrency=integer("PUSH_CONCURRENCY", defaults.push_concurrency),
            push_max_attempts=integer("PUSH_MAX_ATTEMPTS", defaults.push_max_attempts),
            fanout_queue_url=env.get("FANOUT_QUEUE_URL") or None,
            fanout_threshold=integer("FANOUT_THRESHOLD", defaults.fanout_threshold, minimum=0),
            fanout_batch_size=min(100, integer("FANOUT_BATCH_SIZE", defaults.fanout_batch_size)),
            org_name=env.get("ORG_NAME") or defaults.org_name,
            app_url=env.get("APP_URL") or defaults.app_url,
            email_from=env.get("EMAIL_FROM") or defaults.email_from,
            escalation_content=_choice(
                env, "ESCALATION_CONTENT", ("summary", "full"), defaults.escalation_content
            ),
            ses_endpoint=env.get("SES_ENDPOINT") or None,
            sns_endpoint=env.get("SNS_ENDPOINT") or None,
            event_bus_name=env.get("EVENT_BUS_NAME") or None,
            events_endpoint=env.get("EVENTS_ENDPOINT") or None,
            vapid_private_key=env.get("VAPID_PRIVATE_KEY") or None,
            vapid_private_key_parameter=env.get("VAPID_PRIVATE_KEY_PARAMETER") or None,
            push_subject=env.get("PUSH_SUBJECT") or None,
        )
        settings.check_auth()
        return settings


def check_secret(secret: str, source: str) -> str:
    """Return `secret` if it is long enough for HS256 outside local/dev, else raise."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"The JWT secret from {source} is shorter than {MIN_SECRET_BYTES} bytes"
        )
    return secret


def _choice(
    env: os._Environ[str] | dict[str, str], name: str, allowed: tuple[str, ...], default: str
) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def management_endpoint(api_id: str, stage: str, region: str) -> str:
    """The @connections endpoint of a WebSocket API, as Chalice derives it."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{api_id}.execute-api.{region}.{suffix}/{stage}"


@cache
def get_settings() -> Settings:
    """The process-wide settings; read on first use so imports never touch the environment."""
    return Settings.from_env()
