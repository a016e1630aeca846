"""The notification service behind app.py.

`send_notification(user_id, payload)` is the one call backend code needs::

    from chalicelib import send_notification

    send_notification("alice", {"message": "Your case status has been updated",
                                "type": "info", "case_id": "12345", "status": "in_review"})

Keys other than message, type, priority, category and data go into `data`. It runs with the
settings of its environment: in AWS the function's; locally those of the running stack, which
`make run` writes to `.devstack/env` (`set -a; . .devstack/env; set +a`). Stage `local` never
calls AWS itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.models import Notification

__all__ = ["send_notification"]


def send_notification(user_id: str, payload: dict[str, Any]) -> Notification:
    """Store a notification for `user_id` and push it to every live session of the user."""
    # Imported here: every `import chalicelib.x` runs this module first, and a Lambda function
    # should load only the modules its handlers use, not the whole service graph.
    from chalicelib.bodies import UserPath
    from chalicelib.models import NotificationContent, parse
    from chalicelib.wiring import get_service

    user = parse(UserPath, {"user_id": user_id})
    content = NotificationContent.from_payload(payload)
    return get_service().notifications.send(user.user_id, content).notification
