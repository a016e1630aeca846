"""Persistence for the embedded DynamoDB: a snapshot file, written often, loaded at start.

moto keeps everything in memory, so a stack that dies loses every table. With a state file
(``make run`` passes ``--state .devstack/state.json``) the stack loads it after creating the
tables, writes it again a moment after each burst of writes (at most every
``interval`` seconds) and once more on a clean stop: a ``kill -9`` loses at most the last
interval. Each write goes to a temporary file renamed over the old one, so the file is
always a whole snapshot. It is built with paginated Scans through the same endpoint the app
uses (a dev tool, never a request path): each page is consistent, the whole file is not a
point-in-time copy of writes racing it. SQS messages in flight are not kept.

File format: ``{"version": 1, "tables": {name: [item, ...]}, "keys": {...}}`` with items in
DynamoDB's attribute-value JSON; binary values base64-encoded. ``keys`` holds what the stack
made at its first start and must keep across restarts (the Web Push key pair: browsers'
subscriptions are bound to it).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.background import Periodic

VERSION = 1
BATCH = 25
log = logging.getLogger("devstack.snapshot")


def _encode(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value made JSON-safe (binary as base64 text)."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(item).decode("ascii") for item in inner]}
    if kind == "M":
        return {"M": {key: _encode(item) for key, item in inner.items()}}
    if kind == "L":
        return {"L": [_encode(item) for item in inner]}
    return value


def _decode(value: dict[str, Any]) -> dict[str, Any]:
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(item) for item in inner]}
    if kind == "M":
        return {"M": {key: _decode(item) for key, item in inner.items()}}
    if kind == "L":
        return {"L": [_decode(item) for item in inner]}
    return value


def dump_tables(client: Any) -> dict[str, list[dict[str, Any]]]:
    """Every item of every table, through a boto3 DynamoDB client."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            items = tables.setdefault(name, [])
            for scan in client.get_paginator("scan").paginate(TableName=name):
                items.extend(
                    {key: _encode(value) for key, value in item.items()} for item in scan["Items"]
                )
    return tables


def read_keys(path: Path) -> dict[str, str]:
    """The `keys` the file keeps (none when there is no file yet)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return dict(document.get("keys") or {})


def write_snapshot(client: Any, path: Path, keys: dict[str, str] | None = None) -> int:
    """Write the snapshot atomically; returns the number of items written."""
    tables = dump_tables(client)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            document: dict[str, Any] = {"version": VERSION, "tables": tables}
            if keys:
                document["keys"] = keys
            json.dump(document, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return sum(len(items) for items in tables.values())


def load_snapshot(client: Any, path: Path) -> int:
    """Put every item of the file into the existing tables; returns the number loaded.

    A missing file loads nothing. Tables the file names that do not exist are skipped (with
    a warning): the schema comes from infra/, never from a snapshot."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    if document.get("version") != VERSION:
        raise ValueError(f"{path}: unknown snapshot version {document.get('version')!r}")
    existing = set(client.list_tables()["TableNames"])
    loaded = 0
    for name, items in document["tables"].items():
        if name not in existing:
            log.warning("snapshot table %s does not exist: skipped %d items", name, len(items))
            continue
        for start in range(0, len(items), BATCH):
            requests = [
                {"PutRequest": {"Item": {key: _decode(value) for key, value in item.items()}}}
                for item in items[start : start + BATCH]
            ]
            pending = {name: requests}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
        loaded += len(items)
    return loaded


class Snapshotter(Periodic):
    """Writes the snapshot in a thread after writes happened, at most every `interval` s."""

    thread_name = "snapshot"
    join_timeout = 30.0

    def __init__(
        self,
        client: Any,
        path: Path,
        *,
        writes: Callable[[], int],
        interval: float = 2.0,
        keys: dict[str, str] | None = None,
    ) -> None:
        super().__init__(interval)
        self._keys = keys
        self._client = client
        self.path = path
        self._writes = writes
        self._saved_at_writes = -1
        self._lock = threading.Lock()

    def save_if_changed(self) -> bool:
        with self._lock:
            writes = self._writes()
            if writes == self._saved_at_writes:
                return False
            count = write_snapshot(self._client, self.path, self._keys)
            self._saved_at_writes = writes
            log.debug("snapshot: %d items to %s", count, self.path)
            return True

    def start(self) -> None:
        self._saved_at_writes = self._writes()  # what was just loaded is on disk already
        super().start()

    def stop(self) -> None:
        """Stop the thread and write a last snapshot (the clean-stop path)."""
        super().stop()
        self.save_if_changed()

    def tick(self) -> None:
        self.save_if_changed()
