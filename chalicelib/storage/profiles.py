"""Profiles: each user's preferences and contact (docs/rest.md), in the notifications table.

    USER#<user>   PREFS      preferences: doc? (JSON of the whole object, as PUT),
                             client_locale? (the tag the client last sent with `register`)
    USER#<user>   CONTACT    contact: email?, phone?

(keys built in storage/keys.py)

Both live in the user's partition (erasure removes them with it). Preferences are replaced
whole and contact is one PutItem; `doc` and `client_locale` share the PREFS item, each set by
its own UpdateItem, so one read gives everything a user's language depends on. A missing item
or attribute means the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple

from chalicelib.i18n import effective_locale
from chalicelib.models import Contact, Notification, Preferences, compact_json
from chalicelib.storage.dynamo import Dynamo
from chalicelib.storage.keys import Item, contact_key, preferences_key, user_pk


class Profile(NamedTuple):
    """A user's preferences with the language their client last reported."""

    preferences: Preferences
    client_locale: str | None = None

    @property
    def locale(self) -> str:
        """The effective locale (chalicelib.i18n.effective_locale)."""
        return effective_locale(self.preferences.locale, self.client_locale)

    def mutes(self, notification: Notification) -> bool:
        return self.preferences.mutes(notification)


class Profiles:
    def __init__(self, db: Dynamo, table: str) -> None:
        self._db = db
        self._table = table

    def preferences(self, user_id: str) -> Preferences:
        return self.profile(user_id).preferences

    def profile(self, user_id: str) -> Profile:
        return _profile_from(self._get(preferences_key(user_id)))

    def profiles_of(self, user_ids: Iterable[str]) -> dict[str, Profile]:
        """Everyone's profile in batches of 100 (defaults for those who set nothing)."""
        wanted = list(dict.fromkeys(user_ids))
        found = {
            item["pk"]["S"]: _profile_from(item)
            for item in self._db.batch_get(
                self._table,
                [preferences_key(user) for user in wanted],
                "pk, doc, client_locale",
            )
        }
        return {user: found.get(user_pk(user)) or Profile(Preferences()) for user in wanted}

    def put_preferences(self, user_id: str, preferences: Preferences) -> Preferences:
        self._db.client.update_item(
            TableName=self._table,
            Key=preferences_key(user_id),
            UpdateExpression="SET doc = :doc",
            ExpressionAttributeValues={
                ":doc": {"S": compact_json(preferences.model_dump(mode="json"))}
            },
        )
        return preferences

    def set_client_locale(self, user_id: str, locale: str) -> Profile:
        """Remember the language the user's client reported; the profile as it now stands."""
        item = self._db.client.update_item(
            TableName=self._table,
            Key=preferences_key(user_id),
            UpdateExpression="SET client_locale = :locale",
            ExpressionAttributeValues={":locale": {"S": locale}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _profile_from(item)

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
        """Forget the user's preferences and contact (docs/rest.md)."""
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


def _profile_from(item: Item | None) -> Profile:
    if item is None:
        return Profile(Preferences())
    preferences = (
        Preferences.model_validate(json.loads(item["doc"]["S"])) if "doc" in item else Preferences()
    )
    return Profile(preferences, item.get("client_locale", {}).get("S"))
