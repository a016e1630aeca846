"""Claims on the pages of a broadcast's directory walk, so a page enqueued twice is walked once.

    BCAST#<id>    PAGE#<n>  job_id (the job that claimed it), expires_at (TTL)

(keys built in storage/keys.py)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from chalicelib.storage.dynamo import Dynamo, error_code
from chalicelib.storage.keys import page_claim_key


class PageClaims:
    def __init__(self, db: Dynamo, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._table = table
        self._clock = clock

    def claim(self, broadcast_id: str, page: int, job_id: str, ttl_seconds: int) -> bool:
        """Claim page `page` of a broadcast's directory walk for the job `job_id`.

        True for the first job to claim it, and again for that same job (SQS redelivers a job
        whose worker died); False for any other copy, so a page enqueued twice is walked once.
        """
        expires = str(int(self._clock()) + ttl_seconds)
        try:
            self._db.client.put_item(
                TableName=self._table,
                Item={
                    **page_claim_key(broadcast_id, page),
                    "job_id": {"S": job_id},
                    "expires_at": {"N": expires},
                },
                ConditionExpression="attribute_not_exists(pk) OR job_id = :job",
                ExpressionAttributeValues={":job": {"S": job_id}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
