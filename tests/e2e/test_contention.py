"""Many senders on one user through the local stack: every send is a 201, and the counter
shows them all."""

from __future__ import annotations

import threading
import uuid

from devstack.stack import LocalStack
from tests.e2e.support import http

SENDERS = 32
PER_SENDER = 5


def test_32_concurrent_senders_to_one_user_all_get_201(stack: LocalStack) -> None:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    admin = stack.token("staff", admin=True)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(SENDERS)

    def sender(n: int) -> None:
        start.wait()
        for m in range(PER_SENDER):
            reply = http(
                "POST",
                f"{stack.rest_url}/api/notifications",
                {"user_id": user_id, "message": f"{n}/{m}"},
                token=admin,
            )
            with lock:
                statuses.append(reply.status)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(statuses)) == [201]
    assert len(statuses) == SENDERS * PER_SENDER
    count = http(
        "GET", f"{stack.rest_url}/api/notifications/unread-count", token=stack.token(user_id)
    )
    assert count.body == {"unread_count": SENDERS * PER_SENDER}
