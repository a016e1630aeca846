"""Chalice handlers: parse, call the service, return. The service does the rest."""

# ruff: noqa: E402 (the collector is switched off before the imports: see below)

from __future__ import annotations

import gc

# Importing the app allocates tens of thousands of objects that live as long as the process
# (modules, classes, botocore's tables): the cyclic collector would trace them again and again
# while they load, about 10 ms of a cold start's CPU. It is off until the end of this module,
# which moves them out of its reach for good (`gc.freeze`) and turns it back on (in Lambda,
# once the first event is answered: see the end).
gc.disable()

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, CloudWatchEvent, DynamoDBEvent, SQSEvent, WebsocketEvent

from chalicelib.auth import Principal
from chalicelib.rest import Access, Reply, RestApi
from chalicelib.telemetry import instrument
from chalicelib.websocket import WebSocketApi
from chalicelib.wire import batch_item_failures
from chalicelib.wiring import get_service

if TYPE_CHECKING:
    from chalicelib.bodies import (
        ArchiveRequest,
        BroadcastRequest,
        CaseStatusUpdate,
        Contact,
        CreateNotification,
        DirectMessage,
        DocumentRequired,
        ExportQuery,
        FormSubmission,
        MarkRead,
        PageQuery,
        PollQuery,
        Preferences,
        PushSubscriptionBody,
        SeenRequest,
        TestNotification,
    )

