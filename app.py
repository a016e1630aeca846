"""Chalice handlers: parse, call the service, return. The service does the rest."""

from __future__ import annotations

from chalice.app import Chalice, WebsocketEvent

from chalicelib.errors import Unauthorized
from chalicelib.service import get_service

app = Chalice(app_name="legal-aid-notifications")
app.experimental_feature_flags.update(["WEBSOCKETS"])


@app.on_ws_connect()
def connect(event: WebsocketEvent) -> dict[str, int] | None:
    query = event.to_dict().get("queryStringParameters") or {}
    try:
        get_service().connect(event.connection_id, query.get("token"))
    except Unauthorized:
        return {"statusCode": 401}
    return None


@app.on_ws_disconnect()
def disconnect(event: WebsocketEvent) -> None:
    context = event.to_dict()["requestContext"]
    get_service().disconnect(
        event.connection_id, context.get("disconnectStatusCode"), context.get("disconnectReason")
    )


@app.on_ws_message()
def message(event: WebsocketEvent) -> None:
    context = event.to_dict()["requestContext"]
    get_service().handle_message(event.connection_id, event.body, context)
