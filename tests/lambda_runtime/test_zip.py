"""The deployment zip as Lambda runs it: `chalice package --stage prod`, unzipped, every
function of the generated template in a clean python3.13 process (only the zip, boto3 and
awslambdaric importable; awslambdaric's own context object), against moto server and
devstack's WebSocket gateway and @connections endpoint, with real sockets.

One scenario, in order: connect and register over a socket, REST send → push, a connection
gone without `$disconnect` pruned on its 410, a broadcast above the fan-out threshold
through SQS with a poison message in the batch, a notice escalating by reminder, email (SES)
and SMS (SNS) when the scheduled sweep runs, close → `$disconnect`.
"""

from __future__ import annotations

import copy
import json
import sysconfig
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from chalice.local import RouteMatcher
from websockets.sync.client import ClientConnection, connect

import app as lambda_app
from devstack import events
from devstack.fanout import sqs_event
from devstack.issuer import DevIssuer
from devstack.messaging import scheduled_event
from devstack.rest import _DecodingEventConverter
from devstack.tokens import mint_token
from tests.conftest import REGION
from tests.lambda_runtime.conftest import API_ID, SECRET, Provider
from tests.lambda_runtime.support import GatewayThread, LambdaFunction
from tests.waiting import eventually

ROUTE_TO_FUNCTION = {"$connect": "Connect", "$disconnect": "Disconnect", "$default": "Message"}


def token(user_id: str, *, admin: bool = False) -> str:
    return mint_token(user_id, roles=("admin",) if admin else (), secret=SECRET)


def websocket_handlers(
    template: dict[str, Any], functions: dict[str, LambdaFunction]
) -> dict[str, Any]:
    """The function behind each route key, read from the template's routes and integrations."""
    resources = template["Resources"]
    handlers = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        route_key = resource["Properties"]["RouteKey"]
        target = json.dumps(resource["Properties"]["Target"])
        [integration] = [name for name in resources if json.dumps({"Ref": name}) in target]
        uri = json.dumps(resources[integration]["Properties"]["IntegrationUri"])
        [function] = [name for name in functions if json.dumps({"Ref": name}) in uri]
        handlers.setdefault(route_key, functions[function])
    assert set(ROUTE_TO_FUNCTION) <= set(handlers), handlers
    return {key: lambda event, _context, f=handlers[key]: f.invoke(event) for key in handlers}


class Rest:
    """API Gateway's REST proxy events (chalice.local's converter), to the APIHandler."""

    def __init__(self, function: LambdaFunction) -> None:
        self._function = function
        self._converter = _DecodingEventConverter(
            RouteMatcher(list(lambda_app.app.routes)),
            lambda_app.app.api.binary_types,
        )

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str = "staff",
        admin: bool = True,
        bearer: str | None = None,
    ) -> tuple[int, Any]:
        headers = {
            "authorization": f"Bearer {bearer or token(user, admin=admin)}",
            "content-type": "application/json",
            "host": "zipapi.execute-api.us-east-1.amazonaws.com",
        }
        raw = json.dumps(body).encode() if body is not None else None
        event = self._converter.create_lambda_event(method, path, headers, raw)
        if isinstance(event.get("body"), bytes):  # API Gateway sends text
            event["body"] = event["body"].decode()
        response = self._function.invoke(event)
        payload = response.get("body")
        return response["statusCode"], json.loads(payload) if payload else None


def next_event(socket: ClientConnection, name: str) -> dict[str, Any]:
    """The next frame with `event == name`, skipping others; fails after 10 s without one."""
    deadline = time.monotonic() + 10
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame.get("event") == name:
            return frame
        assert frame.get("event") != "error", frame


def open_registered(
    sockets: ExitStack, gateway: GatewayThread, user_id: str, *, bearer: str | None = None
) -> tuple[ClientConnection, str]:
    url = f"{gateway.ws_url}/?token={bearer or token(user_id)}"
    socket = sockets.enter_context(connect(url, open_timeout=20))
    socket.send(json.dumps({"action": "register", "request_id": f"reg-{user_id}"}))
    registered = next_event(socket, "registered")
    assert registered["request_id"] == f"reg-{user_id}"
    return socket, registered["connection_id"]


