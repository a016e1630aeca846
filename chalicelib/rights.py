"""Data rights (docs/rest.md): what the service holds about a user, handed over or erased.

Erasure is safe while notifications are being sent to the user:
1. a tombstone goes onto the user's unread counter, which every send's transaction updates
   under the condition that no tombstone is there, so from that moment no send can store
   anything for the user (a racing send answers 503: retry shortly);
2. live connections are closed through the management API (DeleteConnection) and forgotten;
3. the directory entries, every store in `erasables`, and then the user's whole partition
   are deleted: that Query is strongly consistent and runs after the tombstone, so it sees
   every send that committed before it;
4. `erased` is appended to each receipt (receipts stay: they hold no message text);
5. the counter goes with its tombstone: the user starts again from an empty inbox.
A run that dies midway leaves the tombstone, which lapses after `ERASURE_HOLD`; running the
erasure again (it is idempotent) finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.auth import Principal
from chalicelib.errors import ValidationFailed
from chalicelib.models import is_user_id
from chalicelib.notifications import Notifications
from chalicelib.receipts import Receipts, receipt_document
from chalicelib.storage import Directory

DEFAULT_PREFERENCES: dict[str, Any] = {
    "locale": None,
    "muted_categories": [],
    "channels": {"email": True, "sms": True},
    "quiet_hours": None,
}


class Erasable(Protocol):
    """A store holding personal data of users; erasure calls `erase` on each (THE extension
    point: preferences, contact and pending escalations plug in here)."""

    def erase(self, user_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class DataRights:
    notifications: Notifications
    directory: Directory
    receipts: Receipts
    erasables: Sequence[Erasable] = ()
    # Sections of the export other stores provide, by name (e.g. "preferences", "contact").
    exporters: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)

    def export(self, principal: Principal) -> dict[str, Any]:
        """Everything stored about the caller (docs/rest.md)."""
        user_id = principal.user_id
        groups = self.directory.groups_of(user_id)
        receipts = [self.receipts.get(i) for i in self.receipts.of_user(user_id)]
        document: dict[str, Any] = {
            "user_id": user_id,
            "groups": list(principal.groups) if groups is None else groups,
            "notifications": [
                notification.model_dump(mode="json")
                for notification in self.notifications.inbox.everything(user_id)
            ],
            "preferences": DEFAULT_PREFERENCES,
            "contact": {"email": None, "phone": None},
            "receipts": [
                receipt_document(receipt)
                for receipt in receipts
                if receipt is not None
                and receipt.header.user_id == user_id
                and not any(entry.type == "erased" for entry in receipt.entries)
            ],
        }
        for name, exporter in self.exporters.items():
            document[name] = exporter(user_id)
        return document

    def erase(self, user_id: str) -> None:
        """Erase the user's data (idempotent; a user never seen is fine)."""
        if not is_user_id(user_id):
            raise ValidationFailed("user_id must be 1-128 characters without '#' or whitespace")
        notifications = self.notifications
        notifications.inbox.hold_sends(user_id)
        for connection_id in notifications.connections.of_user(user_id):
            notifications.sender.close(connection_id)
        self.directory.erase(user_id)
        for store in self.erasables:
            store.erase(user_id)
        deleted = notifications.inbox.erase(user_id)
        # The index may lag behind the newest receipts: those are among `deleted`.
        notifications.erased(user_id, [*self.receipts.of_user(user_id), *deleted])
        notifications.inbox.lift_hold(user_id)
