"""Large broadcasts go through SQS in two stages, so the REST request does O(1) work.

The request enqueues one page job (kind `fanout_page`); a worker claims that page, reads it
from the directory and enqueues its batch jobs (kind `fanout_batch`, up to 100 recipients
each) and, last, the next page job; batch workers store and push. `FanoutQueue` writes the
jobs onto the jobs queue (chalicelib/jobs.py) and walks the pages; the worker's edge
(chalicelib/worker.py) parses each job and hands it to the domain.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from chalicelib.jobs import MESSAGES_PER_CALL, SqsJobs, job_body
from chalicelib.models import FanoutJob, FanoutPage, NotificationContent
from chalicelib.storage import Directory, PageClaims, new_id

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

FANOUT_PAGE = "fanout_page"
FANOUT_BATCH = "fanout_batch"
USERS_PER_MESSAGE = 100
# A page job fills ten SendMessageBatch calls: its batch jobs plus the next page job. Pages
# chain one after another, so they are large: 9,900 recipients a page at 100 a batch.
BATCHES_PER_PAGE = 10 * MESSAGES_PER_CALL - 1
# How long a broadcast page's claim is kept: longer than SQS keeps retrying a job.
PAGE_CLAIM_TTL = 2 * 24 * 3600


@dataclass(eq=False)
class FanoutQueue:
    """Splits a broadcast into jobs of up to 100 recipients and enqueues them."""

    jobs: SqsJobs
    directory: Directory
    claims: PageClaims
    _: KW_ONLY
    users_per_message: int = USERS_PER_MESSAGE
    batches_per_page: int = BATCHES_PER_PAGE

    @property
    def client(self) -> SQSClient:
        return self.jobs.client

    @property
    def queue_url(self) -> str:
        return self.jobs.queue_url

    @property
    def page_size(self) -> int:
        """Members a page job reads: as many as its batch jobs hold."""
        return self.users_per_message * self.batches_per_page

    def start(self, page: FanoutPage) -> None:
        """Enqueue a broadcast's first page job (the only SQS call of the REST request)."""
        self.jobs.send_bodies([_page_body(page)])

    def walk(self, job: FanoutPage) -> int:
        """One page of a broadcast's directory walk: enqueue its batches and the next page.

        A worker dying here loses nothing: SQS redelivers the same job, which reclaims its
        page and enqueues the same batches again (delivery is idempotent per broadcast and
        recipient); another copy of the page job is skipped. Returns the batches enqueued.
        """
        if not self.claims.claim(job.broadcast_id, job.page, job.job_id, PAGE_CLAIM_TTL):
            return 0
        members, after = self.directory.members_page(job.group, job.after, self.page_size)
        next_page = None
        if after is not None:
            next_page = job.model_copy(
                update={"job_id": new_id(), "page": job.page + 1, "after": after}
            )
        if not members and next_page is None:
            return 0
        return self.enqueue(job.broadcast_id, job.content, members, next_page=next_page)

    def enqueue(
        self,
        broadcast_id: str,
        content: NotificationContent,
        user_ids: list[str],
        *,
        next_page: FanoutPage | None = None,
    ) -> int:
        """Enqueue every batch (and the next page job); returns the number of messages.
        Raises if SQS keeps refusing."""
        bodies = [
            job_body(
                FANOUT_BATCH,
                FanoutJob(
                    broadcast_id=broadcast_id,
                    content=content,
                    user_ids=user_ids[start : start + self.users_per_message],
                ).model_dump(mode="json"),
            )
            for start in range(0, len(user_ids), self.users_per_message)
        ]
        if next_page is not None:
            bodies.append(_page_body(next_page))
        self.jobs.send_bodies(bodies)
        return len(bodies)


def _page_body(page: FanoutPage) -> str:
    return job_body(FANOUT_PAGE, page.model_dump(mode="json"))
