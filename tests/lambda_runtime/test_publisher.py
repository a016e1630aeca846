"""The zip's EventsPublisher as Lambda runs it (a clean python3.13 process, awslambdaric's
context) on DynamoDB stream events of the shape Lambda's event source mapping sends: the
receipts table's stream on moto server, read through the DynamoDB Streams API, each record
with its `eventSourceARN` and `ApproximateCreationDateTime` in epoch seconds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.streams import lambda_record
from tests.conftest import BusQueue
from tests.e2e.support import local_client
from tests.lambda_runtime.conftest import BUS
from tests.lambda_runtime.support import FunctionError, LambdaFunction
from tests.lambda_runtime.test_zip import Rest

SECRET_TEXT = "Bring the signed I-589 to the clinic"


def stream_records(moto_url: str, table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, as Lambda hands them to the function."""
    arn = local_client("dynamodb", moto_url).describe_table(TableName=table)["Table"][
        "LatestStreamArn"
    ]
    streams = local_client("dynamodbstreams", moto_url)
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [lambda_record(record, arn) for record in records]


def bus_queue(moto_url: str) -> BusQueue:
    """An SQS queue that a rule on the bus sends every event to."""
    sqs, events = local_client("sqs", moto_url), local_client("events", moto_url)
    pattern = {"source": ["legal-aid.notifications"]}
    return BusQueue(events, sqs, BUS, pattern, "zip-events-seen")


def test_the_zip_publishes_a_stream_batch_and_raises_on_a_poison(
    functions: dict[str, LambdaFunction], stack_refs: dict[str, str], moto_url: str
) -> None:
    queue = bus_queue(moto_url)
    rest = Rest(functions["APIHandler"])
    status, body = rest(
        "POST",
        "/api/notifications",
        {"user_id": "zara", "message": SECRET_TEXT, "data": {"case_id": "Z-9"}},
    )
    assert status == 201, body
    notice_id = body["notification"]["id"]
    status, _ = rest(
        "POST", "/api/notifications/read", {"ids": [notice_id]}, user="zara", admin=False
    )
    assert status == 200
    records = [
        record
        for record in stream_records(moto_url, stack_refs["ReceiptsTable"])
        if record["dynamodb"]["Keys"]["notification_id"]["S"] == notice_id
    ]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT"]
    assert isinstance(records[0]["dynamodb"]["ApproximateCreationDateTime"], int)

    answer = functions["EventsPublisher"].invoke({"Records": records})
    assert answer == {"batchItemFailures": []}
    events = queue.drain()
    status, receipt = rest("GET", f"/api/notifications/{notice_id}/receipt")
    assert status == 200
    assert [event["detail-type"] for event in events] == ["notice.stored", "notice.read"]
    assert [event["detail"]["entry"] for event in events] == receipt["entries"]
    assert {event["detail"]["case_id"] for event in events} == {"Z-9"}
    assert SECRET_TEXT not in json.dumps(events)

    # A record whose image is not a receipt entry fails the batch (the mapping bisects it).
    broken = {**records[1], "dynamodb": {**records[1]["dynamodb"], "NewImage": {"seq": {"N": "2"}}}}
    with pytest.raises(FunctionError) as failed:
        functions["EventsPublisher"].invoke({"Records": [broken]})
    assert failed.value.reply["errorType"] == "PoisonRecord"
    assert queue.drain() == []
