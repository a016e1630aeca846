"""The OpenAPI 3.1 document of the REST API, rendered from app.py's routes and the contract.

Requests come from the route registry of `chalicelib.rest.RestApi` (path, method, who may
call, body and query models); JSON Schemas from the pydantic models themselves. Responses,
tags and examples come from `chalicelib.contract` (the product's contract; this module only
renders it): a route the contract lacks fails generation, so a new route cannot ship
undescribed. Routes for tests only (stages local and dev) are left out. Errors are Chalice's
``{"Code", "Message"}``, with the statuses each route can answer (from its access, body,
query and path parameters).

``python -m devstack openapi`` writes ``openapi.json`` at the project root (committed; a test
compares it with a fresh generation); the local stack serves it at ``GET /openapi.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chalicelib.contract import ERROR_DESCRIPTIONS, RESPONSES, TAGS
from chalicelib.examples import REPLY_EXAMPLES, REQUEST_EXAMPLES
from devstack.runtime import PROJECT_ROOT

DOCUMENT = PROJECT_ROOT / "openapi.json"
SCHEMA_REF = "#/components/schemas/{model}"
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}


class _Schemas:
    """Collects the JSON Schemas of models under components/schemas."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=SCHEMA_REF, mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        name = model.__name__
        if mode == "validation" and name in self.components and self.components[name] != schema:
            name = f"{name}Input"
        self.components.setdefault(name, schema)
        return {"$ref": SCHEMA_REF.format(model=name)}


def _error_statuses(spec: Any, path: str) -> set[int]:
    from chalicelib.rest import Access

    statuses: set[int] = set()
    if spec is None:
        return statuses
    if spec.access in (Access.USER, Access.ADMIN):
        statuses |= {401, 429}
    if spec.access is Access.ADMIN:
        statuses.add(403)
    if spec.access is Access.LOCAL:
        statuses.add(404)
    statuses.add(503)  # every route of the RestApi reads or writes DynamoDB
    if spec.body is not None:
        statuses |= {400, 413, 422}
    if spec.query is not None:
        statuses.add(422)
    parameters = spec.parameters
    if parameters is not None:
        # A malformed parameter naming something the caller may hold is that thing unknown
        # (404); another is invalid (422) when its model constrains it at all.
        if parameters.unknown_as is not None:
            statuses.add(404)
        elif any(field.metadata for field in parameters.model_fields.values()):
            statuses.add(422)
    if "/connections/" in path:
        statuses.add(410)
    return statuses


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    """Each field of a path or query model as a parameter (a query's validated leniently:
    "5" is 5)."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": where, "required": name in required, "schema": field}
        for name, field in schema.get("properties", {}).items()
    ]


def build_document(app: Any | None = None, api: Any | None = None) -> dict[str, Any]:
    """The document for `app.app` and its `RestApi` (app.py's by default)."""
    if app is None or api is None:
        import app as application

        app, api = application.app, application.api
    from chalicelib.contract import REPLY_MODELS as replies
    from chalicelib.rest import Access

    schemas = _Schemas()
    error_ref = {"$ref": SCHEMA_REF.format(model="Error")}
    schemas.components["Error"] = {
        "type": "object",
        "properties": {"Code": {"type": "string"}, "Message": {"type": "string"}},
        "required": ["Code", "Message"],
    }
    specs = {(spec.method, spec.path): spec for spec in api.routes}
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method in sorted(methods):
            spec = specs.get((method, path))
            if spec is not None and spec.access is Access.LOCAL:
                continue
            success = RESPONSES.get((method, path))
            if success is None:
                raise KeyError(f"{method} {path}: describe its responses in chalicelib.contract")
            operation: dict[str, Any] = {
                "operationId": methods[method].view_name,
                "summary": success.summary,
                "tags": [success.tag],
                "responses": {},
            }
            parameters: list[dict[str, Any]] = []
            if spec is not None and spec.parameters is not None:
                parameters += _parameters(spec.parameters, "path")
            if spec is not None and spec.query is not None:
                parameters += _parameters(spec.query, "query")
            if parameters:
                operation["parameters"] = parameters
            if spec is not None and spec.body is not None:
                media: dict[str, Any] = {"schema": schemas.ref(spec.body, "validation")}
                if spec.body.__name__ in REQUEST_EXAMPLES:
                    media["example"] = REQUEST_EXAMPLES[spec.body.__name__]
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": media},
                }
            if spec is not None and spec.access.value in ("user", "admin"):
                operation["security"] = [{"bearer": []}]
            for status in success.statuses:
                response: dict[str, Any] = {"description": success.summary}
                if success.model is not None:
                    model_ref = schemas.ref(replies[success.model], "serialization")
                    reply_media: dict[str, Any] = {"schema": model_ref}
                    if success.model in REPLY_EXAMPLES:
                        reply_media["example"] = REPLY_EXAMPLES[success.model]
                    response["content"] = {"application/json": reply_media}
                if success.csv:
                    response["content"]["text/csv"] = {"schema": {"type": "string"}}
                operation["responses"][str(status)] = response
            for status in sorted(_error_statuses(spec, path) | set(success.errors)):
                error: dict[str, Any] = {
                    "description": ERROR_DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": error_ref}},
                }
                if status in (429, 503):
                    error["headers"] = RETRY_AFTER
                operation["responses"][str(status)] = error
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Legal-aid notifications REST API",
            "version": "1",
            "description": "Real-time notifications for legal-aid organisations: REST API."
            " Generated by `python -m devstack openapi` from app.py and chalicelib/contract.py."
            " Guide: docs/rest.md; the WebSocket API: asyncapi.json and docs/protocol.md.",
        },
        "servers": [{"url": "http://127.0.0.1:8000", "description": "make run"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_document(path: Path = DOCUMENT) -> Path:
    path.write_text(render(build_document()), encoding="utf-8")
    return path
