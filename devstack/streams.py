"""The receipts stream's event source mapping, locally: what Lambda does between a DynamoDB
stream and the app's `@app.on_dynamodb_record` function.

`StreamEventSource` reads the stream through the DynamoDB Streams API (`describe_stream`,
`get_shard_iterator`, `get_records` on the embedded moto), keeps the records the mapping's
filter passes (infra/resources.json's `FilterCriteria`), and invokes the handler with batches
of the Lambda event shape (`eventSourceARN` on each record, `ApproximateCreationDateTime` in
epoch seconds) and a Lambda context, then settles the answer as the mapping configured in
infra/resources.json does:
- `batchItemFailures` (ReportBatchItemFailures): checkpoint before the lowest failed sequence
  number and retry from there (the records after it too); an unknown identifier fails the
  whole batch, as Lambda treats it.
- an exception (a function error): with BisectBatchOnFunctionError the batch is split in two
  halves, each retried on its own (a split is not counted as a retry here).
- after MaximumRetryAttempts retries of a batch: its on-failure record (the batch's shard and
  sequence range, not the records) goes to the on-failure queue, and the shard moves on.
The shard is processed in order: nothing after a failing batch runs until it is settled.
Retries wait `retry_pause` seconds (Lambda backs off too, by its own schedule).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devstack.background import Poller
from devstack.context import LambdaContext
from devstack.tables import INFRA

log = logging.getLogger("devstack")
Handler = Callable[[dict[str, Any], Any], Any]
MAPPING_EVENT = ("EventsPublisher", "EventsPublisherDynamodbEventSource")


def mapping_settings() -> dict[str, Any]:
    """The receipts stream mapping's properties as infra/resources.json configures them."""
    resources = json.loads(INFRA.read_text())["Resources"]
    function, event = MAPPING_EVENT
    return resources[function]["Properties"]["Events"][event]["Properties"]


def record_filter(settings: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The mapping's filter: top-level fields matched against lists of values."""
    patterns = [
        json.loads(entry["Pattern"])
        for entry in settings.get("FilterCriteria", {}).get("Filters", [])
    ]

    def passes(record: dict[str, Any]) -> bool:
        return not patterns or any(
            all(record.get(key) in values for key, values in pattern.items())
            for pattern in patterns
        )

    return passes


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A `get_records` record as Lambda hands it to the function."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def table_stream(dynamodb: Any, streams: Any, table: str) -> tuple[str, list[dict[str, Any]]]:
    """A table's stream ARN and the records its shard holds from the oldest, as `get_records`
    returns them (1,000 at most)."""
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return arn, streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]


def stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def on_failure_record(
    batch: list[dict[str, Any]],
    *,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    invocations: int,
    function_error: bool,
) -> dict[str, Any]:
    """What Lambda sends a stream mapping's on-failure destination: the batch's place in the
    stream, not its records (they stay readable in the stream for 24 h)."""

    def arrival(record: dict[str, Any]) -> str:
        seconds = record["dynamodb"].get("ApproximateCreationDateTime", time.time())
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invocations,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            **({"functionError": "Unhandled"} if function_error else {}),
        },
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(batch[0]),
            "approximateArrivalOfLastRecord": arrival(batch[-1]),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


class StreamEventSource(Poller):
    """One table stream's mapping to a handler; see the module docstring."""

    thread_name = "stream-source"

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: Handler,
        *,
        on_failure: Callable[[dict[str, Any]], None],
        function_name: str = "events_publisher",
        region: str = "us-east-1",
        settings: dict[str, Any] | None = None,
        retry_pause: float = 0.2,
        poll_interval: float = 0.1,
    ) -> None:
        super().__init__(idle_pause=poll_interval)
        settings = settings if settings is not None else mapping_settings()
        self._streams = streams
        self._stream_arn = stream_arn
        self._handler = handler
        self._on_failure = on_failure
        self._function_name = function_name
        self._region = region
        self._batch_size = int(settings.get("BatchSize", 100))
        self._max_retries = int(settings.get("MaximumRetryAttempts", -1))
        self._bisect = bool(settings.get("BisectBatchOnFunctionError", False))
        self._reports_failures = "ReportBatchItemFailures" in settings.get(
            "FunctionResponseTypes", []
        )
        self._passes = record_filter(settings)
        self._retry_pause = retry_pause
        self._iterator: str | None = None
        self._shard_id = ""
        self.invocations = 0

    def open(self, position: str = "LATEST") -> StreamEventSource:
        """Start reading at `position`: LATEST (what is written from now on) or TRIM_HORIZON."""
        description = self._streams.describe_stream(StreamArn=self._stream_arn)
        [shard] = description["StreamDescription"]["Shards"]
        self._shard_id = shard["ShardId"]
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=self._shard_id, ShardIteratorType=position
        )["ShardIterator"]
        return self

    def poll_once(self) -> int:
        """Read what the stream holds (a batch at most) and deliver it; returns the records
        read (filtered out ones included)."""
        assert self._iterator is not None, "open() the stream first"
        response = self._streams.get_records(ShardIterator=self._iterator, Limit=self._batch_size)
        self._iterator = response.get("NextShardIterator") or self._iterator
        records = [lambda_record(r, self._stream_arn) for r in response.get("Records", [])]
        batch = [record for record in records if self._passes(record)]
        if batch:
            self._deliver(batch)
        return len(records)

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        pending: deque[tuple[list[dict[str, Any]], int]] = deque([(records, 0)])
        while pending:
            batch, retries = pending.popleft()
            remaining, function_error = self._invoke(batch)
            if not remaining:
                continue
            if self._max_retries >= 0 and retries >= self._max_retries:
                self._on_failure(
                    on_failure_record(
                        remaining,
                        shard_id=self._shard_id,
                        stream_arn=self._stream_arn,
                        function_arn=LambdaContext(
                            function_name=self._function_name, region=self._region
                        ).invoked_function_arn,
                        invocations=retries + 1,
                        function_error=function_error,
                    )
                )
                continue
            if self._stop.wait(self._retry_pause):
                return
            if function_error and self._bisect and len(remaining) > 1:
                half = len(remaining) // 2
                pending.appendleft((remaining[half:], retries))
                pending.appendleft((remaining[:half], retries))
            else:
                pending.appendleft((remaining, retries + 1))

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """Invoke once; returns the records to retry and whether the function raised."""
        self.invocations += 1
        context = LambdaContext(function_name=self._function_name, region=self._region)
        try:
            response = self._handler(stream_event(batch), context)
        except Exception:
            log.exception("%s failed on a batch of %d", self._function_name, len(batch))
            return batch, True
        failures = (response or {}).get("batchItemFailures") if self._reports_failures else None
        if not failures:
            return [], False
        numbers = [record["dynamodb"]["SequenceNumber"] for record in batch]
        identifiers = [failure.get("itemIdentifier") for failure in failures]
        if not all(identifier in numbers for identifier in identifiers):
            return batch, True  # Lambda counts a malformed answer as the whole batch failing
        checkpoint = min(numbers.index(identifier) for identifier in identifiers)
        return batch[checkpoint:], False
