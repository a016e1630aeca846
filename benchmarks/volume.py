"""Per-user volume: the DynamoDB calls and modelled time of every request for one user holding
N = 10, 5,000 and 10,000 notifications (goal: at most 100 calls, 1 MB and 1 s each, the same
bound whatever N).

The user's inbox is seeded fast: the notification and receipt items a send would write, put
with BatchWriteItem straight into moto (a send per item would take minutes there: moto copies
a table for each transaction), then one real send. Each request then runs once through app.py
(REST through chalice.test.Client, WebSocket actions through the Lambda handlers), reads
first, user-wide changes and the erasure last; botocore hooks count its DynamoDB calls and
the modelled time is benchmarks/aws_model.py's (its per-call latencies, pools side by side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from benchmarks.aws_model import Recorder, Stage, _pools
from benchmarks.harness import REGION, SECRET, Session, environment, installed_service, quiet_stdout

USER = "heavy"
CALL_BOUND = 100
BYTES_BOUND = 1_000_000
TIME_GOAL_MS = 1_000.0
SIZES = (10, 5_000, 10_000)
# What a notification item keeps of its receipt's tail.
TAIL_ATTRIBUTES = ("receipt_seq", "receipt_hash", "receipt_expires", "receipt_case")


def seed_inbox(
    service: Any,
    user_id: str,
    count: int,
    *,
    message: str = "Seeded",
    counted: bool = False,
    tail: bool = True,
    **fields: Any,
) -> list[str]:
    """`count` notifications for `user_id` with their receipts, oldest first, written straight
    with BatchWriteItem (every other one in category "news"; `fields` go into each one's
    content). The unread counter: `counted`, it counts them all, on one shard, as their sends
    would have; otherwise the last one is sent for real, so the counter exists but counts one.
    `tail` False: the items hold no receipt tail, as stored before items kept it. Returns their
    ids."""
    from chalicelib.models import NotificationContent

    inbox = service.inbox
    by_table: dict[str, list[dict[str, Any]]] = {}
    ids: list[str] = []
    buckets: dict[str, int] = {}
    held = 0  # those awaiting a confirmation, counted on their own shelf
    for n in range(count if counted else count - 1):
        category = "news" if n % 2 else None
        content = NotificationContent(
            **{"message": f"{message} {n}", "category": category, **fields}
        )
        notification, actions = inbox._put_actions(user_id, content, None)
        ids.append(notification.id)
        for action in actions:
            if "Put" in action:
                put = action["Put"]
                if not tail:
                    for name in TAIL_ATTRIBUTES:
                        put["Item"].pop(name, None)
                by_table.setdefault(put["TableName"], []).append(
                    {"PutRequest": {"Item": put["Item"]}}
                )
            else:
                update = action["Update"]
                [bucket] = update["ExpressionAttributeNames"].values()
                buckets[bucket] = buckets.get(bucket, 0) + 1
                held += int(update["ExpressionAttributeValues"].get(":held", {"N": "0"})["N"])
    for table, requests in by_table.items():
        inbox._db.batch_write(table, requests)
    if counted and ids:
        counter = inbox._counter_update(user_id, buckets, latest=max(ids), held=held)["Update"]
        service.clients.dynamodb.update_item(**counter)
    elif count:
        content = NotificationContent(message=f"{message} last", **fields)
        ids.append(inbox.put(user_id, content)[0].id)
    return ids


@dataclass(frozen=True, slots=True)
class Measured:
    name: str
    status: int
    calls: int
    bytes: int
    stage: Stage


# Requests measured up to N = 1,000 only, and requests allowed over the bound: none now (a
# user-wide change does a bounded slice in the request and leaves the rest to a job).
SLOW_ON_THIS_BUILD: frozenset[str] = frozenset()
AWAITING_WRITE_PATH: frozenset[str] = frozenset()


def measure(
    service: Any,
    recorder: Recorder,
    user_id: str,
    count: int,
    *,
    secret: str = SECRET,
    skip: frozenset[str] = frozenset(),
) -> list[Measured]:
    """Seed `count` notifications for `user_id` and run every request once, in order (but
    those named in `skip`)."""
    from chalice.test import Client

    import app as lambda_app
    from chalicelib.models import NotificationContent
    from devstack.tokens import mint_token

    ids = seed_inbox(service, user_id, count)
    confirmable = service.inbox.put(
        user_id, NotificationContent(message="Sign", requires_confirmation=True)
    )[0].id
    newest = ids[-1]
    user = {"Authorization": f"Bearer {mint_token(user_id, secret=secret)}"}
    admin = {"Authorization": f"Bearer {mint_token('staff', roles=('admin',), secret=secret)}"}
    json_type = {"Content-Type": "application/json"}
    results: list[Measured] = []

    def rest(method: str, path: str, body: Any = None, headers: dict[str, str] = user) -> None:
        name = f"{method} {_shape(path)} {_brief(body or {})}".rstrip()
        if name in skip:
            return

        def run() -> tuple[int, int]:
            call = getattr(client.http, method.lower())
            kwargs: dict[str, Any] = {"headers": {**headers, **json_type}}
            if body is not None:
                kwargs["body"] = json.dumps(body)
            response = call(path, **kwargs)
            return response.status_code, len(response.body or b"")

        with recorder.recording(f"{method} {path}") as stage:
            status, size = run()
        results.append(Measured(name, status, len(stage.calls), size, stage))

    def ws(action: dict[str, Any], label: str) -> None:
        if f"ws {label}" in skip:
            return
        with recorder.recording(label) as stage:
            frames = session.send(action)
        size = sum(len(json.dumps(frame)) for frame in frames)
        status = 200 if all(frame.get("event") != "error" for frame in frames) else 400
        results.append(Measured(f"ws {label}", status, len(stage.calls), size, stage))

    session = Session()
    session.connect()
    with Client(lambda_app.app, stage_name="dev") as client:
        ws({"action": "register", "token": mint_token(user_id, secret=secret)}, "register")
        ws({"action": "register", "since": ids[0]}, "register since the oldest")
        ws({"action": "get_notifications"}, "get_notifications")
        ws({"action": "get_notifications", "unread_only": True}, "get_notifications unread_only")
        ws({"action": "ping"}, "ping")
        rest("GET", "/api/notifications")
        rest("GET", "/api/notifications?unread_only=true")
        rest("GET", "/api/notifications?category=news")
        rest("GET", "/api/notifications?archived=true")
        rest("GET", "/api/notifications/unread-count")
        rest("GET", f"/api/notifications/{newest}")
        rest("GET", f"/api/notifications/{newest}/receipt")
        rest("GET", f"/api/notifications/poll?after={ids[0]}")
        rest("GET", "/api/me")
        rest("PUT", "/api/me/preferences", {"locale": "en"})
        rest("GET", "/api/me/export")
        rest("GET", "/api/websocket/stats", headers=admin)
        rest("POST", "/api/notifications", {"user_id": user_id, "message": "New"}, admin)
        rest("POST", "/api/notifications/seen", {"ids": [newest]})
        rest("POST", "/api/notifications/read", {"ids": [newest]})
        rest("POST", "/api/notifications/archive", {"ids": [ids[0]]})
        rest("POST", f"/api/notifications/{confirmable}/confirm")
        rest("DELETE", f"/api/notifications/{ids[1] if len(ids) > 1 else newest}")
        ws({"action": "ack", "ids": [newest]}, "ack")
        ws({"action": "mark_read", "ids": ids[-3:]}, "mark_read ids")
        ws({"action": "mark_read", "all": True}, "mark_read all")
        rest("POST", "/api/notifications/read", {"all": True})
        ws({"action": "archive", "all": True}, "archive all")
        rest("POST", "/api/notifications/archive", {"all": True})
        rest("GET", f"/api/users/{user_id}/erasure", headers=admin)
        rest("DELETE", f"/api/users/{user_id}", headers=admin)
        rest("GET", f"/api/users/{user_id}/erasure", headers=admin)
    return results


def _brief(body: dict[str, Any]) -> str:
    """A request body in a few characters: `all` or how many ids."""
    if body.get("all"):
        return "all"
    if "ids" in body:
        return f"{len(body['ids'])} id" + ("s" if len(body["ids"]) > 1 else "")
    return ""


def _shape(path: str) -> str:
    """The route of a path: ids and query values left out."""
    parts = [
        "{id}" if len(part) == 26 and part.isalnum() and part.isupper() else part
        for part in path.split("?")[0].split("/")
    ]
    route = "/".join(parts).replace(f"/{USER}", "/{user_id}")
    query = path.partition("?")[2].split("=")[0]
    return f"{route}?{query}" if query and query != "after" else route


def run_volume(counts: tuple[int, ...]) -> dict[int, list[Measured]]:
    """Each request's measurement for a user holding each of `counts` notifications."""
    import boto3
    from moto import mock_aws

    from chalicelib.wiring import use_service
    from devstack.fanout import create_fanout_queues

    measured = {}
    for count in counts:
        with environment(), mock_aws():
            queue, _ = create_fanout_queues(boto3.client("sqs", region_name=REGION), prefix="v")
            service = installed_service(fanout_queue_url=queue)
            recorder = Recorder()
            recorder.attach(service.clients.dynamodb)
            try:
                skip = SLOW_ON_THIS_BUILD if count > 1_000 else frozenset()
                measured[count] = measure(service, recorder, USER, count, skip=skip)
            finally:
                use_service(None)
    return measured


