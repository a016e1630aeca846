"""Web Push: what 1,000 reminders cost by push, email and SMS; and what the push path adds to a
cold start, written on `cryptography` (as shipped) or on pywebpush (the library not chosen).

Cost per 1,000 reminders: an escalation step of each channel fired by the sweep on in-process
moto (DynamoDB, SES v2, SNS) and, for push, a push-service stand-in on 127.0.0.1 that decrypts
each message (tests/push_service.py). The DynamoDB calls of each firing are counted through
botocore hooks and priced as request units (a model: 1 read unit per GetItem or Query page,
1 write unit per single-item write, 2 per transactional item); the function's duration is the
measured CPU time of the firing plus an assumed network wait per call (stated below); the
provider's price is AWS's list price (SES $0.10 per 1,000 emails, SNS SMS to the US $0.00581 per
message before carrier fees; browser push services charge nothing). Prices as in
benchmarks/escalation.py.

Cold start: the packaged zip unpacked as Lambda unpacks it (benchmarks/coldstart.py's harness:
a fresh `-S` interpreter pinned to one core, only the Lambda runtime's packages beside the zip),
CPU time of `import app` alone (the baseline, measured in the same run), then the same plus the
first push's work (a VAPID signature and one `aes128gcm` encryption) through chalicelib.webpush,
then the same work through pywebpush (py-vapid, http-ece, and requests/aiohttp that pywebpush
imports), loaded from this interpreter's site-packages after the zip.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time
from copy import replace
from pathlib import Path

from benchmarks import harness
from benchmarks.escalation import EMAIL, LAMBDA_GB_SECOND, RRU, SMS, WRU
from benchmarks.harness import ApiCall, CallRecorder

REGION = "us-east-1"
# Assumed waits inside AWS, per call (the in-process measurement has none worth counting).
WAIT_MS = {"dynamodb": 5.0, "push": 100.0, "sesv2": 50.0, "sns": 50.0}
RUNS = 30

SUBSCRIPTION_SNIPPET = """\
import json, os
_sub = json.loads(os.environ["BENCH_SUBSCRIPTION"])
_key = os.environ["BENCH_VAPID"]
_payload = b'{"type":"reminder","id":"01JDQ8","title":"Important notice","body":"summary"}'
"""

APP_ONLY = """\
import app
_t1 = time.perf_counter()
import json
print(json.dumps({"init": _t1 - _t0, "invoke": 0.0}))
"""

CRYPTOGRAPHY_PATH = (
    """\
import app
_t1 = time.perf_counter()
"""
    + SUBSCRIPTION_SNIPPET
    + """\
from chalicelib.pushservice import VapidKey, encrypt
_header = VapidKey(_key).authorization("https://fcm.googleapis.com", "mailto:a@b.org", time.time())
_body = encrypt(_payload, _sub["keys"]["p256dh"], _sub["keys"]["auth"])
_t2 = time.perf_counter()
print(json.dumps({"init": _t1 - _t0, "invoke": _t2 - _t1}))
"""
)

PYWEBPUSH_PATH = (
    """\
import app
_t1 = time.perf_counter()
"""
    + SUBSCRIPTION_SNIPPET
    + """\
