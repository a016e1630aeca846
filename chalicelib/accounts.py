"""The caller's own account: who they are, their preferences, their language, their contact.

Preferences are the user's to replace; contact is set by staff. Both are read again whenever
an escalation step fires (chalicelib/sweep.py), so a change applies to what is pending.
The language a user reads in is their effective locale (chalicelib.i18n.effective_locale):
the preference when set, else what their client last sent with `register`, else `en`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.auth import Principal
from chalicelib.models import Contact, Preferences
from chalicelib.storage import Directory
from chalicelib.storage.profiles import Profiles


class Accounts:
    def __init__(
        self,
        profiles: Profiles,
        directory: Directory,
        *,
        push_subscriptions: Callable[[str], list[dict[str, str]]] = lambda user_id: [],
    ) -> None:
        self.profiles = profiles
        self.directory = directory
        self._push_subscriptions = push_subscriptions

    def me(self, principal: Principal) -> dict[str, Any]:
        """`GET /api/me`: groups are those of the last `register` (the token's before any)."""
        groups = self.directory.groups_of(principal.user_id)
        profile = self.profiles.profile(principal.user_id)
        return {
            "user_id": principal.user_id,
            "groups": list(principal.groups) if groups is None else groups,
            "admin": principal.is_admin,
            "preferences": profile.preferences.model_dump(mode="json"),
            "locale": profile.locale,
            "contact": self.profiles.contact(principal.user_id).model_dump(mode="json"),
            "push_subscriptions": self._push_subscriptions(principal.user_id),
        }

    def client_language(self, user_id: str, locale: str | None) -> str:
        """Record the language a client sent with `register` (when it sent one); the user's
        effective locale."""
        if locale is None:
            return self.profiles.profile(user_id).locale
        return self.profiles.set_client_locale(user_id, locale).locale

    def set_preferences(self, user_id: str, preferences: Preferences) -> Preferences:
        return self.profiles.put_preferences(user_id, preferences)

    def set_contact(self, user_id: str, contact: Contact) -> dict[str, Any]:
        stored = self.profiles.put_contact(user_id, contact)
        return {"user_id": user_id, **stored.model_dump(mode="json")}
