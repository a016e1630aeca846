"""DynamoDB storage, one store per aggregate over one helper. Raw items never leave it.

    keys.py         the key schema of both tables, written once (docstring + key builders)
    dynamo.py       how DynamoDB is asked: Query paging, batches, THE transaction helper
    connections.py  connections: who is connected, as whom, until when
    inbox.py        notifications + unread counter + idempotency records (shared transactions)
    directory.py    audiences (groups, everyone) and each user's groups
    cases.py        immigration cases: status and owner
    claims.py       claims on a broadcast's directory pages (a page walked once)
    limits.py       rate-limit windows and the service counters
    erasures.py     each user's erasure: its status and the background job's progress

A new aggregate (receipts, escalations, preferences) gets its own module here, built on
dynamo.py and keys.py, and its own store object wired in chalicelib/wiring.py.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.storage.cases import CaseRecord, Cases
    from chalicelib.storage.claims import PageClaims
    from chalicelib.storage.connections import ConnectionRecord, ConnectionStore
    from chalicelib.storage.directory import Directory
    from chalicelib.storage.dynamo import Dynamo
    from chalicelib.storage.inbox import Inbox, Page, new_id
    from chalicelib.storage.limits import STAT_NAMES, Limits

# Each name's module, imported when the name is first asked for: a function that stores only
# connections (a `$connect`) never loads the inbox.
_MODULES = {
    "STAT_NAMES": "limits",
    "CaseRecord": "cases",
    "Cases": "cases",
    "PageClaims": "claims",
    "ConnectionRecord": "connections",
    "ConnectionStore": "connections",
    "Directory": "directory",
    "Dynamo": "dynamo",
    "Inbox": "inbox",
    "Limits": "limits",
    "Page": "inbox",
    "new_id": "inbox",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "STAT_NAMES",
    "CaseRecord",
    "Cases",
    "ConnectionRecord",
    "ConnectionStore",
    "Directory",
    "Dynamo",
    "Inbox",
    "Limits",
    "Page",
    "PageClaims",
    "new_id",
]
