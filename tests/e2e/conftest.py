"""Stacks for end-to-end tests: each is ``python -m devstack run`` on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack
from tests.e2e.support import PROBE_APP


@pytest.fixture(scope="session")
def probe_stack() -> Iterator[LocalStack]:
    """The emulator running the probe app, which records the events it gets."""
    with LocalStack(app=PROBE_APP) as stack:
        yield stack
    assert stack.stop() == 0


SERVICE_RATE_LIMIT = 30


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """The emulator running app.py, as ``make run`` does, with a low rate limit to test."""
    with LocalStack(env={"RATE_LIMIT_PER_MINUTE": str(SERVICE_RATE_LIMIT)}) as stack:
        yield stack
    assert stack.stop() == 0
