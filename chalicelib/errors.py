"""Domain errors, each carrying its WebSocket error code and HTTP status.

ServiceError                    internal_error      500
├── ConfigurationError          internal_error      500  (a deployment mistake, never input)
├── InvalidJSON                 invalid_json        400
├── UnknownAction               unknown_action      400
├── ValidationFailed            validation_error    422
├── Unauthorized                unauthorized        401
├── Forbidden                   forbidden           403
├── NotFound                    not_found           404
├── ConnectionGone              gone                410
├── PayloadTooLarge             payload_too_large   413
├── RateLimited                 rate_limited        429  (carries retry_after seconds)
└── Unavailable                 internal_error      503  (retries ran out: DynamoDB kept
                                                          refusing; carries retry_after)

Errors that carry `retry_after` answer over REST with a `Retry-After` header.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Each subclass declares its code, status and default message as class arguments."""

    code = "internal_error"
    status = 500
    default_message = "Internal error"
    retry_after: int | None = None

    def __init_subclass__(
        cls, *, code: str = "", status: int = 0, message: str = "", **kwargs: object
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = code or cls.code
        cls.status = status or cls.status
        cls.default_message = message or cls.default_message

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message or self.default_message)
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def message(self) -> str:
        return str(self)


# fmt: off
class ConfigurationError(ServiceError, message="The service is misconfigured"): ...
class InvalidJSON(ServiceError, code="invalid_json", status=400, message="Body is not valid JSON"): ...  # noqa: E501
class UnknownAction(ServiceError, code="unknown_action", status=400, message="Unknown action"): ...
class ValidationFailed(ServiceError, code="validation_error", status=422, message="Invalid fields"): ...  # noqa: E501
class Unauthorized(ServiceError, code="unauthorized", status=401, message="Missing, invalid or expired token"): ...  # noqa: E501
class Forbidden(ServiceError, code="forbidden", status=403, message="Not allowed"): ...
class NotFound(ServiceError, code="not_found", status=404, message="Not found"): ...
class ConnectionGone(ServiceError, code="gone", status=410, message="The connection is gone"): ...
class PayloadTooLarge(ServiceError, code="payload_too_large", status=413, message="Payload too large"): ...  # noqa: E501
# fmt: on


class RateLimited(ServiceError, code="rate_limited", status=429, message="Too many requests"):
    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after)


class Unavailable(ServiceError, status=503, message="The service is busy: retry shortly"):
    """A write that kept conflicting or being throttled after the bounded retries: nothing
    partial was reported as done, and the caller may retry."""

    retry_after = 1