sys.path.append(os.environ["BENCH_SITE"])
from pywebpush import WebPusher
from py_vapid import Vapid02
_vapid = Vapid02.from_raw(_key.encode())
_header = _vapid.sign({"aud": "https://fcm.googleapis.com", "sub": "mailto:a@b.org"})
_body = WebPusher(_sub).encode(_payload, content_encoding="aes128gcm")
_t2 = time.perf_counter()
print(json.dumps({"init": _t1 - _t0, "invoke": _t2 - _t1}))
"""
)


# --- cost per 1,000 reminders ------------------------------------------------------------------


def _units(requests: list[ApiCall]) -> tuple[float, float]:
    reads = writes = 0.0
    for call in requests:
        operation, params = call.operation, call.params
        if operation in ("GetItem", "Query", "BatchGetItem"):
            reads += (
                1
                if operation != "BatchGetItem"
                else len(next(iter(params["RequestItems"].values()))["Keys"])
            )
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            writes += 1
        elif operation == "TransactWriteItems":
            writes += 2 * len(params["TransactItems"])
        elif operation == "BatchWriteItem":
            writes += sum(len(items) for items in params["RequestItems"].values())
    return reads, writes


def reminder_costs(runs: int) -> dict[str, dict[str, float]]:
    """Per channel: DynamoDB units, provider calls and CPU seconds of firing one step."""
    import boto3
    from moto import mock_aws

    from chalicelib.bodies import PushSubscriptionBody
    from chalicelib.models import Contact, NotificationContent
    from chalicelib.pushservice import PushClient, VapidKey
    from chalicelib.settings import Settings
    from chalicelib.wiring import Clients
    from tests.push_service import PushService

    results: dict[str, dict[str, float]] = {}
    with harness.environment(), mock_aws(), PushService() as pushes:
        session = boto3.session.Session()
        clock = harness.Clock()
        clients = replace(
            Clients.from_settings(Settings.from_env(), session=session),
            push=PushClient(allow_local_http=True),
        )
        service = harness.installed_service(
            clock=clock, clients=clients, vapid_private_key=VapidKey.generate().private_value
        )
        session.client("sesv2", region_name=REGION).create_email_identity(
            EmailIdentity=service.settings.email_from
        )
        recorder = CallRecorder()
        recorder.attach(
            service.clients.dynamodb,
            service.escalations.messenger._ses(),
            service.escalations.messenger._sns(),
        )
        for channel in ("push", "email", "sms"):
            cpu: list[float] = []
            reads: list[float] = []
            writes: list[float] = []
            for n in range(runs):
                user = f"{channel}-{n}"
                service.accounts.set_contact(
                    user, Contact(email="client@example.org", phone="+15555550100")
                )
                if channel == "push":
                    device = pushes.device(user).subscription()
                    service.webpush.subscribe(user, PushSubscriptionBody.model_validate(device))
                content = NotificationContent.model_validate(
                    {"message": "m", "escalation": [{"channel": channel, "after": "PT1S"}]}
                )
                notification = service.notifications.send(user, content).notification
                clock.advance(2)
                [step] = service.steps.pending(user, notification.id)
                recorder.take()
                started = time.process_time()
                outcome = service.escalations.fire(step)
                cpu.append(time.process_time() - started)
                requests = [call for call in recorder.take() if call.service == "dynamodb"]
                assert outcome == "escalated", (channel, outcome)
                r, w = _units(requests)
                reads.append(r)
                writes.append(w)
            dynamo_calls = len(requests)
            network_ms = (
                dynamo_calls * WAIT_MS["dynamodb"]
                + {
                    "push": WAIT_MS["push"],
                    "email": WAIT_MS["sesv2"],
                    "sms": WAIT_MS["sns"],
                }[channel]
            )
            results[channel] = {
                "cpu": statistics.median(cpu),
                "reads": statistics.median(reads),
                "writes": statistics.median(writes),
                "dynamo_calls": dynamo_calls,
                "network_ms": network_ms,
            }
        # Each user also got one push when the notice was stored (no live session).
        assert pushes.errors == [] and len(pushes.received) == 2 * runs
    return results


def print_costs(results: dict[str, dict[str, float]]) -> None:
    from benchmarks.aws_model import memory_mb

    memory = memory_mb("escalation_sweep")
    price = {"push": 0.0, "email": EMAIL, "sms": SMS}
    print(f"per 1,000 reminders, one escalation step each (sweep at {memory} MB, us-east-1):")
    print("| channel | DynamoDB calls | read / write units | Lambda ms | provider $ | total $ |")
    print("| --- | --- | --- | --- | --- | --- |")
    for channel, figures in results.items():
        seconds = figures["cpu"] + figures["network_ms"] / 1000
        lambda_cost = seconds * memory / 1024 * LAMBDA_GB_SECOND
        dynamo = figures["reads"] * RRU + figures["writes"] * WRU
        total = 1000 * (lambda_cost + dynamo + price[channel])
        print(
            f"| {channel} | {figures['dynamo_calls']:.0f} | {figures['reads']:.0f} / "
            f"{figures['writes']:.0f} | {seconds * 1000:.1f} | {1000 * price[channel]:.4f} | "
            f"{total:.4f} |"
        )
    print(
        f"  Lambda ms = measured CPU of one firing + assumed waits ({WAIT_MS['dynamodb']:.0f} ms "
        f"per DynamoDB call, {WAIT_MS['push']:.0f} ms to a push service, "
        f"{WAIT_MS['sesv2']:.0f} ms to SES or SNS)"
    )


# --- cold start ----------------------------------------------------------------------------------


def cold_starts(runs: int) -> dict[str, list[float]]:
    import json

    import pywebpush

    from benchmarks.coldstart import Variant, package_zip, run_child, runtime_directory, unpack
    from chalicelib.pushservice import VapidKey
    from tests.push_service import PushService

    site = str(Path(pywebpush.__file__).resolve().parent.parent)
    with PushService() as pushes:
        subscription = json.dumps(pushes.device("bench").subscription())
    scratch = Path(tempfile.mkdtemp(prefix="webpush-coldstart-"))
    samples: dict[str, list[float]] = {"app": [], "cryptography": [], "pywebpush": []}
    try:
        task = unpack(package_zip(), scratch / "task", bytecode=True)
        runtime = runtime_directory(scratch / "runtime")
        base = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR"}}
        env = {
            **base,
            **harness.ENVIRONMENT,
            "STAGE": "prod",
            "PYTHONDONTWRITEBYTECODE": "1",
            "BENCH_SUBSCRIPTION": subscription,
            "BENCH_VAPID": VapidKey.generate().private_value,
            "BENCH_SITE": site,
        }
        variants = [
            Variant("app", "import app", APP_ONLY, task, env),
            Variant(
                "cryptography", "import app + 1st push (cryptography)", CRYPTOGRAPHY_PATH, task, env
            ),
            Variant("pywebpush", "import app + 1st push (pywebpush)", PYWEBPUSH_PATH, task, env),
        ]
        for round_ in range(runs + (1 if runs > 1 else 0)):
            for variant in variants:
                figures = run_child(variant, runtime)
                if runs == 1 or round_ > 0:
                    samples[variant.name].append(figures["cpu"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return samples


def print_cold_starts(samples: dict[str, list[float]]) -> None:
    from benchmarks.aws_model import memory_mb

    memory = memory_mb("api_handler")
    share = min(1.0, memory / 1769)
    base = statistics.median(samples["app"])
    print(f"cold start CPU (median of {len(samples['app'])}), at {memory} MB = CPU / {share:.2f}:")
    for name, values in samples.items():
        cpu = statistics.median(values)
        print(
            f"  {name:<13} cpu {cpu * 1000:7.1f} ms  at {memory} MB {cpu / share * 1000:7.1f} ms"
            f"  ratio {name} / app {cpu / base:.2f}  (+{(cpu - base) / share * 1000:.0f} ms)"
        )


def main(tiny: bool = False) -> None:
    print("== Web Push: cost per 1,000 reminders, and the push path's cold start ==")
    with contextlib.redirect_stderr(io.StringIO()):
        costs = reminder_costs(2 if tiny else RUNS)
    print_costs(costs)
    print_cold_starts(cold_starts(1 if tiny else 7))
    print()


if __name__ == "__main__":
    main()
