"""Events out: events per notice, entry → webhook latency on the local stack, and what events
and the rest of the stack cost, idle and per 1,000 clients a month.

1. **Counted calls, modelled cost** (the method of benchmarks/aws_model.py, whose recorder,
   capacity counting, latencies and prices this reuses): on in-process moto, app.py's handlers
   run one client's month in miniature: a session (`$connect`, `register`, `$disconnect`) and
   one notice's lifecycle (REST send pushed to the live session, then `ack`, `seen`,
   `mark_read`, `confirm` over the socket); then the receipts stream's records go to
   `events_publisher` as its event source mapping hands them over, one record a batch (a quiet
   stack) and all of them in one batch (a busy one). Every AWS call is recorded with its
   DynamoDB capacity; a handler's time is its modelled critical path (PutEvents 20 ms).
2. **Measured locally**: a local stack with `WEBHOOK_URL` at a receiver on 127.0.0.1, one live
   WebSocket session; for each notice sent, the baseline is send → the session's push frame,
   the figure is each receipt entry's `at` → its event's arrival at the webhook.
3. **Prices** (us-east-1, list prices, free tiers left out; check before quoting): those of
   aws_model.py, and EventBridge custom events $1.00 per million (64 KB chunks), API destination
   invocations $0.20 per million, DynamoDB Streams reads by Lambda free, API Gateway WebSocket
   connection minutes $0.25 per million, X-Ray $5.00 per million traces recorded (tracing is on
   for every function; every invocation is counted as traced, which is what Lambda's sampling
   does below one request a second), CloudWatch Logs ingestion $0.50 per GB (about 1 KB per
   invocation assumed), dashboard $3.00 a month, standard alarm $0.10 a month, SQS requests
   $0.40 per million (Lambda's SQS event source long-polls the idle fan-out queue with 5
   pollers, 20 s polls: 3 requests a minute each), point-in-time recovery $0.20 per GB-month (an
   idle stack's tables hold next to nothing), Secrets Manager $0.40 a month (the webhook
   connection's API key, only with a webhook), SES $0.10 per 1,000 emails.

Usage stated for "per 1,000 clients": each client opens 30 sessions a month, 20 minutes each,
and receives 20 notices, each stored, pushed, acked, seen and read; one in four also requires
and gets confirmation; one in ten escalates by email.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmarks.aws_model import LATENCY_MS, PRICE, ROOT, Recorder, Stage, gb_seconds
from benchmarks.harness import REGION, Session, environment, installed_service, quiet_stdout, token

LATENCY_MS.setdefault("PutEvents", 20.0)
EVENTS_PRICE = {
    "event": 1.00e-6,
    "api_destination": 0.20e-6,
    "connection_minute": 0.25e-6,
    "trace": 5.00e-6,
    "log_gb": 0.50,
    "email": 0.10e-3,
}
LOG_BYTES_PER_INVOCATION = 1024
MONTH_MINUTES = 30 * 24 * 60
SESSIONS_PER_CLIENT = 30
SESSION_MINUTES = 20
NOTICES_PER_CLIENT = 20
CONFIRMED_SHARE = 0.25
ESCALATED_SHARE = 0.10
BUS = "bench-notices"
POOLS = {"push": 16, "lookup": 8, "ThreadPoolExecutor": 16}


@dataclass
class Lifecycle:
    session: dict[str, Stage]  # connect, register, disconnect
    steps: dict[str, Stage]  # send, ack, seen, read, confirm
    ws_frames: dict[str, int]  # frames in and out of the socket per step
    entries: list[str]  # the receipt's entry types, in order
    publish_each: list[Stage]  # one invocation per record
    publish_all: Stage  # one invocation for the lifecycle's records
    sweep_idle: Stage


def _invocation_overhead() -> float:
    """Lambda's request price, an X-Ray trace and ~1 KB of logs: what every invocation costs
    beyond its duration."""
    return (
        PRICE["lambda_request"]
        + EVENTS_PRICE["trace"]
        + LOG_BYTES_PER_INVOCATION / 1024**3 * EVENTS_PRICE["log_gb"]
    )


def invocation_cost(stage: Stage, function: str) -> float:
    ms = max(stage.time_ms(POOLS), 1.0)
    return (
        _invocation_overhead()
        + gb_seconds(ms, function) * PRICE["gb_second"]
        + stage.wru * PRICE["wru"]
        + stage.rru * PRICE["rru"]
    )


def record_lifecycle() -> Lifecycle:
    """Run a session and one notice's lifecycle through app.py's handlers on moto."""
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    import app as lambda_app
    from devstack.context import LambdaContext
    from devstack.messaging import scheduled_event
    from devstack.streams import lambda_record, table_stream

    with environment(), mock_aws():
        boto3.client("events", region_name=REGION).create_event_bus(Name=BUS)
        service = installed_service(event_bus_name=BUS)
        recorder = Recorder()
        recorder.attach(service.clients.dynamodb)
        recorder.attach(service.sender.client)
        recorder.attach(service.clients.events())
        session = Session()
        sessions: dict[str, Stage] = {}
        steps: dict[str, Stage] = {}
        frames: dict[str, int] = {}
        with recorder.recording("connect") as sessions["connect"]:
            session.connect(token("client"))
        with recorder.recording("register") as sessions["register"]:
            session.send({"action": "register"})
        admin = {
            "Authorization": f"Bearer {token('staff', roles=('admin',))}",
            "Content-Type": "application/json",
        }
        body = {"user_id": "client", "message": "m", "requires_confirmation": True}
        with (
            Client(lambda_app.app, stage_name="dev") as client,
            recorder.recording("send") as steps["send"],
        ):
            reply = client.http.post("/api/notifications", body=json.dumps(body), headers=admin)
        notice_id = json.loads(reply.body)["notification"]["id"]
        frames["send"] = 1
        for name, frame in (
            ("ack", {"action": "ack", "ids": [notice_id]}),
            ("seen", {"action": "seen", "ids": [notice_id]}),
            ("read", {"action": "mark_read", "ids": [notice_id]}),
            ("confirm", {"action": "confirm", "id": notice_id}),
        ):
            with recorder.recording(name) as steps[name]:
                session.send(frame)
            frames[name] = 1 + steps[name].counts["PostToConnection"]
        with recorder.recording("disconnect") as sessions["disconnect"]:
            session.disconnect()
        receipt = service.receipts.get(notice_id)
        assert receipt is not None
        entries = [entry.type for entry in receipt.entries]

        streams = boto3.client(
            "dynamodbstreams",
            region_name=REGION,
            endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
        )
        arn, found = table_stream(
            boto3.client("dynamodb", region_name=REGION), streams, service.settings.receipts_table
        )
        records = [lambda_record(record, arn) for record in found]
        if len(records) != len(entries):
            raise RuntimeError(f"{len(records)} stream records for {len(entries)} entries")

        def publish(batch: list[dict[str, Any]], name: str) -> Stage:
            service.publisher._headers.clear()  # each invocation a cold cache: the worst case
            context = LambdaContext(function_name="events_publisher")
            with recorder.recording(name) as stage:
                answer = lambda_app.events_publisher({"Records": batch}, context)
            if answer != {"batchItemFailures": []}:
                raise RuntimeError(f"publisher failed: {answer}")
            return stage

        publish_each = [publish([record], "publish one") for record in records]
        publish_all = publish(records, "publish all")
        with recorder.recording("sweep") as sweep:
            lambda_app.escalation_sweep(
                scheduled_event(REGION, "escalation_sweep"),
                LambdaContext(function_name="escalation_sweep"),
            )
        return Lifecycle(sessions, steps, frames, entries, publish_each, publish_all, sweep)


# --- measured on the local stack ----------------------------------------------------------------


def _epoch(at: str) -> float:
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def measure_local(notices: int) -> tuple[list[float], list[float], dict[str, int]]:
    """(push ms per send, entry → webhook ms per event, events per notice by detail-type)."""
    from websockets.sync.client import connect

    from devstack.stack import LocalStack
    from tests.e2e.support import http
    from tests.webhook import Receiver

    pushes: list[float] = []
    with Receiver() as receiver, LocalStack(env={"WEBHOOK_URL": receiver.url}) as stack:
        admin = stack.token("staff", admin=True)
        with connect(f"{stack.ws_url}/?token={stack.token('client')}", open_timeout=30) as ws:
            ws.send(json.dumps({"action": "register"}))
            while json.loads(ws.recv(timeout=30)).get("event") != "registered":
                pass
            sent: list[str] = []
            for n in range(notices):
                started = time.time()
                reply = http(
                    "POST",
                    f"{stack.rest_url}/api/notifications",
                    {"user_id": "client", "message": f"m{n}"},
                    token=admin,
                )
                while json.loads(ws.recv(timeout=30)).get("event") != "notification":
                    pass
                pushes.append((time.time() - started) * 1000)
                notice_id = reply.body["notification"]["id"]
                sent.append(notice_id)
                for frame in (
                    {"action": "ack", "ids": [notice_id]},
                    {"action": "seen", "ids": [notice_id]},
                    {"action": "mark_read", "ids": [notice_id]},
                ):
                    ws.send(json.dumps(frame))
                    ws.recv(timeout=30)
                time.sleep(0.2)  # a client's pace, not a flood
            wanted = notices * 5  # stored, pushed, delivered, seen, read
            deadline = time.monotonic() + 60
            while len(receiver.arrivals) < wanted and time.monotonic() < deadline:
                time.sleep(0.05)
    latencies = [
        (arrived - _epoch(body["detail"]["entry"]["at"])) * 1000
        for arrived, body in receiver.arrivals
    ]
    per_type: dict[str, int] = {}
    for _, body in receiver.arrivals:
        per_type[body["detail-type"]] = per_type.get(body["detail-type"], 0) + 1
    return pushes, latencies, per_type


def _quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered):,.0f} ms, p95 {p95:,.0f} ms, max {ordered[-1]:,.0f} ms"


# --- costs ---------------------------------------------------------------------------------------


def _alarms() -> int:
    resources = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]
    return sum(
        1
        for resource in resources.values()
        if resource.get("Type") == "AWS::CloudWatch::Alarm" and "Condition" not in resource
    )


def idle_month(life: Lifecycle) -> list[tuple[str, float]]:
    sweeps = MONTH_MINUTES
    sqs_polls = 5 * 3 * MONTH_MINUTES
    return [
        ("dashboard", 3.00),
        (f"alarms ({_alarms()})", _alarms() * 0.10),
        (
            f"escalation sweep every minute ({sweeps:,} runs, X-Ray and logs included)",
            sweeps * invocation_cost(life.sweep_idle, "escalation_sweep"),
        ),
        ("fan-out queue polled by Lambda (idle)", sqs_polls * PRICE["sqs_request"]),
        ("receipts stream polled by Lambda", 0.0),
        ("point-in-time recovery of 3 near-empty tables", 0.0),
        ("EventBridge bus, rule (no events)", 0.0),
    ]


def lifecycle_cost(life: Lifecycle, *, confirmed: bool) -> dict[str, float]:
    """One notice's lifecycle (stored … read, and confirmed when `confirmed`)."""
    names = ["send", "ack", "seen", "read"] + (["confirm"] if confirmed else [])
    functions = {"send": "api_handler"}
    rest = sum(invocation_cost(life.steps[n], functions.get(n, "websocket_message")) for n in names)
    rest += PRICE["rest_request"]
    frames = sum(life.ws_frames[n] for n in names) + 1  # + the push itself
    rest += frames * PRICE["ws_message"]
    events = len(names) + (1 if "pushed" in life.entries else 0)
    per_event_quiet = statistics.mean(
        invocation_cost(stage, "events_publisher") for stage in life.publish_each
    )
    per_event_busy = invocation_cost(life.publish_all, "events_publisher") / len(life.entries)
    return {
        "events": events,
        "rest": rest,
        "eventbridge": events * EVENTS_PRICE["event"],
        "webhook": events * EVENTS_PRICE["api_destination"],
        "publisher_quiet": events * per_event_quiet,
        "publisher_busy": events * per_event_busy,
    }


