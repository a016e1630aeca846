"""What moto's in-process management API recorded: the frames posted to each connection."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote


def posted_frames(connection_id: str, region: str) -> list[dict[str, Any]]:
    """Every frame posted to a connection (under `mock_aws`), oldest first."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][region]
    # moto keys connections by the id as it appears, URL-encoded, in the request path, and
    # appends each post's bytes to one buffer.
    connection = backend.connections.get(quote(connection_id, safe=""))
    raw = connection.data.decode() if connection is not None else ""
    decoder, frames, position = json.JSONDecoder(), [], 0
    while position < len(raw):
        frame, position = decoder.raw_decode(raw, position)
        frames.append(frame)
    return frames
