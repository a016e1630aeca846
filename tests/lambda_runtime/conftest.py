"""The packaged zip's functions in clean processes, beside moto server and devstack's
WebSocket gateway (which also serves @connections): see support.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from devstack.fanout import create_fanout_queues
from devstack.tables import create_tables
from tests.conftest import REGION
from tests.lambda_runtime.support import GatewayThread, LambdaFunction, runtime_folder, unzip

API_ID = "zipapi0001"
SECRET = "zip-test-secret-0123456789abcdef0123456789abcdef"
FANOUT_THRESHOLD = "3"


@pytest.fixture(scope="module")
def template(lambda_package: Path) -> dict[str, Any]:
    return json.loads((lambda_package / "sam.json").read_text())


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def stack_refs(moto_url: str, template: dict[str, Any]) -> dict[str, str]:
    """Stand-ins, on moto server, for what the template's `Ref`s name in a deployed stack."""
    clients = {
        name: boto3.client(
            name,
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in ("dynamodb", "sqs", "ssm", "sesv2")
    }
    create_tables(
        clients["dynamodb"],
        connections_table="zip-connections",
        notifications_table="zip-notes",
        receipts_table="zip-receipts",
    )
    queue, _ = create_fanout_queues(clients["sqs"], prefix="zip")
    parameter = template["Parameters"]["JwtSecretParameterName"]["Default"]
    clients["ssm"].put_parameter(Name=parameter, Value=SECRET, Type="SecureString")
    # The verified SES identity a deploy needs (README "Deploy"): the default EmailFrom.
    sender = template["Parameters"]["EmailFrom"]["Default"]
    clients["sesv2"].create_email_identity(EmailIdentity=sender)
    return {
        "ConnectionsTable": "zip-connections",
        "NotificationsTable": "zip-notes",
        "ReceiptsTable": "zip-receipts",
        "WebsocketAPI": API_ID,
        "FanoutQueue": queue,
        "JwtSecretParameterName": parameter,
    }


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayThread]:
    thread = GatewayThread()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def functions(
    lambda_package: Path,
    tmp_path_factory: pytest.TempPathFactory,
    template: dict[str, Any],
    stack_refs: dict[str, str],
    moto_url: str,
    gateway: GatewayThread,
) -> Iterator[dict[str, LambdaFunction]]:
    """Every function of the template, by logical id, each in its own process."""
    from tests.lambda_runtime.support import function_environment

    task_root = unzip(lambda_package / "deployment.zip", tmp_path_factory.mktemp("task"))
    runtime_dir = runtime_folder(tmp_path_factory.mktemp("runtime") / "python")
    test_settings = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # Every AWS client of the function talks to moto server; pushes go to the gateway.
        "AWS_ENDPOINT_URL": moto_url,
        "WEBSOCKET_ENDPOINT": gateway.url,
        "FANOUT_THRESHOLD": FANOUT_THRESHOLD,
        "FANOUT_BATCH_SIZE": "2",
    }
    started: dict[str, LambdaFunction] = {}
    try:
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            properties = resource["Properties"]
            started[logical_id] = LambdaFunction(
                logical_id,
                handler=properties["Handler"],
                task_root=task_root,
                runtime_dir=runtime_dir,
                environment={
                    **function_environment(template, logical_id, stack_refs),
                    **test_settings,
                },
                region=REGION,
                timeout_s=int(properties.get("Timeout", 60)),
                memory_mb=int(properties.get("MemorySize", 128)),
            )
        yield started
    finally:
        for function in started.values():
            function.close()
