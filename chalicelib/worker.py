"""The jobs worker's edge: each SQS message read into its job, each job's payload parsed into
its model, then the domain called.

`read_jobs` parses the message around a job (`{"kind", "payload"}`) off each SQS record, as the
REST and WebSocket edges parse a body or a frame; chalicelib/jobs.py hands the payload to the
handler registered for its kind, and the handlers here parse it and call the service with the
model. A message or payload that does not parse fails its record alone: SQS hands it over
again, then to the dead-letter queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.fanout import FANOUT_BATCH, FANOUT_PAGE
from chalicelib.models import FanoutJob, FanoutPage
from chalicelib.rights import ERASE_USER
from chalicelib.telemetry import logger as log

if TYPE_CHECKING:
    from chalicelib.jobs import Deadline, Job, Registry
    from chalicelib.notifications import Notifications
    from chalicelib.rights import DataRights


class JobMessage(BaseModel):
    """One SQS message: the kind of job and its payload."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]


def read_jobs(records: list[dict[str, Any]]) -> list[tuple[str, Job | None]]:
    """Each SQS record's message id and job (None, logged, for one that does not parse)."""
    jobs: list[tuple[str, Job | None]] = []
    for record in records:
        try:
            message = JobMessage.model_validate_json(record["body"])
            jobs.append((record["messageId"], (message.kind, message.payload)))
        except (ValidationError, KeyError):
            log.exception("job unreadable", extra={"message_id": record.get("messageId")})
            jobs.append((record["messageId"], None))
    return jobs


class ReadAllJob(BaseModel):
    """A `mark_read_all` job's payload: the read watermark to record up to (no `read_at`: a
    job enqueued before watermarks had a time)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    user_id: str
    upto: str
    read_at: str | None = None
    channel: str


class ArchiveAllJob(BaseModel):
    """An `archive_all` job's payload of an archive all: its fence, its time and the
    relisted shelf it covers."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    user_id: str
    fence: str
    at: str
    relisted_from: str = ""
    channel: str


class RestoreAllJob(BaseModel):
    """An `archive_all` job's payload of a restore all: everything listed up to `upto`."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    user_id: str
    upto: str
    archived: bool
    channel: str


def register_user_wide(registry: Registry, notifications: Notifications) -> None:
    """Mark all read's and archive all's jobs (chalicelib/notifications.py): slice after
    slice until the deadline."""

    def read_all(payload: dict[str, Any], deadline: Deadline) -> bool:
        return notifications.mark_read_all(ReadAllJob.model_validate(payload), deadline)

    def archive_all(payload: dict[str, Any], deadline: Deadline) -> bool:
        if "fence" in payload:
            return notifications.archive_all(ArchiveAllJob.model_validate(payload), deadline)
        return notifications.restore_all(RestoreAllJob.model_validate(payload), deadline)

    registry.register("mark_read_all", read_all)
    registry.register("archive_all", archive_all)


def register_fanout(registry: Registry, notifications: Notifications) -> None:
    """A broadcast's two kinds of job (chalicelib/fanout.py): each is one bounded step, done in
    one go."""

    def page(payload: dict[str, Any], deadline: Deadline) -> bool:
        notifications.deliver_page(FanoutPage.model_validate(payload))
        return True

    def batch(payload: dict[str, Any], deadline: Deadline) -> bool:
        job = FanoutJob.model_validate(payload)
        notifications.deliver(job.content, job.user_ids, broadcast_id=job.broadcast_id)
        return True

    registry.register(FANOUT_PAGE, page)
    registry.register(FANOUT_BATCH, batch)


class ErasureJob(BaseModel):
    """An erasure job's payload (chalicelib/rights.py): whose, and which request."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    user_id: str
    requested_at: str


def register_erasure(registry: Registry, rights: DataRights) -> None:
    """The erasure job: one bounded slice a run. `rights` is looked up when a job runs, as
    register_fanout's notifications: the rights may be built after the registry."""

    def erase(payload: dict[str, Any], deadline: Deadline) -> bool:
        job = ErasureJob.model_validate(payload)
        return rights.erase_slice(job.user_id, job.requested_at, deadline)

    registry.register(ERASE_USER, erase)
