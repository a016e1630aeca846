"""The REST half of the emulated API Gateway, plus the devstack's own dev routes.

App routes go through ``chalice.local.LocalGateway`` (Chalice's own event translation,
authorizers and CORS preflight), run on the Lambda thread pool. The dev routes exist
only here, never in app.py: ``/openapi.json`` and ``/asyncapi.json`` (the documents of
``devstack.openapi`` and ``devstack.asyncapi``), ``/demo/`` serves the demo page
(``web/demo/``, with the library's service worker at ``/demo/sw.js`` as an app would serve
it), ``/static/notifications/`` the web client library (``web/``, as an app
would serve the npm package), ``POST /dev/token`` mints a token
with the stack's secret, ``GET /dev/config`` tells the demo page where the stack is, ``GET
/dev/stats`` counts the embedded DynamoDB's requests and time, ``GET /dev/outbox`` and ``GET
/dev/events`` list the emails and text messages sent and the events published.

CORS as API Gateway's would be with the app's CORS configuration, for every route here (the
API's and the dev routes alike), so a page on another origin can use the stack: a preflight
(``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an allowed origin is
answered 200 with the allowed methods and headers, without reaching the app; every other
response to an allowed origin carries ``Access-Control-Allow-Origin``. Allowed origins come
from ``CORS_ALLOW_ORIGINS`` (``*`` by default, locally); a preflight from another origin is a
403 without CORS headers, which the browser turns into a refused request.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    EventType,
    LambdaEventConverter,
    LocalGateway,
    LocalGatewayException,
    RouteMatcher,
)

from devstack.context import LambdaContext
from devstack.issuer import DevIssuer
from devstack.runtime import PROJECT_ROOT, Invoker
from devstack.tokens import mint_dev_token

WEB_DIR = PROJECT_ROOT / "web"
LIBRARY_PATH = "/static/notifications"
SERVICE_WORKER = "sw.js"
# Beside the library in web/, never part of it (nor of the npm package).
_NOT_LIBRARY = frozenset({"demo", "test", "testing", "node_modules", "docs", "examples"})
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit
_DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
CORS_ALLOW_METHODS = "GET,POST,PUT,DELETE,OPTIONS"
# Chalice's default CORS headers (what `cors=True` deploys), Authorization and Content-Type
# among them.
CORS_ALLOW_HEADERS = "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key"
CORS_EXPOSE_HEADERS = "Retry-After"
CORS_MAX_AGE = "600"


class _DecodingEventConverter(LambdaEventConverter):
    """chalice.local leaves path parameters percent-encoded; API Gateway decodes them."""

    def create_lambda_event(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> EventType:
        event = super().create_lambda_event(method, path, headers, body)
        captured = event.get("pathParameters") or {}
        event["pathParameters"] = {key: unquote(value) for key, value in captured.items()}
        return event


class _Gateway(LocalGateway):
    """chalice.local's gateway, handing the REST handler the runtime's context shape."""

    def _generate_lambda_context(self) -> LambdaContext:  # type: ignore[override]
        return LambdaContext(function_name=self._config.function_name)


class RestGateway:
    """Serves the Chalice app's REST routes and the dev routes on one aiohttp app."""

    def __init__(
        self,
        app: Chalice,
        invoker: Invoker,
        *,
        jwt_secret: str,
        web_dir: Path = WEB_DIR,
        issuer: DevIssuer | None = None,
        cors_allow_origins: tuple[str, ...] = ("*",),
    ) -> None:
        self._cors_allow_origins = frozenset(cors_allow_origins)
        self._invoker = invoker
        self._issuer = issuer
        self._jwt_secret = jwt_secret
        self._web_dir = web_dir
        self._gateway = _Gateway(app, Config(chalice_stage="local"))
        self._gateway.event_converter = _DecodingEventConverter(
            RouteMatcher(list(app.routes)), app.api.binary_types
        )
        self.ws_url = ""
        self.rest_url = ""
        self.stats_sources: dict[str, Callable[[], dict[str, Any]]] = {}
        self.openapi: dict[str, Any] | None = None  # served at /openapi.json when set
        self.asyncapi: dict[str, Any] | None = None  # served at /asyncapi.json when set
        self.outbox: Callable[[], list[dict[str, Any]]] = list
        self.events: Callable[[], list[dict[str, Any]]] = list

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._cors])
        app.router.add_get("/demo", self._demo_redirect)
        app.router.add_get("/demo/{path:.*}", self._demo)
        app.router.add_get(LIBRARY_PATH + "/{path:.*}", self._library)
        app.router.add_post("/dev/token", self._token)
        if self._issuer is not None:
            app.router.add_get("/dev/jwks.json", self._issuer.jwks_handler)
        app.router.add_get("/dev/config", self._config)
        app.router.add_get("/dev/stats", self._stats)
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/asyncapi.json", self._asyncapi)
        app.router.add_get("/dev/outbox", self._outbox)
        app.router.add_get("/dev/events", self._events)
        # Any path, a newline in it too (`.` stops at one): the app answers what it cannot route.
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self._chalice)
        return app

    def _allowed_origin(self, origin: str | None) -> str | None:
        """The value of Access-Control-Allow-Origin for `origin`, or None: not allowed."""
        if origin is None:
            return None
        if "*" in self._cors_allow_origins:
            return "*"
        return origin if origin in self._cors_allow_origins else None

    @web.middleware
    async def _cors(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = self._allowed_origin(origin)
        preflight = (
            request.method == "OPTIONS"
            and origin is not None
            and "Access-Control-Request-Method" in request.headers
        )
        if preflight:
            if allowed is None:
                return web.json_response(
                    {"Code": "ForbiddenError", "Message": f"Origin {origin} is not allowed"},
                    status=403,
                )
            return web.Response(
                status=200,
                headers={
                    "Access-Control-Allow-Origin": allowed,
                    "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                    "Access-Control-Max-Age": CORS_MAX_AGE,
                    "Vary": "Origin",
                },
            )
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = error
        if allowed is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
            response.headers["Vary"] = "Origin"
        elif origin is not None:
            response.headers.popall("Access-Control-Allow-Origin", None)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    async def _chalice(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            response: dict[str, Any] = await self._invoker.call(
                self._gateway.handle_request,
                request.method,
                request.raw_path,
                dict(request.headers),
                body or None,
            )
        except LocalGatewayException as error:
            return web.Response(status=error.CODE, body=error.body, headers=error.headers or {})
        headers: list[tuple[str, str]] = []
        for name, value in (response.get("headers") or {}).items():
            headers.append((name, str(value)))
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(value)) for value in values)
        headers = [(k, v) for k, v in headers if k.lower() not in _DROPPED_RESPONSE_HEADERS]
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        payload = response.get("body")
        if response.get("isBase64Encoded") and payload is not None:
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode("utf-8")
        return web.Response(status=int(response["statusCode"]), body=payload, headers=headers)

    async def _demo_redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/demo/")

    async def _demo(self, request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"] or "index.html"
        if relative == SERVICE_WORKER:
            # As an app does with the package's sw.js: served from the page's own path, so
            # its scope covers the page.
            return _static(self._web_dir, SERVICE_WORKER)
        return _static(self._web_dir / "demo", relative)

    async def _library(self, request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        if not relative or relative.split("/", 1)[0] in _NOT_LIBRARY:
            raise web.HTTPNotFound()
        return _static(self._web_dir, relative)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response(
                {"Code": "BadRequestError", "Message": "Invalid JSON"}, status=400
            )
        user_id = payload.get("user_id") if isinstance(payload, dict) else None
        groups = payload.get("groups", []) if isinstance(payload, dict) else []
        admin = payload.get("admin", False) if isinstance(payload, dict) else False
        valid = (
            isinstance(user_id, str)
            and 0 < len(user_id) <= 128
            and isinstance(admin, bool)
            and isinstance(groups, list)
            and all(isinstance(group, str) for group in groups)
        )
        if not valid:
            return web.json_response(
                {
                    "Code": "UnprocessableEntityError",
                    "Message": "Expected {user_id: str, admin?: bool, groups?: [str]}",
                },
                status=422,
            )
        if isinstance(payload, dict) and payload.get("rs256") is True and self._issuer:
            token = self._issuer.mint(user_id, admin=admin, groups=groups)
        else:
            token = mint_dev_token(user_id, admin=admin, groups=groups, secret=self._jwt_secret)
        return web.json_response({"token": token})

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        """Counters of the embedded DynamoDB (requests, time inside moto) for benchmarks."""
        return web.json_response({name: source() for name, source in self.stats_sources.items()})

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        if self.openapi is None:
            raise web.HTTPNotFound()
        return web.json_response(self.openapi)

    async def _asyncapi(self, request: web.Request) -> web.StreamResponse:
        if self.asyncapi is None:
            raise web.HTTPNotFound()
        return web.json_response(self.asyncapi)

    async def _outbox(self, request: web.Request) -> web.StreamResponse:
        """Emails and text messages sent through the local SES and SNS, newest first."""
        return web.json_response({"messages": self.outbox()})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Events published on the local EventBridge bus, newest first."""
        return web.json_response({"events": self.events()})

    async def _config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ws_url": self.ws_url, "rest_url": self.rest_url})


def _static(directory: Path, relative: str) -> web.StreamResponse:
    """A file under `directory` (a folder gives its index.html); 404 outside it or missing."""
    root = directory.resolve()
    target = (root / relative).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        raise web.HTTPNotFound()
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return web.FileResponse(target, headers={"Content-Type": content_type})
