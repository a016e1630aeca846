"""Immigration use cases: case status updates, form submissions, document requests.

Each is a notification with `category: "immigration"` and its ids in `data`, built here and
sent through the notification operations; cases come from their store, the `admins`
audience from the directory.
"""

from __future__ import annotations

from chalicelib.auth import ADMINS_GROUP, Principal
from chalicelib.models import EscalationStep, MessageText, Notification, NotificationContent
from chalicelib.notifications import Notifications
from chalicelib.storage import Cases, Directory

IMMIGRATION = "immigration"


class Immigration:
    def __init__(self, notifications: Notifications, directory: Directory, cases: Cases) -> None:
        self.notifications = notifications
        self.directory = directory
        self.cases = cases

    def case_status_update(
        self, case_id: str, status: str, message: MessageText, user_id: str | None
    ) -> Notification:
        case = self.cases.put(case_id, status, user_id)
        content = NotificationContent(
            message=message,
            category=IMMIGRATION,
            data={"case_id": case_id, "status": status},
        )
        return self.notifications.send(case.user_id, content).notification

    def form_submission(
        self, principal: Principal, form_id: str, form_type: str, notify_admins: bool
    ) -> tuple[Notification, int]:
        data = {"form_id": form_id, "form_type": form_type}
        receipt = NotificationContent(
            message=f"We received your {form_type} form",
            type="success",
            category=IMMIGRATION,
            data=data,
        )
        notification = self.notifications.send(principal.user_id, receipt).notification
        notified = 0
        if notify_admins:
            admins = list(self.directory.members(ADMINS_GROUP))
            alert = NotificationContent(
                message=f"{principal.user_id} submitted a {form_type} form",
                category=IMMIGRATION,
                data={**data, "user_id": principal.user_id},
            )
            notified = self.notifications.deliver(alert, admins)
        return notification, notified

    def document_required(
        self,
        user_id: str,
        case_id: str,
        document_type: str,
        message: MessageText,
        *,
        deadline: str | None = None,
        escalation: list[EscalationStep] | None = None,
    ) -> Notification:
        content = NotificationContent(
            message=message,
            type="warning",
            priority="high",
            category=IMMIGRATION,
            data={"case_id": case_id, "document_type": document_type},
            requires_confirmation=True,
            deadline=deadline,
            escalation=escalation,
        )
        return self.notifications.send(user_id, content).notification
