"""AWS calls per operation, counted with botocore event hooks on moto (in-process).

Every operation runs through the same entry points production uses: `app.connect` /
`app.message` (the Lambda handlers) for WebSocket actions, `chalicelib.send_notification` for
sends, `Storage.unread_count` for the counter read. The harness's call recorder on the
service's two boto3 clients (DynamoDB, API Gateway management API) counts one per API call
(botocore retries are not separate calls), from the start of each measured operation, so
setup calls never show up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import (
    CONNECTIONS_TABLE,
    ENVIRONMENT,
    NOTIFICATIONS_TABLE,
    REGION,
    SECRET,
    ApiCall,
    CallRecorder,
    Session,
    counts,
    expect,
    quiet_stdout,
    token,
)

__all__ = ["CONNECTIONS_TABLE", "ENVIRONMENT", "NOTIFICATIONS_TABLE", "REGION", "SECRET"]
POST = ("apigatewaymanagementapi", "PostToConnection")


SINGLE_ITEM = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem"})


def target_of(params: dict[str, Any]) -> str:
    """What a single-item call touches, read from the key in its parameters (the key schema
    of chalicelib/storage/keys.py and the receipts table's)."""
    from chalicelib.storage import keys as storage

    key = params.get("Key") or params.get("Item") or {}
    if "connection_id" in key:
        return "connection"
    if "notification_id" in key and "seq" in key:
        return "receipt"
    pk = key.get("pk", {}).get("S", "")
    sk = key.get("sk", {}).get("S", "")
    kinds = (
        (pk == getattr(storage, "STATS_PK", "STATS"), "stats"),
        (sk.startswith(getattr(storage, "LIMIT_PREFIX", "LIMIT#")), "rate limit"),
        (sk == getattr(storage, "COUNTER_SK", "COUNT"), "unread counter"),
        (sk.startswith(getattr(storage, "NOTIFICATION_PREFIX", "N#")), "notification"),
        (sk.startswith(getattr(storage, "IDEMPOTENCY_PREFIX", "IDEM#")), "idempotency"),
        (pk.startswith(getattr(storage, "GROUP_PREFIX", "GROUP#")), "directory"),
        (pk.startswith(getattr(storage, "CASE_PREFIX", "CASE#")), "case"),
    )
    return next((name for matches, name in kinds if matches), "other")


@contextmanager
def moto_service() -> Iterator[tuple[Any, CallRecorder]]:
    """The service as app.py gets it, on in-process moto, its two clients recorded."""
    from benchmarks.harness import moto_service as service_on_moto

    with service_on_moto() as service:
        recorder = CallRecorder()
        recorder.attach(service.clients.dynamodb, service.sender.client)
        yield service, recorder


def targets(calls: list[ApiCall]) -> Counter[tuple[str, str]]:
    """Single-item DynamoDB calls by (operation, what the item is)."""
    return Counter(
        (call.operation, target_of(call.params)) for call in calls if call.operation in SINGLE_ITEM
    )


@dataclass(frozen=True)
class Row:
    operation: str
    calls: Counter[tuple[str, str]]
    note: str = ""
    targets: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def dynamodb(self) -> dict[str, int]:
        return {op: n for (service, op), n in sorted(self.calls.items()) if service == "dynamodb"}

    @property
    def posts(self) -> int:
        return self.calls[POST]

    @property
    def other(self) -> dict[str, int]:
        return {
            f"{service}:{op}": n
            for (service, op), n in sorted(self.calls.items())
            if service != "dynamodb" and (service, op) != POST
        }


def measure(recorder: CallRecorder, operation: str, action: Any, note: str = "") -> Row:
    from chalicelib.wiring import get_service

    # Written at most every few seconds per container, never by a given request: flushed
    # first so that a flush falling due mid-measurement is not charged to the operation.
    get_service().counters.flush()
    calls = recorder.measure(action)
    return Row(operation, counts(calls), note, targets(calls))


def send(user_id: str, message: str) -> None:
    from chalicelib import send_notification

    send_notification(user_id, {"message": message, "type": "info", "case_id": "12345"})


@dataclass(frozen=True)
class Scale:
    live_sessions: tuple[int, ...] = (0, 1, 3, 10)
    replayed: int = 10
    stored: int = 30
    mark_sizes: tuple[int, ...] = (1, 10, 100)
    acked: int = 10


SMOKE = Scale(live_sessions=(0, 1), replayed=2, stored=3, mark_sizes=(1, 2), acked=2)


def cold_container(recorder: CallRecorder) -> Any:
    """A fresh service, as a newly started Lambda container builds it (nothing remembered),
    on the same tables, with its clients counted."""
    from chalicelib.wiring import get_service, use_service

    use_service(None)
    service = get_service()
    recorder.attach(service.clients.dynamodb)
    recorder.attach(service.sender.client)
    return service


COLD = " (cold container)"


def run(scale: Scale = Scale()) -> list[Row]:
    rows: list[Row] = []
    with moto_service() as (service, recorder):
        # Send to a user with k live (registered) sessions.
        for k in scale.live_sessions:
            user = f"sender-k{k}"
            sessions = [Session().open(user) for _ in range(k)]
            row = measure(recorder, f"send, k={k} live sessions", lambda u=user: send(u, "hi"))
            for session in sessions:
                expect(session.received(), "notification")
            rows.append(row)

        # Register with a replay of n (n notifications stored while offline, none acked).
        user = "replayer"
        for index in range(scale.replayed):
            send(user, f"offline {index}")
        session = Session()
        session.connect(token(user))
        rows.append(
            measure(
                recorder,
                f"register (replay of {scale.replayed})",
                lambda: expect(
                    session.send({"action": "register"}), "notification", scale.replayed
                ),
                "token sent at connect",
            )
        )

        # get_notifications: the default page (20) of a user with 30 stored.
        user = "reader"
        for index in range(scale.stored):
            send(user, f"stored {index}")
        session = Session().open(user)
        rows.append(
            measure(
                recorder,
                "get_notifications (limit 20)",
                lambda: expect(session.send({"action": "get_notifications"}), "notifications"),
            )
        )

        # mark_read of 1, 10, 100 unread ids, from one of the user's two sessions; then the
        # largest again, and an ack, on a container that has not seen the connection yet.
        user = "marker"
        unread_total = 2 * sum(scale.mark_sizes)
        for index in range(unread_total):
            send(user, f"unread {index}")
        session, other = Session().open(user), Session().open(user)
        unread = [item.id for item in service.inbox.after(user, None, unread_total)]
        offset = 0
        for size in scale.mark_sizes:
            ids, offset = unread[offset : offset + size], offset + size
            other.received()

            def mark(ids: list[str] = ids) -> None:
                reply = expect(session.send({"action": "mark_read", "ids": ids}), "marked_read")
                if len(reply[0]["ids"]) != len(ids):
                    raise RuntimeError(f"marked {len(reply[0]['ids'])} of {len(ids)}")

            rows.append(
                measure(
                    recorder,
                    f"mark_read, {size} id" + ("s" if size > 1 else ""),
                    mark,
                    "2 sessions: reply + sync push",
                )
            )
            expect(other.received(), "marked_read")

        # ack of 10 (for completeness: the other per-message write path).
        ids = unread[: scale.acked]
        rows.append(
            measure(
                recorder,
                f"ack, {scale.acked} ids",
                lambda: expect(session.send({"action": "ack", "ids": ids}), "acked"),
            )
        )

        # The same on a cold container: the connection's principal is read once (GetItem).
        largest = max(scale.mark_sizes)
        cold_ids = unread[offset : offset + largest]
        other.received()
        service = cold_container(recorder)
        rows.append(
            measure(
                recorder,
                f"mark_read, {largest} ids{COLD}",
                lambda: expect(
                    session.send({"action": "mark_read", "ids": cold_ids}), "marked_read"
                ),
                "first action of the connection here",
            )
        )
        expect(other.received(), "marked_read")
        service = cold_container(recorder)
        acked = unread[scale.acked : 2 * scale.acked]
        rows.append(
            measure(
                recorder,
                f"ack, {scale.acked} ids{COLD}",
                lambda: expect(session.send({"action": "ack", "ids": acked}), "acked"),
                "first action of the connection here",
            )
        )
        service = cold_container(recorder)
        rows.append(
            measure(
                recorder,
                f"send, k=1 live sessions{COLD}",
                lambda: send(user, "hi"),
            )
        )

        # Unread count: the counter read every reply carries.
        rows.append(
            measure(
                recorder,
                "unread count (inbox.unread_count)",
                lambda: service.inbox.unread_count(user),
            )
        )
        rows.append(
            measure(
                recorder,
                "ping",
                lambda: expect(session.send({"action": "ping"}), "pong"),
            )
        )
    return rows


# DynamoDB calls an operation should make at most (the session's own connection read and
# rate-limit window included), on a warm container; the cold figure is printed beside it.
GOALS = {"send, k=1 live sessions": 3, "mark_read, 100 ids": 6, "ack, 10 ids": 4}
# What a container adds now and then, outside any one request's count.
AMORTIZED = "plus one UpdateItem (stats counters) per container at most every 5 s"


def per_request(row: Row) -> int:
    """The DynamoDB calls of a row but the stats counters' timed flush."""
    return sum(row.dynamodb.values()) - flushes(row)


def flushes(row: Row) -> int:
    return row.targets[("UpdateItem", "stats")]


def render_goals(rows: list[Row]) -> str:
    by_name = {row.operation: row for row in rows}
    lines = [f"goals (DynamoDB calls per request, warm container; {AMORTIZED}):"]
    for operation, goal in GOALS.items():
        if operation not in by_name:
            continue
        calls = per_request(by_name[operation])
        verdict = "met" if calls <= goal else "not met"
        cold = by_name.get(operation + COLD)
        beside = f"  cold container {per_request(cold)}" if cold is not None else ""
        lines.append(f"  {operation:<28} {calls:>4}  goal <= {goal:<3} {verdict}{beside}")
    timed = [row.operation for row in rows if flushes(row)]
    if timed:
        lines.append(
            "  (a timed stats flush fell inside: "
            + ", ".join(timed)
            + "; on moto these requests take seconds, on DynamoDB about 0.1 s)"
        )
    return "\n".join(lines)


def render(rows: list[Row]) -> str:
    def calls(row: Row) -> str:
        parts = [f"{op} {n}" for op, n in row.dynamodb.items()]
        parts += [f"{op} {n}" for op, n in row.other.items()]
        return ", ".join(parts) or "-"

    header = ("operation", "DynamoDB calls by operation", "DDB", "PostToConnection", "note")
    lines = [
        (r.operation, calls(r), str(sum(r.dynamodb.values())), str(r.posts), r.note) for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    out = []
    for index, line in enumerate([header, *lines]):
        out.append(
            "  ".join(
                cell.rjust(widths[i]) if i in (2, 3) and index else cell.ljust(widths[i])
                for i, cell in enumerate(line)
            ).rstrip()
        )
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    out.append("")
    out.append("single-item calls by what they touch (from the item key):")
    for row in rows:
        by_operation: dict[str, list[str]] = {}
        for (operation, target), n in sorted(row.targets.items()):
            by_operation.setdefault(operation, []).append(f"{target}{f' x{n}' if n > 1 else ''}")
        parts = [f"{operation}: {', '.join(names)}" for operation, names in by_operation.items()]
        out.append(f"  {row.operation:<{widths[0]}}  {'; '.join(parts) or '-'}")
    return "\n".join(out)


def main(*, smoke: bool = False) -> None:
    """`smoke`: the same operations on a few items, to check that it runs."""
    print("== AWS calls per operation (moto in-process, counted by botocore event hooks) ==")
    print("Each row counts only the calls of the measured operation; WebSocket actions go through")
    print("app.message (the Lambda handler), sends through chalicelib.send_notification.")
    print()
    with quiet_stdout() as printed:
        rows = run(SMOKE if smoke else Scale())
    print(render(rows))
    print()
    print(render_goals(rows))
    lines = printed.getvalue().count("\n")
    print(f"({lines} lines the service printed while measured, e.g. EMF metrics, not shown)")
    print()


if __name__ == "__main__":
    main()