IN_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def collect_after_the_first_event(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """The collector back on once the first event is answered (the end of a cold start)."""
    try:
        return get_response(event)
    finally:
        gc.enable()


app = Chalice(app_name="legal-aid-notifications")
app.experimental_feature_flags.update(["WEBSOCKETS"])
if IN_LAMBDA:
    # Registered first, so outermost: the collector comes back on whatever a middleware raises.
    app.register_middleware(collect_after_the_first_event, "all")
app.register_middleware(instrument, "all")
ws = WebSocketApi(get_service)


@app.on_ws_connect()
def connect(event: WebsocketEvent) -> dict[str, int] | None:
    query = event.to_dict().get("queryStringParameters") or {}
    return ws.connect(event.connection_id, query.get("token"))


@app.on_ws_disconnect()
def disconnect(event: WebsocketEvent) -> None:
    ws.disconnect(event.connection_id, event.to_dict()["requestContext"])


@app.on_ws_message()
def message(event: WebsocketEvent) -> None:
    ws.message(event.connection_id, event.body, event.to_dict()["requestContext"])


# --- REST API (docs/rest.md) ----------------------------------------------------------------------

# Routes name their models (chalicelib/bodies.py) and views import their replies' models: each
# model is built on the first request that uses it, never in a function's init phase (every
# function imports app.py).
api = RestApi(app)


@app.route("/health", methods=["GET"], cors=True)
def health() -> dict[str, str]:
    return {"status": "ok"}


@api.route("/api/notifications", method="POST", access=Access.ADMIN, body="CreateNotification")
def create_notification(principal: Principal, body: CreateNotification) -> Reply:
    from chalicelib.contract import SendResult

    result = get_service().notifications.send(
        body.user_id, body.content(), idempotency_key=body.idempotency_key
    )
    reply = SendResult.model_construct(
        notification=result.notification, delivered_to=result.delivered_to
    )
    return Reply(reply, 201 if result.created else 200)


@api.route(
    "/api/notifications/broadcast", method="POST", access=Access.ADMIN, body="BroadcastRequest"
)
def broadcast(principal: Principal, body: BroadcastRequest) -> Reply:
    from chalicelib.contract import BroadcastAccepted

    broadcast_id, recipients = get_service().notifications.broadcast(body.content(), body.group)
    return Reply(
        BroadcastAccepted.model_construct(broadcast_id=broadcast_id, recipients=recipients), 202
    )


@api.route(
    "/api/connections/{connection_id}/messages",
    method="POST",
    access=Access.ADMIN,
    body="DirectMessage",
    parameters="ConnectionPath",
)
def message_connection(principal: Principal, body: DirectMessage, connection_id: str) -> Reply:
    from chalicelib.contract import Delivered

    get_service().notifications.message_connection(connection_id, body.data)
    return Reply(Delivered.model_construct(delivered=True))


@api.route("/api/notifications", query="PageQuery")
def list_notifications(principal: Principal, query: PageQuery) -> Reply:
    from chalicelib.contract import NotificationsPage
    from chalicelib.models import page_cut

    page, unread = get_service().notifications.page(principal.user_id, query)
    items, next_cursor = page_cut(page.items, page.more)
    return Reply(
        NotificationsPage.model_construct(items=items, next_cursor=next_cursor, unread_count=unread)
    )


@api.route("/api/notifications/unread-count")
def unread_count(principal: Principal) -> Reply:
    from chalicelib.contract import UnreadCount

    return Reply(
        UnreadCount.model_construct(
            unread_count=get_service().notifications.unread_count(principal.user_id)
        )
    )


@api.route("/api/notifications/read", method="POST", body="MarkRead", writes=True)
def mark_read(principal: Principal, body: MarkRead) -> Reply:
    from chalicelib.contract import MarkedRead

    change = get_service().notifications.mark_read(principal.user_id, body.ids)
    return Reply(MarkedRead.model_construct(**change.fields()))


@api.route("/api/notifications/seen", method="POST", body="SeenRequest", writes=True)
def seen(principal: Principal, body: SeenRequest) -> Reply:
    from chalicelib.contract import Seen

    return Reply(
        Seen.model_construct(ids=get_service().notifications.seen(principal.user_id, body.ids))
    )


@api.route("/api/notifications/archive", method="POST", body="ArchiveRequest", writes=True)
def archive(principal: Principal, body: ArchiveRequest) -> Reply:
    from chalicelib.contract import Archived

    change = get_service().notifications.archive(principal.user_id, body.ids, body.archived)
    return Reply(Archived.model_construct(**change.fields(), archived=body.archived))


@api.route(
    "/api/notifications/{notification_id}/confirm",
    method="POST",
    parameters="NotificationPath",
    writes=True,
)
def confirm(principal: Principal, notification_id: str) -> Reply:
    from chalicelib.contract import OneNotification

    notifications = get_service().notifications
    notifications.confirm(principal.user_id, notification_id)
    return Reply(
        OneNotification.model_construct(
            notification=notifications.get(principal.user_id, notification_id)
        )
    )


@api.route("/api/notifications/{notification_id}/receipt", parameters="NotificationPath")
def receipt(principal: Principal, notification_id: str) -> Reply:
    return Reply(get_service().receipts.document_for(principal, notification_id))


@api.route("/api/cases/{case_id}/notices", access=Access.ADMIN, parameters="CasePath")
def case_notices(principal: Principal, case_id: str) -> Reply:
    notices = get_service().receipts.case_notices(case_id)
    if "text/csv" in app.current_request.headers.get("accept", ""):
        from chalicelib.rest import notices_csv

        return Reply(notices_csv(notices), headers={"Content-Type": "text/csv; charset=utf-8"})
    return Reply({"case_id": case_id, "notices": notices})


@api.route("/api/me/export", query="ExportQuery")
def export(principal: Principal, query: ExportQuery) -> Reply:
    from chalicelib.rest import export_cursor, export_position

    page, following = get_service().rights.export(principal, export_position(query.cursor))
    return Reply({**page, "next_cursor": export_cursor(following)})


@api.route("/api/users/{user_id}", method="DELETE", access=Access.ADMIN, parameters="UserPath")
def erase_user(principal: Principal, user_id: str) -> Reply:
    from chalicelib.contract import Erased

    status = get_service().rights.request_erasure(user_id)
    return Reply(Erased.model_construct(erased=True, status=status), 202)


@api.route("/api/users/{user_id}/erasure", access=Access.ADMIN, parameters="UserPath")
def erasure_status(principal: Principal, user_id: str) -> Reply:
    from chalicelib.contract import Erasure

    return Reply(Erasure.model_construct(**get_service().rights.erasure_status(user_id)))


@api.route("/api/notifications/poll", query="PollQuery")
def poll(principal: Principal, query: PollQuery) -> Reply:
    from chalicelib.contract import PollResult

    items = get_service().notifications.poll(principal.user_id, query.after, query.wait)
    cursor = items[-1].id if items else query.after
    return Reply(PollResult.model_construct(items=items, cursor=cursor))


@api.route("/api/notifications/{notification_id}", parameters="NotificationPath")
def get_notification(principal: Principal, notification_id: str) -> Reply:
    from chalicelib.contract import OneNotification

    notification = get_service().notifications.get(principal.user_id, notification_id)
    return Reply(OneNotification.model_construct(notification=notification))


@api.route("/api/notifications/{notification_id}", method="DELETE", parameters="NotificationPath")
def delete_notification(principal: Principal, notification_id: str) -> Reply:
    get_service().notifications.delete(principal.user_id, notification_id)
    return Reply(status=204)


@api.route(
    "/api/immigration/notifications/case-status-update",
    method="POST",
    access=Access.ADMIN,
    body="CaseStatusUpdate",
)
def case_status_update(principal: Principal, body: CaseStatusUpdate) -> Reply:
    from chalicelib.contract import OneNotification

    notification = get_service().immigration.case_status_update(
        body.case_id, body.status, body.message, body.user_id
    )
    return Reply(OneNotification.model_construct(notification=notification), 201)


@api.route("/api/immigration/notifications/form-submission", method="POST", body="FormSubmission")
def form_submission(principal: Principal, body: FormSubmission) -> Reply:
    from chalicelib.contract import FormSubmitted

    notification, admins = get_service().immigration.form_submission(
        principal, body.form_id, body.form_type, body.notify_admins
    )
    return Reply(
        FormSubmitted.model_construct(notification=notification, admins_notified=admins), 201
    )


@api.route(
    "/api/immigration/notifications/document-required",
    method="POST",
    access=Access.ADMIN,
    body="DocumentRequired",
)
def document_required(principal: Principal, body: DocumentRequired) -> Reply:
    from chalicelib.contract import OneNotification

    notification = get_service().immigration.document_required(
        body.user_id,
        body.case_id,
        body.document_type,
        body.message,
        deadline=body.deadline,
        escalation=body.escalation,
    )
    return Reply(OneNotification.model_construct(notification=notification), 201)


@api.route(
    "/api/test/notification/{user_id}",
    method="POST",
    access=Access.LOCAL,
    body="TestNotification",
    parameters="UserPath",
)
def test_notification(body: TestNotification, user_id: str) -> Reply:
    from chalicelib.contract import OneNotification
    from chalicelib.models import NotificationContent

    content = NotificationContent(message=body.message, type=body.type)
    result = get_service().notifications.send(user_id, content)
    return Reply(OneNotification.model_construct(notification=result.notification), 201)


@api.route("/api/me")
def me(principal: Principal) -> Reply:
    return Reply(get_service().accounts.me(principal))


@api.route("/api/me/preferences", method="PUT", body="Preferences")
def put_preferences(principal: Principal, body: Preferences) -> Reply:
    return Reply(get_service().accounts.set_preferences(principal.user_id, body))


@api.route("/api/push/key", access=Access.ANYONE)
def push_key() -> Reply:
    from chalicelib.contract import PushKey

    return Reply(PushKey.model_construct(public_key=get_service().webpush.public_key()))


@api.route("/api/me/push-subscriptions", method="POST", body="PushSubscriptionBody")
def subscribe_push(principal: Principal, body: PushSubscriptionBody) -> Reply:
    from chalicelib.contract import PushSubscriptionId

    subscription_id, created = get_service().webpush.subscribe(principal.user_id, body)
    return Reply(PushSubscriptionId.model_construct(id=subscription_id), 201 if created else 200)


@api.route(
    "/api/me/push-subscriptions/{subscription_id}", method="DELETE", parameters="SubscriptionPath"
)
def unsubscribe_push(principal: Principal, subscription_id: str) -> Reply:
    get_service().webpush.unsubscribe(principal.user_id, subscription_id)
    return Reply(status=204)


@api.route(
    "/api/users/{user_id}/contact",
    method="PUT",
    access=Access.ADMIN,
    body="Contact",
    parameters="UserPath",
)
def put_contact(principal: Principal, body: Contact, user_id: str) -> Reply:
    from chalicelib.contract import UserContact

    return Reply(UserContact.model_construct(**get_service().accounts.set_contact(user_id, body)))


@api.route("/api/websocket/stats", access=Access.ADMIN)
def stats(principal: Principal) -> Reply:
    return Reply(get_service().notifications.stats())


# --- SQS jobs worker (broadcast fan-out, erasure, user-wide changes) ---------------------------


@app.on_sqs_message(queue="notifications-fanout", batch_size=10)
def fanout_worker(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    from chalicelib.jobs import Deadline
    from chalicelib.worker import read_jobs

    deadline = Deadline.from_context(event.context)
    try:
        failed = get_service().jobs.process(read_jobs(event.to_dict()["Records"]), deadline)
    finally:
        get_service().counters.flush()
    return batch_item_failures(failed)


# --- escalation sweep (docs/escalation.md) ---------------------------------------------------


@app.schedule("rate(1 minute)", name="escalation_sweep")
def escalation_sweep(event: CloudWatchEvent) -> dict[str, Any]:
    # Leave time to finish the steps under way: one killed mid-send would be lost.
    budget = event.context.get_remaining_time_in_millis() / 1000 - 15
    try:
        report = get_service().escalations.sweep(budget=max(budget, 1))
    finally:
        get_service().counters.flush()
    return {"due": report.due, "outcomes": report.outcomes}


# --- events out: the receipts stream -> EventBridge -------------------------------------------

# The template points the mapping at the receipts table's stream (infra/resources.json).
RECEIPTS_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/receipts/stream/in-the-template"


@app.on_dynamodb_record(
    stream_arn=RECEIPTS_STREAM,
    batch_size=100,
    starting_position="TRIM_HORIZON",
    name="events_publisher",
)
def events_publisher(event: DynamoDBEvent) -> dict[str, list[dict[str, str]]]:
    from chalicelib.events import inserted  # this function's edge only

    images = inserted(event.to_dict()["Records"])
    budget = event.context.get_remaining_time_in_millis() / 1000 - 5
    failed = get_service().publisher.publish(images, budget=max(budget, 1))
    return batch_item_failures(failed)


# Everything above lives as long as the process: no collection needs to trace it again. In
# Lambda the first event builds more that lives as long (clients, models, the service graph):
# the collector stays off until it is answered. Elsewhere (tests, tools) it is on at once.
gc.freeze()
if not IN_LAMBDA:
    gc.enable()
