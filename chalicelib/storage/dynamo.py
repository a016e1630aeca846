"""The DynamoDB helper every store is built on: paging, batches, and THE transaction helper.

Stores say what to read and write; this module says how DynamoDB is asked: a Query read to
its end (`query_all`) or to a limit (`collect`), batch reads and writes that resubmit their
unprocessed part, and `transact`, the one way a store makes a conditional write. Every retry
here uses the one policy (and the one reading of AWS errors) of chalicelib/retry.py, and
every retry that runs out ends the same way: `Unavailable` (503 with Retry-After over REST,
`internal_error` over WebSocket), never a `RuntimeError`, a partial result presented as whole,
or a wrong answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from chalicelib.errors import Unavailable
from chalicelib.retry import Backoff, error_code, http_status, is_transient
from chalicelib.storage.keys import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TRANSACTION_LIMIT = 100
# What a store builds for one transaction: the last place is kept for a request's `Rider`.
TRANSACTION_ROOM = TRANSACTION_LIMIT - 1
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
# A write refused for its conditions: `prepare` settles what the reasons decide.
CANCELLED = frozenset({"TransactionCanceledException", "ConditionalCheckFailedException"})
SINGLE_WRITES = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}
# Failures after which the write may or may not have been applied: the same request is sent
# again (a transaction with the same ClientRequestToken, which DynamoDB applies at most once).
AMBIGUOUS_ERRORS = frozenset({"InternalServerError", "TransactionInProgressException"})
# A write cancelled by contention picks other items (another counter shard) and goes again;
# enough attempts that a realistic conflict rate never runs them out.
TRANSACT_RETRY = Backoff(attempts=10, base=0.01, cap=0.25)


class Rider(Protocol):
    """One write a request asks its first transaction to carry (its rate-limit charge): an
    extra action whose failed condition refuses the whole request with nothing written."""

    @property
    def pending(self) -> bool: ...

    def action(self) -> Item: ...

    def carried(self) -> None:
        """It committed with a transaction."""

    def refused(self) -> Exception:
        """Its condition failed: the error the request ends with."""

    def alone(self) -> None:
        """Write it now by itself (no room in the transaction); raises when refused."""


# Set for the length of one request's action (`carrying`); threads the action starts see none.
_rider: ContextVar[Rider | None] = ContextVar("transaction_rider", default=None)


@contextmanager
def carrying(rider: Rider) -> Iterator[None]:
    """Within this block the first transaction that commits carries `rider` as its last
    action (one that fills all 100 writes it first, alone)."""
    token = _rider.set(rider)
    try:
        yield
    finally:
        _rider.reset(token)


def update_action(
    table: str,
    key: Item,
    expression: str,
    values: Item | None = None,
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> Item:
    """One Update action of a transaction (empty names or values left out: DynamoDB refuses
    them)."""
    update: Item = {"TableName": table, "Key": key, "UpdateExpression": expression}
    if condition:
        update["ConditionExpression"] = condition
    if values:
        update["ExpressionAttributeValues"] = values
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def chunks[T](items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Cancellation(NamedTuple):
    """Why the last attempt was cancelled: one reason code per action, in order, and the
    item an action's failed condition returned (`ReturnValuesOnConditionCheckFailure`)."""

    codes: list[str]
    items: list[Item | None]
    # The same request was sent before with an unknown outcome: a failed condition may be
    # this request's own earlier commit.
    after_ambiguous: bool = False

    def failed_condition(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"


def _cancellation(exc: ClientError, actions: int, after_ambiguous: bool) -> Cancellation:
    code = error_code(exc)
    if code == "ConditionalCheckFailedException":
        return Cancellation(["ConditionalCheckFailed"], [exc.response.get("Item")], after_ambiguous)
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return Cancellation(
            [reason.get("Code") or "None" for reason in reasons],
            [reason.get("Item") for reason in reasons],
            after_ambiguous,
        )
    return Cancellation([code] * actions, [None] * actions, after_ambiguous)


def _ambiguous(exc: ClientError) -> bool:
    return error_code(exc) in AMBIGUOUS_ERRORS or http_status(exc) >= 500


class Dynamo:
    """One DynamoDB client plus the retry policy; shared by every store."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        retry: Backoff | None = None,
        transact_retry: Backoff | None = None,
    ) -> None:
        self.client = client
        self.retry = retry or Backoff()
        self.transact_retry = transact_retry or TRANSACT_RETRY

    def transact(
        self,
        prepare: Callable[[Cancellation | None], list[Item] | None],
        *,
        attempts: int | None = None,
    ) -> bool:
        """Commit the actions `prepare` builds; True once they commit, False if it builds none.

        `prepare` reads what it needs and returns the actions (at most 100). After a
        cancellation it is called again with the reasons, so it can settle what they decide
        (an idempotency record that exists, an item deleted meanwhile) and rebuild the rest.
        Each request built carries its own ClientRequestToken; after an ambiguous failure (a
        timeout, a 5xx) the same request goes again with the same token, so it is applied at
        most once; a cancellation that follows says `after_ambiguous`. One action is written
        as a plain conditional write (half the capacity of a transaction, same outcome).
        Within `carrying`, the first transaction also carries the request's `Rider`, so
        `prepare` builds at most `TRANSACTION_ROOM` actions to leave it room.
        Raises `Unavailable` when the attempts (the policy's, or `attempts`) run out.
        """
        policy = self.transact_retry
        if attempts is not None:
            policy = policy._replace(attempts=attempts)
        cancelled: Cancellation | None = None
        actions: list[Item] | None = None
        sent: list[Item] = []
        rider: Rider | None = None
        token = ""
        ambiguous = False
        for attempt in range(policy.attempts):
            if not ambiguous:
                actions = prepare(cancelled)
                if not actions:
                    return False
                rider = _rider.get()
                if rider is not None and rider.pending and len(actions) >= TRANSACTION_LIMIT:
                    rider.alone()
                if rider is not None and not rider.pending:
                    rider = None
                sent = actions if rider is None else [*actions, rider.action()]
                token = uuid.uuid4().hex
            assert actions is not None
            if attempt:
                policy.pause(attempt)
            try:
                if len(sent) == 1:
                    [(kind, request)] = sent[0].items()
                    getattr(self.client, SINGLE_WRITES[kind])(**request)
                else:
                    self.client.transact_write_items(TransactItems=sent, ClientRequestToken=token)
                if rider is not None:
                    rider.carried()
                return True
            except (ReadTimeoutError, ConnectionClosedError):
                ambiguous = True
            except ClientError as exc:
                if _ambiguous(exc):
                    ambiguous = True
                    continue
                if not is_transient(exc) and error_code(exc) not in CANCELLED:
                    raise
                cancelled = _cancellation(exc, len(sent), ambiguous)
                if rider is not None and cancelled.failed_condition(len(actions)):
                    if not ambiguous:
                        raise rider.refused() from None
                    # The attempt whose outcome was unknown may have committed it.
                    rider.carried()
                ambiguous = False
        raise Unavailable("DynamoDB kept cancelling the write: retry shortly")

    def query_all(self, **request: Any) -> Iterator[Item]:
        """Every item a Query matches, page after page."""
        while True:
            response = self.client.query(**request)
            yield from response["Items"]
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def collect(self, request: Item, limit: int) -> tuple[list[Item], bool]:
        """Up to `limit` items matching the Query and its filter, and whether more exist."""
        items: list[Item] = []
        while True:
            response = self.client.query(**request, Limit=limit + 1 - len(items))
            items.extend(response["Items"])
            if len(items) > limit or "LastEvaluatedKey" not in response:
                return items[:limit], len(items) > limit
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def batch_get(self, table: str, keys: list[Item], projection: str) -> list[Item]:
        """The items of `keys` that exist (strongly consistent), resubmitting unprocessed keys."""
        found: list[Item] = []
        for batch in chunks(keys, BATCH_GET_LIMIT):
            request: Item = {
                table: {"Keys": batch, "ProjectionExpression": projection, "ConsistentRead": True}
            }
            for attempt in range(self.retry.attempts):
                if attempt:
                    self.retry.pause(attempt)
                response = self.client.batch_get_item(RequestItems=request)
                found.extend(response["Responses"].get(table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise Unavailable("DynamoDB kept leaving reads unprocessed: retry shortly")
        return found

    def batch_write(self, table: str, requests: list[Item]) -> None:
        """Apply Put/Delete requests, resubmitting the unprocessed ones."""
        for batch in chunks(requests, BATCH_WRITE_LIMIT):
            pending: Item = {table: batch}
            for attempt in range(self.retry.attempts):
                if attempt:
                    self.retry.pause(attempt)
                pending = (
                    self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                )
                if not pending:
                    break
            else:
                raise Unavailable("DynamoDB kept leaving writes unprocessed: retry shortly")
