"""The jobs worker's edge: each job's payload parsed into its model, then the domain called.

chalicelib/jobs.py reads the SQS message around a job (`{"kind", "payload"}`) and hands the
payload to the handler registered for its kind; the handlers here parse it, as the REST and
WebSocket edges parse a body or a frame, and call the service with the model. A payload that
does not parse raises: the record is reported as failed and SQS hands it over again, then to
the dead-letter queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.fanout import FANOUT_BATCH, FANOUT_PAGE
from chalicelib.models import FanoutJob, FanoutPage

if TYPE_CHECKING:
    from chalicelib.jobs import Deadline, Registry
    from chalicelib.notifications import Notifications


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
