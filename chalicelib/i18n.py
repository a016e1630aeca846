"""Languages: choosing the text of a multilingual message, and the escalation templates.

`resolve` is the one rule of docs/protocol.md for picking an entry of a map of BCP 47 tags: the
recipient's preferred tag; else an entry with the same language part (the alphabetically
first if several); else `en`; else the alphabetically first tag. Tags match
case-insensitively. The escalation emails and text messages (docs/escalation.md) are picked the same
way among the languages they are written in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

FALLBACK = "en"


def effective_locale(preferred: str | None, client: str | None) -> str:
    """The locale a user reads in: their preference when they chose one, else the language
    their client last sent with `register` (the browser's), else `en`. Every text chosen for
    a user (multilingual messages, escalation emails and text messages, the web elements)
    follows this one rule."""
    return preferred or client or FALLBACK


def _language(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def resolve(texts: Mapping[str, str], preferred: str | None) -> str:
    """The tag of `texts` to use for a reader who prefers `preferred` (see module docstring)."""
    if not texts:
        raise ValueError("nothing to choose from")
    ordered = sorted(texts, key=lambda tag: (tag.lower(), tag))
    by_lower = {tag.lower(): tag for tag in ordered}
    if preferred:
        wanted = preferred.lower()
        if wanted in by_lower:
            return by_lower[wanted]
        same_language = [tag for tag in ordered if _language(tag) == _language(wanted)]
        if same_language:
            return same_language[0]
    return by_lower.get(FALLBACK, ordered[0])


class Template(NamedTuple):
    subject: str
    summary: str
    full: str  # the summary followed by the message itself


# "You have an important notice from {ORG_NAME}. Sign in to read it: {APP_URL}"
# (docs/escalation.md).
TEMPLATES: dict[str, Template] = {
    "en": Template(
        subject="Important notice from {org}",
        summary="You have an important notice from {org}. Sign in to read it: {url}",
        full="You have an important notice from {org}:\n\n{message}\n\nSign in to read it: {url}",
    ),
    "es": Template(
        subject="Aviso importante de {org}",
        summary="Tiene un aviso importante de {org}. Inicie sesión para leerlo: {url}",
        full="Tiene un aviso importante de {org}:\n\n{message}\n\nInicie sesión para leerlo: {url}",
    ),
    "ar": Template(
        subject="إشعار مهم من {org}",
        summary="لديك إشعار مهم من {org}. سجّل الدخول لقراءته: {url}",
        full="لديك إشعار مهم من {org}:\n\n{message}\n\nسجّل الدخول لقراءته: {url}",
    ),
}


class Letter(NamedTuple):
    """The text of one escalation: `subject` for email, `text` for both email and SMS."""

    locale: str
    subject: str
    text: str


def escalation_letter(
    locale: str | None, *, org: str, url: str, message: str | None = None
) -> Letter:
    """The escalation text in the reader's language; with `message`, the full variant."""
    tag = resolve(TEMPLATES, locale)
    template = TEMPLATES[tag]
    body = template.summary if message is None else template.full
    return Letter(
        locale=tag,
        subject=template.subject.format(org=org),
        text=body.format(org=org, url=url, message=message),
    )