def main(tiny: bool = False) -> None:
    counts = (10, 60) if tiny else SIZES
    with quiet_stdout():
        measured = run_volume(counts)
    pools = _pools({"push": 16, "ThreadPoolExecutor-": 16})
    print(
        f"\n== Per-user volume: DynamoDB calls / modelled time of each request, by notifications "
        f"held (goal: <= {CALL_BOUND} calls, <= 1 MB, <= 1 s)"
    )
    header = "".join(f"{f'N = {count:,}':>22}" for count in counts)
    print(f"   {'request':<46}{header}")
    names = list(dict.fromkeys(entry.name for entries in measured.values() for entry in entries))
    for name in names:
        cells = ""
        for entries in measured.values():
            entry = next((e for e in entries if e.name == name), None)
            if entry is None:
                cells += f"{'(not run)':>22}"
                continue
            ms = entry.stage.time_ms(pools)
            over = entry.calls > CALL_BOUND or entry.bytes > BYTES_BOUND or ms > TIME_GOAL_MS
            mark = "!" if over else ("?" if entry.status >= 400 else " ")
            cells += f"{entry.calls:>8} {ms:>9,.0f} ms{mark} "
        print(f"   {name:<46}{cells}")
    print("   (! over the goal: calls, bytes or time; ? answered 4xx/5xx on this build;")
    print("    not run: per-item work still inside the request on this build, too slow on moto)")
    worst = {
        count: max(entries, key=lambda entry: entry.calls) for count, entries in measured.items()
    }
    for count, entry in worst.items():
        print(
            f"   most calls at N = {count:,}: {entry.name} ({entry.calls}, "
            f"{entry.stage.time_ms(pools):,.0f} ms modelled, {entry.bytes:,} bytes)"
        )
