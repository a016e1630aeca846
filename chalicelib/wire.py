"""The wire's plain rules, without pydantic: what a user id is, how JSON and times are written.

models.py builds its types on them; what runs before any model is needed (a `$connect`:
verifying a token, storing the connection) reads them from here and so never imports pydantic.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

USER_ID_PATTERN = r"^[^#\s]{1,128}$"
# How deep a notification's `data` (and any JSON value a sender gives) may nest.
MAX_DATA_DEPTH = 32


def is_user_id(value: object) -> bool:
    """A user id: 1-128 characters, no '#' (a key separator) and no whitespace."""
    return isinstance(value, str) and re.fullmatch(USER_ID_PATTERN, value) is not None


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def check_json(value: Any, *, max_depth: int) -> None:
    """Raise ValueError unless `value` is JSON that nests at most `max_depth` levels (an object
    or array is one level more than its deepest member) and encodes as UTF-8.

    Walked with an explicit stack: a value nested thousands deep is refused, never a
    RecursionError (json.dumps and pydantic's serializer both recurse).
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise ValueError(f"nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str):
                        raise ValueError("object keys must be strings")
                    _check_text(key)
                stack.extend((member, depth + 1) for member in item.values())
            else:
                stack.extend((member, depth + 1) for member in item)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("numbers must be finite")
        elif item is not None and not isinstance(item, bool | int):
            raise ValueError(f"{type(item).__name__} is not a JSON value")


def _check_text(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None


def batch_item_failures(identifiers: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """A queue's or stream's partial batch response (ReportBatchItemFailures): the messages or
    records (SQS message ids, stream sequence numbers) to hand over again."""
    return {"batchItemFailures": [{"itemIdentifier": identifier} for identifier in identifiers]}


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
