"""The key schema of both tables, written once: every store builds its keys here.

Connections table, key `connection_id`:
    connection_id | principal (JSON, from the token) | user_id (set by `register`; GSI `by_user`
    = user_id + connection_id: a recipient's live sessions in one Query) | token_expires_at |
    registered_at | connected_at | expires_at (TTL)

Notifications table, key `pk` + `sk`; each user has one partition, plus a few shared ones:
    USER#<user>   N#<ulid>          notification: doc (JSON of the immutable fields), category?,
                                    read_at?, delivered, unread_pk? (sparse GSI `unread`),
                                    unacked_pk? (sparse GSI `unacked`), expires_at (TTL),
                                    seen_at?, archived_at?, confirmed_at?,
                                    needs_confirmation?, steps? (how many escalation
                                    steps), receipt_seq?, receipt_hash?, receipt_expires?,
                                    receipt_case? (its receipt's tail);
                                    the listings, each a GSI on `+ sk`, so a filtered page
                                    reads only what it returns: list_pk (`listing`: the
                                    shelf, `USER#<user>#I` the inbox, `#A` archived, `#H`
                                    held: awaiting a confirmation, `#R@<fence>` relisted
                                    under an archive fence), category_pk? (`category`:
                                    `USER#<user>#I#<category>`, `#A#...`, ...),
                                    unread_category_pk? (`unread_category`, while unread:
                                    `USER#<user>#<category>`); held ones unread under
                                    `HELD#USER#<user>` (unread_pk and unread_category_pk)
    USER#<user>   COUNT#<k>         unread counter shard k of `COUNTER_SHARDS`: one number per
                                    expiry day, `d<yyyymmdd>` (the count is the sum over the
                                    shards; `h<yyyymmdd>` for held ones); latest_id (the
                                    greatest id committed on this shard or fenced, see
                                    inbox.py); erasing_until (tombstone); read_upto,
                                    read_upto_at (mark all read's watermark); arch_upto,
                                    arch_at, arch_marks, relisted (archive all's fence, its
                                    pending marks, the fence something was relisted under);
                                    held_n (notifications on the held shelf, an upper bound:
                                    0 lets a listing skip that shelf); ver (every update
                                    adds 1)
    USER#<user>   IDEM#<key>        idempotency record: notification_id, expires_at
    USER#<user>   LIMIT#<minute>    rate-limit window: hits, expires_at
    USER#<user>   GROUPS            the groups of the user's last register: groups, version
    USER#<user>   PUSH              the user's Web Push subscriptions (at most 10): doc, version
    USER#<user>   PREFS             preferences: doc? (JSON, as PUT), client_locale?
    USER#<user>   CONTACT           contact: email?, phone?
    USER#<user>   ESC#<ulid>#<n>    pending escalation step n of a notification: channel,
                                    due_at (epoch ms), due_bucket? (`<minute>#<shard>`; sparse
                                    GSI `due` = due_bucket + due_at), attempts, claim?,
                                    expires_at
    GROUP#<name>  USER#<user>       user directory (`GROUP#*` = everyone who ever registered)
    GROUP#<name>  COUNT             the group's member counter: members
    BCAST#<id>    PAGE#<n>          a broadcast's directory page n, claimed by job_id; expires_at
    CASE#<id>     CASE              immigration case: user_id, status, updated_at
    STATS         SHARD#<n>         service counters, write-sharded
    ESCALATION    CURSOR            the escalation sweep's cursor: the oldest minute to look at
    ERASURE#<user> ERASURE          the user's erasure: status, requested_at, finished_at,
                                    held_until, phase, cursor (outside the user's partition,
                                    so it outlives the partition it erases)

Notifications expire at the UTC midnight after `created + retention`, so the unread counter is
exact even though DynamoDB's TTL deletes lazily: the count is the sum of the day buckets that
have not expired yet, and reads filter out items whose `expires_at` has passed.
The table definitions themselves live in infra/ (tests and the local stack create them from it).
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

Item = dict[str, Any]

USER_PREFIX = "USER#"
NOTIFICATION_PREFIX = "N#"
COUNTER_SK = "COUNT"
COUNTER_PREFIX = "COUNT#"
COUNTER_SHARDS = 8
IDEMPOTENCY_PREFIX = "IDEM#"
LIMIT_PREFIX = "LIMIT#"
GROUP_PREFIX = "GROUP#"
EVERYONE = "*"
CASE_PREFIX = "CASE#"
BROADCAST_PREFIX = "BCAST#"
STATS_PK = "STATS"
ERASURE_PREFIX = "ERASURE#"
STATS_SHARDS = 8
BY_USER_INDEX = "by_user"
UNREAD_INDEX = "unread"
UNACKED_INDEX = "unacked"
LISTING_INDEX = "listing"
CATEGORY_INDEX = "category"
UNREAD_CATEGORY_INDEX = "unread_category"
PREFERENCES_SK = "PREFS"
CONTACT_SK = "CONTACT"
STEP_PREFIX = "ESC#"
DUE_INDEX = "due"
DUE_SHARDS = 4
ESCALATION_CURSOR_KEY: Item = {"pk": {"S": "ESCALATION"}, "sk": {"S": "CURSOR"}}


# The shelves a notification is listed on (the last part of its `list_pk`).
INBOX_SHELF = "I"
ARCHIVED_SHELF = "A"
HELD_SHELF = "H"
RELISTED_SHELF = "R@"
HELD_PREFIX = "HELD#"


def shelf_pk(user_id: str, shelf: str) -> str:
    """The `listing` partition of one shelf: `I` (the inbox), `A` (archived), `H` (held:
    awaiting a confirmation) or `R@<fence>` (relisted while that archive fence stood)."""
    return f"{user_pk(user_id)}#{shelf}"


def relisted_shelf(fence: str) -> str:
    return RELISTED_SHELF + fence


def shelf_of(item: Item) -> str | None:
    """The shelf a notification item is listed on (None: an item without a listing)."""
    listed = item.get("list_pk", {}).get("S")
    return None if listed is None else listed.rpartition("#")[2]


def shelf_category_pk(user_id: str, shelf: str, category: str) -> str:
    return f"{shelf_pk(user_id, shelf)}#{category}"


def unread_category_pk(user_id: str, category: str, *, held: bool = False) -> str:
    return f"{unread_pk(user_id, held=held)}#{category}"


def unread_pk(user_id: str, *, held: bool = False) -> str:
    """The `unread` partition: `USER#<user>`, or `HELD#USER#<user>` for the ones awaiting a
    confirmation (a prefix no category can make)."""
    return (HELD_PREFIX if held else "") + user_pk(user_id)


def user_pk(user_id: str) -> str:
    return USER_PREFIX + user_id


def notification_key(user_id: str, notification_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": NOTIFICATION_PREFIX + notification_id}}


def notification_id_of(item: Item) -> str:
    return item["sk"]["S"].removeprefix(NOTIFICATION_PREFIX)


def counter_key(user_id: str, shard: int) -> Item:
    """Shard `shard` of the user's unread counter (0 <= shard < COUNTER_SHARDS)."""
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": f"{COUNTER_PREFIX}{shard}"}}


