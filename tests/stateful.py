"""The base of the stateful (hypothesis) tests: each example runs on its own moto state."""

from __future__ import annotations

import boto3
import requests
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from moto import mock_aws

from chalicelib.settings import Settings
from chalicelib.wiring import build_service, use_service
from devstack.tables import create_tables
from tests.conftest import REGION, Clock


class ServiceMachine(RuleBasedStateMachine):
    """A machine on empty tables of infra/ and a service on `clock` that app.py uses. Hypothesis
    builds one per example, outside any fixture: it starts its own moto and stops it in
    `teardown`."""

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        # A mock started inside another (the test session's) keeps its state: reset it, so
        # each example starts from empty tables whatever ran before.
        requests.post("http://motoapi.amazonaws.com/moto-api/reset", timeout=5).raise_for_status()
        create_tables(
            boto3.client("dynamodb", region_name=REGION),
            connections_table="connections",
            notifications_table="notifications",
        )
        self.clock = Clock()
        self.service = build_service(Settings.from_env(), clock=self.clock)
        use_service(self.service)

    def teardown(self) -> None:
        use_service(None)
        self.mock.stop()

    @classmethod
    def check(cls, *, examples: int, steps: int) -> None:
        """Run the machine as a test: `examples` examples of up to `steps` steps."""
        run_state_machine_as_test(
            cls,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                # Each example starts its own moto: shrinking would take minutes, so a failure
                # is reported as generated (hypothesis prints its steps).
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
            ),
        )
