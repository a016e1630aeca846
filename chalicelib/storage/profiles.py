"""Profiles: each user's preferences and contact (DESIGN §9), in the notifications table.

    USER#<user>   PREFS      preferences: doc (JSON of the whole object, as PUT)
    USER#<user>   CONTACT    contact: email?, phone?

Both live in the user's partition (erasure removes them with it) and are replaced whole, so
each is one PutItem. A missing item means the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from chalicelib.models import Contact, Preferences, compact_json
from chalicelib.storage.dynamo import Dynamo
from chalicelib.storage.keys import Item, user_pk

PREFERENCES_SK = "PREFS"
CONTACT_SK = "CONTACT"


def preferences_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": PREFERENCES_SK}}


def contact_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": CONTACT_SK}}


class Profiles:
    def __init__(self, db: Dynamo, table: str) -> None:
        self._db = db
        self._table = table

    def preferences(self, user_id: str) -> Preferences:
        item = self._get(preferences_key(user_id))
        return _preferences_from(item)

    def preferences_of(self, user_ids: Iterable[str]) -> dict[str, Preferences]:
        """Everyone's preferences in batches of 100 (defaults for those who set none)."""
        wanted = list(dict.fromkeys(user_ids))
        found = {
            item["pk"]["S"]: _preferences_from(item)
            for item in self._db.batch_get(
                self._table, [preferences_key(user) for user in wanted], "pk, doc"
            )
        }
        return {user: found.get(user_pk(user)) or Preferences() for user in wanted}

    def put_preferences(self, user_id: str, preferences: Preferences) -> Preferences:
        self._db.client.put_item(
            TableName=self._table,
            Item={
                **preferences_key(user_id),
                "doc": {"S": compact_json(preferences.model_dump(mode="json"))},
            },
        )
        return preferences

    def contact(self, user_id: str) -> Contact:
        item = self._get(contact_key(user_id))
        if item is None:
            return Contact()
        return Contact.model_construct(
            email=item.get("email", {}).get("S"), phone=item.get("phone", {}).get("S")
        )

    def put_contact(self, user_id: str, contact: Contact) -> Contact:
        item: Item = contact_key(user_id)
        if contact.email is not None:
            item["email"] = {"S": contact.email}
        if contact.phone is not None:
            item["phone"] = {"S": contact.phone}
        self._db.client.put_item(TableName=self._table, Item=item)
        return contact

    def erase(self, user_id: str) -> None:
        """Forget the user's preferences and contact (DESIGN §10)."""
        self._db.batch_write(
            self._table,
            [
                {"DeleteRequest": {"Key": key}}
                for key in (preferences_key(user_id), contact_key(user_id))
            ],
        )

    def _get(self, key: Item) -> Item | None:
        return self._db.client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )


def _preferences_from(item: Item | None) -> Preferences:
    if item is None:
        return Preferences()
    return Preferences.model_validate(json.loads(item["doc"]["S"]))
