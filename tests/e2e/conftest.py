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