def counter_bucket(expires_at: int, *, held: bool = False) -> str:
    """The counter attribute of the day whose end is `expires_at`: `d<yyyymmdd>`, or
    `h<yyyymmdd>` for notifications awaiting a confirmation (archive all leaves them)."""
    day = datetime.fromtimestamp(expires_at, UTC) - timedelta(days=1)
    return day.strftime("h%Y%m%d" if held else "d%Y%m%d")


def idempotency_key(user_id: str, key: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": IDEMPOTENCY_PREFIX + key}}


def limit_key(user_id: str, window: int) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": f"{LIMIT_PREFIX}{window}"}}


def group_pk(group: str | None) -> str:
    """The directory partition of a group; None is everyone."""
    return GROUP_PREFIX + (group or EVERYONE)


def member_key(group: str, user_id: str) -> Item:
    return {"pk": {"S": group_pk(group)}, "sk": {"S": USER_PREFIX + user_id}}


def groups_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": "GROUPS"}}


def push_subscriptions_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": "PUSH"}}


def preferences_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": PREFERENCES_SK}}


def contact_key(user_id: str) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": CONTACT_SK}}


def user_of(item: Item) -> str:
    """The user whose partition holds `item`."""
    return item["pk"]["S"].removeprefix(USER_PREFIX)


def step_key(user_id: str, notification_id: str, index: int) -> Item:
    return {"pk": {"S": user_pk(user_id)}, "sk": {"S": f"{STEP_PREFIX}{notification_id}#{index}"}}


def step_of(item: Item) -> tuple[str, str, int]:
    """The user, notification id and index of an escalation step's item."""
    notification_id, _, index = item["sk"]["S"].removeprefix(STEP_PREFIX).rpartition("#")
    return user_of(item), notification_id, int(index)


def due_bucket(notification_id: str, index: int, minute: int) -> str:
    """The `due` partition of a step due in `minute`: one of `DUE_SHARDS` per minute."""
    shard = zlib.crc32(f"{notification_id}#{index}".encode()) % DUE_SHARDS
    return f"{minute}#{shard}"


def member_of(item: Item) -> str:
    return item["sk"]["S"].removeprefix(USER_PREFIX)


def member_count_key(group: str | None) -> Item:
    return {"pk": {"S": group_pk(group)}, "sk": {"S": COUNTER_SK}}


def page_claim_key(broadcast_id: str, page: int) -> Item:
    return {"pk": {"S": BROADCAST_PREFIX + broadcast_id}, "sk": {"S": f"PAGE#{page}"}}


def case_key(case_id: str) -> Item:
    return {"pk": {"S": CASE_PREFIX + case_id}, "sk": {"S": "CASE"}}


def erasure_key(user_id: str) -> Item:
    return {"pk": {"S": ERASURE_PREFIX + user_id}, "sk": {"S": "ERASURE"}}


def stats_key(shard: int) -> Item:
    return {"pk": {"S": STATS_PK}, "sk": {"S": f"SHARD#{shard}"}}


def connection_key(connection_id: str) -> Item:
    return {"connection_id": {"S": connection_id}}