def session_cost(life: Lifecycle) -> float:
    connect = invocation_cost(life.session["connect"], "websocket_connect")
    register = invocation_cost(life.session["register"], "websocket_message")
    disconnect = invocation_cost(life.session["disconnect"], "websocket_disconnect")
    frames = 2 * PRICE["ws_message"]  # register and its reply
    minutes = SESSION_MINUTES * EVENTS_PRICE["connection_minute"]
    return connect + register + disconnect + frames + minutes


def main(tiny: bool = False) -> None:
    with quiet_stdout():
        life = record_lifecycle()
    print("\n== Events out (see benchmarks/events.py)")
    print(f"   receipt of one notice's lifecycle: {', '.join(life.entries)}")
    print(f"   events per notification lifecycle: {len(life.entries)} (one per receipt entry)")
    quiet = life.publish_each
    print(
        f"   publisher, one record a batch: {len(quiet)} invocations, "
        f"{sum(s.counts['PutEvents'] for s in quiet)} PutEvents, "
        f"{sum(s.counts['BatchGetItem'] for s in quiet)} BatchGetItem (header reads)"
    )
    busy = life.publish_all
    print(
        f"   publisher, the lifecycle in one batch: 1 invocation, {busy.counts['PutEvents']} "
        f"PutEvents, {busy.counts['BatchGetItem']} BatchGetItem"
    )

    notices = 2 if tiny else 30
    pushes, latencies, per_type = measure_local(notices)
    print(f"\n   local stack, {notices} notices sent, acked, seen and read (one live session):")
    print(f"   baseline, send -> push frame:     {_quantiles(pushes)}")
    print(f"   receipt entry -> webhook (local): {_quantiles(latencies)}")
    print(f"   events received by detail-type: {json.dumps(per_type, sort_keys=True)}")

    plain = lifecycle_cost(life, confirmed=False)
    confirmed = lifecycle_cost(life, confirmed=True)
    print("\n   cost per million notices (each stored, pushed, acked, seen, read; modelled):")
    print(f"   {'part':<46}{'per million notices':>22}")
    rows = [
        ("the rest: REST send, 3 WebSocket actions, DynamoDB", plain["rest"]),
        (f"EventBridge events ({plain['events']:.0f} per notice)", plain["eventbridge"]),
        ("publisher Lambda, one record a batch (quiet)", plain["publisher_quiet"]),
        ("publisher Lambda, 100-record batches (busy)", plain["publisher_busy"]),
        ("webhook (API destination invocations)", plain["webhook"]),
    ]
    for label, value in rows:
        print(f"   {label:<46}{value * 1e6:>20,.2f} $")
    events_total = plain["eventbridge"] + plain["publisher_quiet"] + plain["webhook"]
    print(
        f"   events out add {events_total / plain['rest'] * 100:.0f}% to the rest "
        f"(quiet publisher, with the webhook)"
    )

    idle = idle_month(life)
    print("\n   fixed monthly cost of an idle stack:")
    for label, value in idle:
        print(f"   {label:<72}{value:>8.2f} $")
    idle_total = sum(value for _, value in idle)
    print(f"   {'total':<72}{idle_total:>8.2f} $  (+0.40 $ with a webhook: its API key secret)")

    per_client_notices = (
        (1 - CONFIRMED_SHARE) * (plain["rest"] + plain["eventbridge"] + plain["publisher_quiet"])
        + CONFIRMED_SHARE
        * (confirmed["rest"] + confirmed["eventbridge"] + confirmed["publisher_quiet"])
    ) * NOTICES_PER_CLIENT
    webhook = (
        (1 - CONFIRMED_SHARE) * plain["webhook"] + CONFIRMED_SHARE * confirmed["webhook"]
    ) * NOTICES_PER_CLIENT
    sessions = SESSIONS_PER_CLIENT * session_cost(life)
    emails = ESCALATED_SHARE * NOTICES_PER_CLIENT * EVENTS_PRICE["email"]
    print(
        f"\n   per 1,000 clients a month ({SESSIONS_PER_CLIENT} sessions of {SESSION_MINUTES} min, "
        f"{NOTICES_PER_CLIENT} notices each, {CONFIRMED_SHARE:.0%} confirmed, "
        f"{ESCALATED_SHARE:.0%} escalated by email):"
    )
    for label, value in (
        ("sessions (connect, register, disconnect, connection minutes)", sessions),
        ("notices (send, actions, DynamoDB, events, publisher)", per_client_notices),
        ("webhook deliveries", webhook),
        ("escalation emails (SES)", emails),
    ):
        print(f"   {label:<72}{value * 1000:>8.2f} $")
    total = (sessions + per_client_notices + webhook + emails) * 1000
    print(f"   {'total per 1,000 clients':<72}{total:>8.2f} $")
