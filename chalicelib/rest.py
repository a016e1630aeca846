"""The REST edge: authentication, rate limits, parsing and error mapping for every route.

Each route in app.py declares who may call it and which models parse its body, query and
path parameters (by name, in chalicelib/bodies.py: a model is imported and built on the first
request of a route that uses it, so a function's init phase builds none); the view
receives parsed models (path parameters as keyword arguments) and returns a `Reply`. Errors
become Chalice's `{"Code", "Message"}` shape here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cache
from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from chalice.app import Chalice, Response

from chalicelib.auth import Principal
from chalicelib.errors import (
    InvalidJSON,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    ValidationFailed,
)
from chalicelib.retry import as_unavailable
from chalicelib.telemetry import logger as log
from chalicelib.wiring import get_service

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.bodies import PathParameters

MAX_BODY_BYTES = 64 * 1024
ERROR_NAMES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    410: "GoneError",
    413: "RequestEntityTooLargeError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


# The case notice list as CSV: its columns, in order.
CASE_COLUMNS = (
    "notification_id",
    "user_id",
    "type",
    "category",
    "created_at",
    "delivered_at",
    "seen_at",
    "read_at",
    "confirmed_at",
    "escalations",
    "content_sha256",
    "verified",
)


class Access(Enum):
    ANYONE = "anyone"
    USER = "user"
    ADMIN = "admin"
    LOCAL = "local"  # anyone, on local/dev stages only


class RouteSpec(NamedTuple):
    """A route as declared, for tools that describe the API (devstack's OpenAPI document).
    Its models are named in `models` (a module) and imported when first asked for."""

    path: str
    method: str
    access: Access
    body_name: str | None
    query_name: str | None
    parameters_name: str | None
    status: int | None  # the success status when declared; None: the view decides
    name: str
    models: str

    @property
    def body(self) -> type[BaseModel] | None:
        return None if self.body_name is None else _model(self.models, self.body_name)

    @property
    def query(self) -> type[BaseModel] | None:
        return None if self.query_name is None else _model(self.models, self.query_name)

    @property
    def parameters(self) -> type[PathParameters] | None:
        if self.parameters_name is None:
            return None
        return cast("type[PathParameters]", _model(self.models, self.parameters_name))

    def check(self) -> None:
        """Raise TypeError unless the path parameters model has exactly the path's names."""
        names = set(re.findall(r"{(\w+)}", self.path))
        declared = self.parameters
        if names != set(declared.model_fields if declared else ()):
            raise TypeError(
                f"{self.path}: declare a PathParameters model of exactly {sorted(names)}"
            )


@cache
def _model(module: str, name: str) -> type[BaseModel]:
    from pydantic import BaseModel

    model = getattr(import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{module}.{name} is not a model")
    return model


# Views build their reply models with `model_construct`: validation is for what comes in; a
# reply is only serialized, so a value outside a bound the contract documents is no 500.
class Reply(NamedTuple):
    body: BaseModel | str | dict[str, Any] | None = None  # a model of chalicelib/contract.py
    status: int = 200
    headers: Mapping[str, str] = MappingProxyType({})


def error_response(exc: ServiceError) -> Response:
    headers = {"Content-Type": "application/json"}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        body={"Code": ERROR_NAMES.get(exc.status, "InternalServerError"), "Message": exc.message},
        status_code=exc.status,
        headers=headers,
    )


def _json_body(raw: bytes) -> Any:
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Bodies are limited to {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise InvalidJSON("Body is not valid JSON") from None
    except RecursionError:
        # Deeper than the parser can go, far past the 32 levels `data` may nest.
        raise ValidationFailed("The body is nested too deeply") from None


def _path_arguments(model: type[PathParameters], values: dict[str, str]) -> dict[str, Any]:
    from chalicelib.models import parse

    try:
        return parse(model, values).model_dump()
    except ValidationFailed:
        if model.unknown_as is None:
            raise
        raise NotFound(f"No such {model.unknown_as}") from None


class RestApi:
    """Registers Chalice routes whose views get a principal and parsed models (named in the
    module `models`)."""

    def __init__(self, app: Chalice, *, models: str = "chalicelib.bodies") -> None:
        self._app = app
        self._models = models
        self.routes: list[RouteSpec] = []

    def route(
        self,
        path: str,
        *,
        method: str = "GET",
        access: Access = Access.USER,
        body: str | None = None,
        query: str | None = None,
        parameters: str | None = None,
        status: int | None = None,
        writes: bool = False,
    ) -> Callable[[Callable[..., Reply]], Callable[..., Response]]:
        """`body`, `query`, `parameters`: names of models of the API's models module (a
        PathParameters model of exactly the path's names, checked on the route's first
        request). `writes`: the view's first AWS write is a transaction, which then carries
        the request's rate-limit charge (`Sessions.charged`) instead of a call of its own."""

        def register(view: Callable[..., Reply]) -> Callable[..., Response]:
            spec = RouteSpec(
                path, method, access, body, query, parameters, status, view.__name__, self._models
            )
            # The route's models, resolved and checked on its first request.
            resolved: list[
                tuple[type[BaseModel] | None, type[BaseModel] | None, type[PathParameters] | None]
            ] = []

            def handler(**path_params: str) -> Response:
                try:
                    if not resolved:
                        spec.check()
                        resolved.append((spec.body, spec.query, spec.parameters))
                    body_model, query_model, parameters_model = resolved[0]
                    arguments = self._arguments(access, body_model, query_model, charge=not writes)
                    if parameters_model is not None:
                        arguments |= _path_arguments(parameters_model, path_params)
                    principal = arguments.get("principal")
                    if writes and principal is not None:
                        with get_service().rate_limit.charged(principal):
                            reply = view(**arguments)
                    else:
                        reply = view(**arguments)
                except ServiceError as exc:
                    if exc.status >= 500:
                        log.exception("request failed", extra={"path": path})
                    return error_response(exc)
                except Exception as exc:
                    busy = as_unavailable(exc)
                    if busy is None:
                        raise
                    log.exception("request failed", extra={"path": path})
                    return error_response(busy)
                content = reply.body
                if content is not None and not isinstance(content, str | dict):
                    content = content.model_dump(mode="json")
                return Response(
                    body=content if content is not None else "",
                    status_code=reply.status,
                    headers={"Content-Type": "application/json", **reply.headers},
                )

            handler.__name__ = view.__name__
            handler.__doc__ = view.__doc__
            self._app.route(path, methods=[method], cors=True)(handler)
            self.routes.append(spec)
            return handler

        return register

    def _arguments(
        self,
        access: Access,
        body: type[BaseModel] | None,
        query: type[BaseModel] | None,
        *,
        charge: bool = True,
    ) -> dict[str, Any]:
        from chalicelib.models import parse

        request = self._app.current_request
        service = get_service()
        arguments: dict[str, Any] = {}
        if access is Access.LOCAL and not service.settings.test_routes_enabled:
            raise NotFound("No such route on this stage")
        if access in (Access.USER, Access.ADMIN):
            principal: Principal = service.verifier.verify_header(
                request.headers.get("authorization")
            )
            if access is Access.ADMIN:
                principal.require_admin()
            if charge:
                service.rate_limit.check(principal)
            arguments["principal"] = principal
        if body is not None:
            data = _json_body(request.raw_body)
            if not isinstance(data, dict):
                raise ValidationFailed("The body must be a JSON object")
            arguments["body"] = parse(body, data)
        if query is not None:
            # Query strings are text: validate them leniently ("5" is 5, "true" is true).
            arguments["query"] = parse(query, dict(request.query_params or {}), strict=False)
        return arguments


def notices_csv(notices: list[dict[str, Any]]) -> str:
    """The case notice list as CSV: a header row, columns in CASE_COLUMNS order, nulls empty."""
    import csv  # this route's only
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CASE_COLUMNS)
    for notice in notices:
        row = dict(notice)
        row["escalations"] = ";".join(f"{e['channel']}@{e['at']}" for e in notice["escalations"])
        row["verified"] = "true" if notice["verified"] else "false"
        writer.writerow(["" if row[column] is None else row[column] for column in CASE_COLUMNS])
    return out.getvalue()


# The parts of an export, in order; its cursor names one and the last id handed over of it.
EXPORT_PARTS = ("notifications", "receipts")


def export_cursor(position: tuple[str, str | None] | None) -> str | None:
    """The opaque `next_cursor` of an export page: where the next one starts (None: done)."""
    if position is None:
        return None
    part, after = position
    raw = json.dumps({"part": part, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def export_position(cursor: str | None) -> tuple[str, str | None]:
    """Where the export page a cursor asks for starts; one the export did not give is a 422."""
    from ulid import ULID  # this route's only

    from chalicelib.rights import EXPORT_START

    if cursor is None:
        return EXPORT_START
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        part, after = decoded["part"], decoded["after"]
        if part not in EXPORT_PARTS or set(decoded) != {"part", "after"}:
            raise ValueError(part)
        if after is not None:
            ULID.from_str(after)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("cursor is not one this export gave") from exc
    return part, after
