"""The rules written once and read everywhere: what an AWS error means (retry.py), when a
notification is still open, when it is muted, when quiet hours end (models.py).

AWS errors are the ones botocore itself raises from a service's answer (a Stubber answers
with the code and status), not hand-built dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.models import Notification, NotificationContent, Preferences, QuietHours, stays_open
from chalicelib.retry import is_gone, is_transient

CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "apigatewaymanagementapi": ("post_to_connection", {"ConnectionId": "c", "Data": b"x"}),
    "sesv2": ("send_email", {"Destination": {}, "Content": {}}),
    "sns": ("publish", {"Message": "m"}),
    "dynamodb": ("get_item", {"TableName": "t", "Key": {}}),
    "events": ("put_events", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]}),
}


def raised(service: str, code: str, status: int) -> ClientError:
    client = boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="https://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    method, params = CALLS[service]
    with Stubber(client) as stub:
        stub.add_client_error(method, code, http_status_code=status)
        with pytest.raises(ClientError) as caught:
            getattr(client, method)(**params)
    return caught.value


@pytest.mark.parametrize(
    ("service", "code", "status", "transient", "gone"),
    [
        ("apigatewaymanagementapi", "GoneException", 410, False, True),
        ("apigatewaymanagementapi", "LimitExceededException", 429, True, False),
        ("apigatewaymanagementapi", "InternalServerError", 500, True, False),
        ("apigatewaymanagementapi", "ForbiddenException", 403, False, False),
        ("sesv2", "TooManyRequestsException", 429, True, False),
        ("sesv2", "MessageRejected", 400, False, False),
        ("sesv2", "SomethingNew", 503, True, False),  # any 5xx, whatever its code
        ("sns", "Throttling", 400, True, False),
        ("sns", "InternalError", 500, True, False),
        ("sns", "InvalidParameter", 400, False, False),
        ("dynamodb", "ProvisionedThroughputExceededException", 400, True, False),
        ("dynamodb", "TransactionConflictException", 400, True, False),
        ("dynamodb", "ConditionalCheckFailedException", 400, False, False),
        ("dynamodb", "ValidationException", 400, False, False),
        ("events", "InternalException", 500, True, False),
        ("events", "AccessDeniedException", 400, False, False),
    ],
)
def test_one_reading_of_aws_errors_for_every_service(
    service: str, code: str, status: int, transient: bool, gone: bool
) -> None:
    error = raised(service, code, status)
    assert (is_transient(error), is_gone(error)) == (transient, gone)


def notification(**fields: Any) -> Notification:
    return Notification(
        id="01J0000000000000000000000A",
        user_id="alice",
        type="info",
        message="m",
        category=fields.pop("category", None),
        priority=fields.pop("priority", "normal"),
        data={},
        created_at="2026-06-01T12:00:00.000Z",
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "still_open"),
    [
        ({}, True),
        ({"read": True}, False),
        ({"requires_confirmation": True}, True),
        ({"requires_confirmation": True, "read": True}, True),  # reading is not confirming
        ({"requires_confirmation": True, "read": True, "confirmed_at": "2026-06-01T12:01:00.000Z"},
         False),
    ],
)  # fmt: skip
def test_a_notification_is_open_until_read_or_confirmed_when_it_requires_it(
    fields: dict[str, Any], still_open: bool
) -> None:
    assert notification(**fields).still_open is still_open


@pytest.mark.parametrize("requires_confirmation", [False, True])
def test_a_read_closes_what_the_notification_rule_closes(requires_confirmation: bool) -> None:
    read = notification(requires_confirmation=requires_confirmation, read=True)
    assert read.still_open is stays_open(
        requires_confirmation=requires_confirmation, read=True, confirmed=False
    )


categories = st.sampled_from([None, "news", "billing"])


@given(
    category=categories,
    priority=st.sampled_from(["low", "normal", "high"]),
    requires_confirmation=st.booleans(),
    muted=st.lists(st.sampled_from(["news", "billing", "court"]), max_size=3),
)
def test_content_and_the_stored_notification_are_muted_alike(
    category: str | None, priority: str, requires_confirmation: bool, muted: list[str]
) -> None:
    preferences = Preferences(muted_categories=muted)
    content = NotificationContent(
        message="m",
        category=category,
        priority=priority,  # type: ignore[arg-type]
        requires_confirmation=requires_confirmation,
    )
    stored = notification(
        category=category, priority=priority, requires_confirmation=requires_confirmation
    )
    expected = (
        category in muted and priority != "high" and not requires_confirmation
    )  # what users are told: high priority and confirmations always come through
    assert preferences.mutes(content) is preferences.mutes(stored) is expected


def test_no_quiet_hours_never_defer_and_set_ones_end_in_the_users_zone() -> None:
    now = datetime(2026, 6, 1, 14, 30, tzinfo=UTC)  # 23:30 in Tokyo
    assert Preferences().quiet_until(now) is None
    night = QuietHours(start="22:00", end="07:00", time_zone="Asia/Tokyo")
    assert Preferences(quiet_hours=night).quiet_until(now) == datetime(
        2026, 6, 1, 22, 0, tzinfo=UTC
    )