def ghost_registration(functions: dict[str, LambdaFunction], user_id: str) -> str:
    """A connection whose socket went away without a `$disconnect` reaching the app: $connect
    and register run, but the gateway never knew it, so every push to it answers 410."""
    context = events.ConnectionContext(
        connection_id=events.new_connection_id(),
        connected_at=events.now_ms(),
        source_ip="127.0.0.1",
        user_agent="ghost",
        domain_name=f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        stage="prod",
    )
    connect_event = events.connect_event(
        context, header_pairs=[("Host", context.domain_name)], query_pairs=[]
    )
    assert functions["WebsocketConnect"].invoke(connect_event)["statusCode"] == 200
    frame = json.dumps({"action": "register", "token": token(user_id)})
    functions["WebsocketMessage"].invoke(
        events.message_event(context, route_key="register", body=frame)
    )
    return context.connection_id


def stats(rest: Rest) -> dict[str, int]:
    status, body = rest("GET", "/api/websocket/stats")
    assert status == 200, body
    return body


def test_every_function_of_the_zip_runs_as_lambda_runs_it(
    template: dict[str, Any],
    functions: dict[str, LambdaFunction],
    gateway: GatewayThread,
    stack_refs: dict[str, str],
    moto_url: str,
) -> None:
    # The template's functions (tests/test_infra.py names them) all run here, and the events
    # publisher in test_publisher.py.
    gateway.start(websocket_handlers(template, functions))
    rest = Rest(functions["APIHandler"])
    with ExitStack() as sockets:
        # Connect and register over a real socket; a REST send reaches it as a push.
        alice, _ = open_registered(sockets, gateway, "alice")
        status, body = rest("POST", "/api/notifications", {"user_id": "alice", "message": "Hi"})
        assert (status, body["delivered_to"]) == (201, 1), body
        pushed = next_event(alice, "notification")
        assert pushed["notification"]["id"] == body["notification"]["id"]

        # A connection gone without $disconnect: its 410 prunes it, and then it is left alone.
        pruned_before = stats(rest)["stale_pruned"]
        ghost = ghost_registration(functions, "bob")
        status, body = rest("POST", f"/api/connections/{ghost}/messages", {"data": {"x": 1}})
        assert status == 410, body
        status, body = rest("POST", "/api/notifications", {"user_id": "bob", "message": "Later"})
        assert (status, body["delivered_to"]) == (201, 0), body
        assert stats(rest)["stale_pruned"] > pruned_before

        # A broadcast above the threshold goes through SQS; one poison message in the batch.
        live = [open_registered(sockets, gateway, user) for user in ("carol", "dan", "erin")]
        status, body = rest("POST", "/api/notifications/broadcast", {"message": "Office closed"})
        assert status == 202 and body["recipients"] >= 5, body
        sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
        queue = stack_refs["FanoutQueue"]
        poison_id = sqs.send_message(QueueUrl=queue, MessageBody="{not a job")["MessageId"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        # The worker walks the directory page by page (a page job enqueues the next page and
        # its recipients' batches); as the event source mapping does, each batch's successes
        # are deleted and its failures stay (invisible for the visibility timeout).
        jobs, poisoned = 0, []
        while batch := sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            result = functions["FanoutWorker"].invoke(sqs_event(batch, queue_arn, REGION))
            failed = [failure["itemIdentifier"] for failure in result["batchItemFailures"]]
            if any(message["MessageId"] == poison_id for message in batch):
                poisoned.append(len(batch))
                assert failed == [poison_id], result
            else:
                assert failed == [], result
            for message in batch:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                    jobs += 1
        assert len(poisoned) == 1 and poisoned[0] >= 2  # the poison beside a real job
        assert jobs >= 4  # the page job, then 5+ recipients in batches of 2
        for socket in [alice] + [socket for socket, _ in live]:
            assert next_event(socket, "notification")["notification"]["message"] == "Office closed"

        # Escalation on the prod stage (steps from PT1M): a step a minute before a deadline a
        # minute and a bit away is due in seconds. The scheduled sweep fires each channel once.
        contact = {"email": "alice@example.com", "phone": "+15555550100"}
        status, body = rest("PUT", "/api/users/alice/contact", contact)
        assert status == 200, body
        deadline = datetime.now(UTC) + timedelta(seconds=63)
        steps = [
            {"channel": channel, "before_deadline": "PT1M"}
            for channel in ("repush", "email", "sms")
        ]
        notice = {
            "user_id": "alice",
            "message": {"en": "Bring your passport", "es": "Traiga su pasaporte"},
            "requires_confirmation": True,
            "deadline": deadline.isoformat(),
            "escalation": steps,
        }
        status, body = rest("POST", "/api/notifications", notice)
        assert status == 201, body
        notice_id = body["notification"]["id"]
        outcomes: dict[str, int] = {}

        def sweep_fired_every_step() -> bool:
            event = scheduled_event(REGION, "legal-aid-notifications-prod-escalation_sweep")
            report = functions["EscalationSweep"].invoke(event)
            for outcome, count in report["outcomes"].items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
            return outcomes.get("escalated", 0) + outcomes.get("reminded", 0) >= 3

        eventually(sweep_fired_every_step, "the sweep to fire the steps", timeout=30, interval=0.5)
        assert outcomes == {"reminded": 1, "escalated": 2}, outcomes
        assert next_event(alice, "reminder")["notification"]["id"] == notice_id
        status, receipt = rest("GET", f"/api/notifications/{notice_id}/receipt")
        assert status == 200, receipt
        escalated = {
            entry["channel"]: entry["detail"]["provider_id"]
            for entry in receipt["entries"]
            if entry["type"] == "escalated"
        }
        assert set(escalated) == {"email", "sms"} and all(escalated.values()), receipt
        ses = boto3.client("ses", endpoint_url=moto_url, region_name=REGION)
        assert ses.get_send_quota()["SentLast24Hours"] == 1  # once, whatever sweeps followed

        # Closing a socket runs $disconnect: nothing is pushed to it any more.
        closed_before = stats(rest)["connections_closed"]
        alice.close()
        eventually(lambda: stats(rest)["connections_closed"] > closed_before, "$disconnect")
        status, body = rest("POST", "/api/notifications", {"user_id": "alice", "message": "Bye"})
        assert (status, body["delivered_to"]) == (201, 0), body


def test_functions_import_nothing_beyond_the_zip_and_the_runtime(
    functions: dict[str, LambdaFunction],
) -> None:
    # A REST send parses its body with a model, whichever of this module's tests ran first.
    status, body = Rest(functions["APIHandler"])(
        "POST", "/api/notifications", {"user_id": "ivy", "message": "Imports"}
    )
    assert status == 201, body
    stdlib = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")})
    parsing = []
    for function in functions.values():
        files = function.module_files()
        for bootstrap in ("__main__", "__mp_main__"):  # the stand-in for awslambdaric's loop
            files.pop(bootstrap, None)
        task, runtime = f"{function.task_root}/", f"{function.runtime_dir}/"
        assert files["app"].startswith(task), function.logical_id
        # A function imports pydantic with its first model (a $connect never does).
        if "pydantic_core" in files:
            assert files["pydantic_core"].startswith(task), function.logical_id
            parsing.append(function.logical_id)
        assert files["botocore"].startswith(runtime), function.logical_id
        outside = {
            name: path
            for name, path in files.items()
            if not path.startswith((task, runtime, *stdlib))
        }
        assert outside == {}, function.logical_id
    assert "APIHandler" in parsing


def test_the_zip_verifies_rs256_tokens_from_an_oidc_provider_over_https(
    template: dict[str, Any],
    rs256_functions: dict[str, LambdaFunction],
    rs256_gateway: GatewayThread,
    provider: Provider,
) -> None:
    """Cognito's path (docs/rest.md): keys fetched over https (the runtime's urllib trusting the
    CA named by SSL_CERT_FILE), verified with the zip's own cryptography; iss, aud checked,
    `cognito:groups` holding the admin group."""
    issuer = provider.issuer
    rs256_gateway.start(websocket_handlers(template, rs256_functions))
    rest = Rest(rs256_functions["APIHandler"])
    with ExitStack() as sockets:
        socket, _ = open_registered(
            sockets, rs256_gateway, "rita", bearer=issuer.mint("rita", groups=("clients",))
        )
        staff = issuer.mint("staff", admin=True)
        notice = {"user_id": "rita", "message": "Signed by the provider"}
        status, body = rest("POST", "/api/notifications", notice, bearer=staff)
        assert (status, body["delivered_to"]) == (201, 1), body
        sent_id = body["notification"]["id"]
        assert next_event(socket, "notification")["notification"]["id"] == sent_id
        status, listed = rest("GET", "/api/notifications", bearer=issuer.mint("rita"))
        assert status == 200 and [item["id"] for item in listed["items"]] == [sent_id], listed

        # Not an admin without the group; a token for another audience or from another key
        # is refused, as is one the provider never signed.
        status, _ = rest("POST", "/api/notifications", notice, bearer=issuer.mint("rita"))
        assert status == 403
        stranger = DevIssuer(issuer.issuer)
        for bearer in (
            stranger.mint("staff", admin=True),
            _with_audience(issuer, "someone-else"),
        ):
            status, _ = rest("GET", "/api/notifications", bearer=bearer)
            assert status == 401


def _with_audience(issuer: DevIssuer, audience: str) -> str:
    """A token the provider's own key signed, for another audience."""
    other = copy.copy(issuer)
    other.audience = audience
    return other.mint("staff", admin=True)
