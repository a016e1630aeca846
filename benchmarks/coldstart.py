"""Cold start the way Lambda runs it: the packaged zip, at the configured memory's CPU share,
against `import boto3` + one client under the same conditions.

What runs: `make package`'s zip (infra/package.py: with its precompiled bytecode) unpacked into
a task directory, as Lambda unpacks it into /var/task. Each child is a fresh interpreter
started with `-S` (no site-packages: nothing from the dev venv leaks in) whose `sys.path` is the
task directory, then a "runtime" directory holding only what the Lambda Python runtime ships
(boto3, botocore and their dependencies, already compiled, as in the runtime image). Its
environment holds the variables the packaged template gives the functions (those with a
literal value), beside the run's tables and endpoints. Bytecode
is never written (Lambda's /var/task is read-only). The child imports `app` (Lambda's init
phase: every function of the zip imports the whole app) and hands one function its first event:

    WebsocketConnect   a `$connect` with a token (verification, a PutItem and an UpdateItem)
    WebsocketMessage   a `register` on that connection (its reply posted to @connections)
    APIHandler         `GET /api/notifications` with a token (API Gateway's REST proxy event)
    FanoutWorker       a batch holding a broadcast's first job, as the app enqueued it
    EscalationSweep    the scheduled event, nothing due

over HTTP to a moto server (DynamoDB, SQS) and a recorder of @connections posts on 127.0.0.1.
The baseline child, under the same conditions, imports boto3 and creates one DynamoDB client.

CPU share: Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so
at 1024 MB a single-threaded cold start gets ~58% of a core. Each child is pinned to one core
(`sched_setaffinity`, what `taskset -c` does) and its CPU time (user + sys, all threads, from
`wait4` rusage) and wall time are measured. A cold start is CPU-bound (imports, bytecode
loading, the first request's serialization and signing), so the estimate at the configured
memory stretches the measured CPU time by 1/share:

    at_memory = cpu / share          (the ratio is then the ratio of CPU times)
    wall_based = (wall - cpu) + cpu / share

`at_memory` leaves out network waits (two DynamoDB round trips for the app's first $connect,
a few ms each in AWS; none for the baseline). `wall_based` keeps the measured waits, but on a
shared machine they include waiting for a core, so it is printed as a second opinion only. A
CPU quota cannot be set without root (cgroups), and measured CPU time is far less disturbed by
other load than throttled wall time would be.

`to event end` is a second opinion on what the CPU time counts: a child's rusage includes the
interpreter's exit (finalizing every module, a last collection over every object), which Lambda
never runs (it freezes or ends the sandbox), and which grows with what a process loaded. Each
child reports its CPU time at the end of its first event (`time.process_time()`), so
`to event end = cpu_init + cpu_invoke`: interpreter start, init and the first event, no exit.

`burst` is a second opinion on the init phase: on-demand functions run init (interpreter
start and imports, up to 10 s) on a full, unthrottled vCPU and only the invocation at the
memory's share ("Effectively running Java on Serverless: utilize the initialization phase",
AWS Serverless Land; the Lambda Web Adapter's async-init notes say the same); provisioned
concurrency gets no burst. Each child reports its CPU time at the end of init
(`time.process_time()`), so `burst = cpu_init + (cpu - cpu_init) / share`. The goal is judged
on `at_memory` (which holds for every concurrency mode) and on `to event end` both, the larger
ratio of the two: what a process saves at an exit Lambda never runs must not count as a
faster cold start.

Variants: the baseline; the baseline plus its first request (a GetItem: what any function
that does work also pays, for context); botocore alone + one client (the SDK as the app's
clients are made, without boto3) and that plus pydantic with one deferred model validated on
the first call (what any function parsing with pydantic pays before its own code: the two
parts of the floor the app keeps); each function of the zip as built; `$connect` from the
zip without its .pyc files (what the bytecode saves); and `$connect` verifying an RS256 token
through a JWKS served on 127.0.0.1 (the Cognito path, which imports PyJWT and cryptography;
HS256 imports neither).

`main(tiny=True)` (or `python -m benchmarks.coldstart --tiny`) runs every variant once, without
warm-up, for CI; it reuses the package in $BENCH_PACKAGE (the tests pass theirs), else
build/deployment.zip when it is newer than the sources.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.calls import CONNECTIONS_TABLE, ENVIRONMENT, NOTIFICATIONS_TABLE, REGION, SECRET

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
FULL_CPU_MB = 1769  # Lambda: one vCPU at 1,769 MB
GOAL = 1.2
# What the Lambda Python runtime provides beside the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "jmespath", "urllib3", "six")
SOURCES = ("app.py", "chalicelib", "requirements.txt", "infra", ".chalice/config.json")
ISSUER = "https://issuer.example.com/pool"
AUDIENCE = "bench-client"

CHILD_PRELUDE = """\
import time
_t0 = time.perf_counter()
import sys
sys.path[:0] = [{task!r}, {runtime!r}]
"""

APP_CHILD = """\
import app
_t1, _c1 = time.perf_counter(), time.process_time()
import json, os
from awslambda_context import context
_handler = getattr(app, os.environ["BENCH_HANDLER"])
_result = _handler(json.loads(os.environ["BENCH_EVENT"]), context())
_t2, _c2 = time.perf_counter(), time.process_time()
print(json.dumps({"init": _t1 - _t0, "invoke": _t2 - _t1, "cpu_init": _c1,
                  "cpu_invoke": _c2 - _c1, "result": _result,
                  "crypto": "cryptography" in sys.modules, "jwt": "jwt" in sys.modules}))
"""

# Each function of the zip: its name in the template, the attribute of app.py Lambda calls
# (the handler string `app.<attribute>`) and its key in .chalice/config.json.
FUNCTIONS = {
    "WebsocketConnect": ("connect", "websocket_connect"),
    "WebsocketMessage": ("message", "websocket_message"),
    "APIHandler": ("app", "api_handler"),
    "FanoutWorker": ("fanout_worker", "fanout_worker"),
    "EscalationSweep": ("escalation_sweep", "escalation_sweep"),
}
SWEEP_RULE = "legal-aid-notifications-prod-escalation_sweep"
USER = "coldstart-user"

BOTO3_CHILD = """\
import boto3
_t1, _c1 = time.perf_counter(), time.process_time()
import json, os
boto3.client("dynamodb", region_name=os.environ["AWS_REGION"],
             endpoint_url=os.environ["DYNAMODB_ENDPOINT"])
_t2, _c2 = time.perf_counter(), time.process_time()
print(json.dumps({"init": _t1 - _t0, "invoke": _t2 - _t1, "cpu_init": _c1,
                  "cpu_invoke": _c2 - _c1}))
"""

# The parts of the floor the app pays, for context: the SDK without boto3 (what the app's
# clients are made with), then that plus pydantic with one model built and validated on the
# first call (as the app's models are: deferred).
BOTOCORE_CHILD = BOTO3_CHILD.replace("import boto3\n", "import botocore.session\n").replace(
    "boto3.client(", "botocore.session.Session().create_client("
)
PYDANTIC_CHILD = BOTOCORE_CHILD.replace(
    "import botocore.session\n",
    "import botocore.session\n"
    "from pydantic import BaseModel, ConfigDict\n"
    "class Probe(BaseModel):\n"
    "    model_config = ConfigDict(defer_build=True)\n"
    "    user_id: str\n"
    "    limit: int = 50\n",
).replace(
    'endpoint_url=os.environ["DYNAMODB_ENDPOINT"])\n',
    'endpoint_url=os.environ["DYNAMODB_ENDPOINT"])\n'
    'Probe.model_validate({"user_id": "u"}).model_dump(mode="json")\n',
)

BOTO3_CALL_CHILD = BOTO3_CHILD.replace(
    'endpoint_url=os.environ["DYNAMODB_ENDPOINT"])',
    'endpoint_url=os.environ["DYNAMODB_ENDPOINT"]).get_item(\n'
    '    TableName="connections", Key={"connection_id": {"S": "none"}})',
)

# A context object of the shape Lambda passes (attributes, not a dict), for the child.
CONTEXT_MODULE = """\
import time
class LambdaContext:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = "1024"
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    def __init__(self):
        self._deadline = time.time() + 10
    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.time()) * 1000)
def context():
    return LambdaContext()
"""


@dataclass
class Variant:
    name: str
    label: str
    code: str
    task: Path
    env: dict[str, str]
    event: str | None = None  # the JSON event handed to the handler; None: the baseline
    samples: dict[str, list[float]] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)

    def add(self, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            self.samples.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key])


def configured_memory() -> int:
    """The memory of the functions measured here, as the template configures it (one for all:
    the ratios are of CPU times at one share)."""
    from benchmarks.aws_model import memory_mb

    sizes = {memory_mb(key) for _, key in FUNCTIONS.values()}
    if len(sizes) != 1:
        raise RuntimeError(f"the functions' memory sizes differ ({sizes}): report each apart")
    return sizes.pop()


def configured_environment(archive: Path) -> dict[str, str]:
    """The environment variables the packaged template gives the functions measured here, those
    with a literal value (a reference to a resource is resolved by CloudFormation; the run sets
    its own tables and endpoints)."""
    template = json.loads((archive.parent / "sam.json").read_text())
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    found = set()
    for name in FUNCTIONS:
        own = template["Resources"][name]["Properties"].get("Environment", {})
        variables = {**shared.get("Variables", {}), **own.get("Variables", {})}
        found.add(tuple(sorted((k, v) for k, v in variables.items() if isinstance(v, str))))
    if len(found) != 1:
        raise RuntimeError("the functions' configured environments differ: measure each apart")
    return dict(found.pop())


def package_zip() -> Path:
    """The package handed over in $BENCH_PACKAGE; else build/deployment.zip if it is newer than
    every source; else a fresh package."""
    from benchmarks.package import prebuilt

    handed = prebuilt()
    if handed is not None:
        return handed / "deployment.zip"
    built = ROOT / "build" / "deployment.zip"
    if built.is_file():
        newest = max(
            path.stat().st_mtime
            for source in SOURCES
            for path in (
                [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*")
            )
        )
        if built.stat().st_mtime >= newest:
            return built
    out = Path(tempfile.mkdtemp(prefix="coldstart-package-"))
    print(f"packaging into {out} (make package reuses build/)", flush=True)
    subprocess.run(
        [sys.executable, "infra/package.py", "--stage", "prod", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out / "deployment.zip"


def unpack(archive: Path, target: Path, *, bytecode: bool) -> Path:
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            if bytecode or not info.filename.endswith(".pyc"):
                opened.extract(info, target)
    (target / "awslambda_context.py").write_text(CONTEXT_MODULE)
    return target


def runtime_directory(target: Path) -> Path:
    """Only what the Lambda runtime provides, linked from this interpreter's site-packages."""
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    target.mkdir()
    for name in RUNTIME_PACKAGES:
        for candidate in (site / name, site / f"{name}.py"):
            if candidate.exists():
                (target / candidate.name).symlink_to(candidate)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned_cpu() -> int:
    return max(os.sched_getaffinity(0))


def run_child(variant: Variant, runtime: Path, *, importtime: bool = False) -> dict[str, Any]:
    """One fresh interpreter pinned to one core; its figures, wall and CPU time (and, with
    `importtime`, its `-X importtime` lines under "imports")."""
    code = CHILD_PRELUDE.format(task=str(variant.task), runtime=str(runtime)) + variant.code
    env = dict(variant.env)
    if variant.event is not None:
        env["BENCH_EVENT"] = variant.event
    pin = ["taskset", "-c", str(pinned_cpu())] if shutil.which("taskset") else []
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*pin, sys.executable, "-S", "-B", *(["-X", "importtime"] * importtime), "-c", code],
            cwd=variant.task,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert process.stdout is not None
        output = process.stdout.read()
        # wait4, not wait: the child's own CPU time (user + sys, every thread).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        process.stdout.close()
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{variant.name} failed:\n{errors.read().decode()}")
        errors.seek(0)
        stderr = errors.read().decode()
    figures = json.loads(output.decode().strip().splitlines()[-1])
    if importtime:
        figures["imports"] = stderr
    figures["wall"] = wall
    figures["cpu"] = usage.ru_utime + usage.ru_stime
    return figures


def import_costs(stderr: str) -> list[tuple[str, float]]:
    """Self import time (s) per top-level package from `-X importtime` lines, heaviest first."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.removeprefix("import time:").split("|", 2)
            package = name.strip().split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(own) / 1e6
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def wall_based(wall: float, cpu: float, share: float) -> float:
    return max(wall - cpu, 0.0) + cpu / share


def burst_based(cpu: float, cpu_init: float, share: float) -> float:
    """`cpu` with its init phase (interpreter start + imports) at a full vCPU, the rest at
    `share`: on-demand functions run their init unthrottled (see the module docstring)."""
    init = min(cpu_init, cpu)
    return init + (cpu - init) / share


@contextmanager
def jwks_server() -> Iterator[tuple[str, Any]]:
    """A JWKS on 127.0.0.1 and the private key that signs tokens for it."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "bench", "use": "sig"}]}).encode()

    class Handler(_Quiet):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with _serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/jwks.json", key


@contextmanager
def connections_recorder() -> Iterator[tuple[str, list[bytes]]]:
    """API Gateway's @connections on 127.0.0.1: every post is accepted and kept."""
    posted: list[bytes] = []

    class Handler(_Quiet):
        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with _serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/bench", posted


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """`handler` served on 127.0.0.1 from a thread; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def _connection(connection_id: str | None = None) -> Any:
    from devstack import events

    return events.ConnectionContext(
        connection_id=connection_id or events.new_connection_id(),
        connected_at=events.now_ms(),
        source_ip="127.0.0.1",
        user_agent="benchmarks",
        domain_name="benchapi.execute-api.us-east-1.amazonaws.com",
        stage="bench",
    )


def connect_event(token: str, connection_id: str | None = None) -> str:
    from devstack import events

    context = _connection(connection_id)
    event = events.connect_event(
        context, header_pairs=[("Host", context.domain_name)], query_pairs=[("token", token)]
    )
    return json.dumps(event)


def register_event(token: str, connection_id: str) -> str:
    from devstack import events

    body = json.dumps({"action": "register", "token": token})
    return json.dumps(
        events.message_event(_connection(connection_id), route_key="register", body=body)
    )


def rest_event(method: str, path: str, token: str, body: Any = None) -> str:
    """API Gateway's REST proxy event, as the local stack builds it (chalice.local's)."""
    from chalice.local import RouteMatcher

    import app as lambda_app
    from devstack.rest import _DecodingEventConverter

    converter = _DecodingEventConverter(
        RouteMatcher(list(lambda_app.app.routes)), lambda_app.app.api.binary_types
    )
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "host": "benchapi.execute-api.us-east-1.amazonaws.com",
    }
    raw = json.dumps(body).encode() if body is not None else None
    event = converter.create_lambda_event(method, path, headers, raw)
    if isinstance(event.get("body"), bytes):  # API Gateway sends text
        event["body"] = event["body"].decode()
    return json.dumps(event)


def hs256_token(*, admin: bool = False) -> str:
    from devstack.tokens import mint_dev_token

    return mint_dev_token("staff" if admin else USER, admin=admin, secret=SECRET)


def rs256_token(key: Any) -> str:
    import jwt

    claims = {
        "sub": USER,
        "exp": int(time.time()) + 3600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})


def main(tiny: bool = False) -> None:
    from moto.server import ThreadedMotoServer

    runs = 1 if tiny else RUNS
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
    memory = configured_memory()
    share = min(1.0, memory / FULL_CPU_MB)
    print(f"== Cold start as Lambda runs it: the packaged zip at {memory} MB, per function ==")
    archive = package_zip()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="coldstart-"))
    try:
        queue = _create_resources(endpoint)
        with jwks_server() as (jwks_url, key), connections_recorder() as (connections, posted):
            runtime = runtime_directory(scratch / "runtime")
            variants = _variants(archive, scratch, endpoint, queue, connections, jwks_url, key)
            _prepare(variants, runtime, endpoint, queue, posted)
            by_name = {variant.name: variant for variant in variants}
            for round_ in range(runs + (0 if tiny else 1)):
                for variant in variants:
                    if variant.name == "WebsocketConnect" or variant.name in ("nopyc", "rs256"):
                        token = hs256_token() if variant.name != "rs256" else rs256_token(key)
                        variant.event = connect_event(token)
                    before = len(posted)
                    figures = run_child(variant, runtime)
                    _check(variant, figures.pop("result", None), posted[before:])
                    variant.flags = {k: figures.pop(k) for k in ("crypto", "jwt") if k in figures}
                    if tiny or round_ > 0:
                        variant.add(figures)
            profiles = {
                name: run_child(by_name[name], runtime, importtime=True)["imports"]
                for name in FUNCTIONS
            }
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    _report(variants, share, memory, archive, runs)
    print("heaviest imports of the zip's cold start (self ms per package, -X importtime, 1 run):")
    for name, profile in profiles.items():
        costs = import_costs(profile)
        total = sum(cost for _, cost in costs)
        heaviest = ", ".join(f"{package} {cost * 1000:.0f}" for package, cost in costs[:8])
        print(f"  {name:17} {total * 1000:4.0f} in all: {heaviest}")
    print()


def _create_resources(endpoint: str) -> str:
    """The tables and the fan-out queue; returns the queue's URL."""
    import boto3

    from devstack.fanout import create_fanout_queues
    from devstack.tables import create_tables

    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    create_tables(
        session.client("dynamodb", endpoint_url=endpoint),
        connections_table=CONNECTIONS_TABLE,
        notifications_table=NOTIFICATIONS_TABLE,
    )
    queue, _ = create_fanout_queues(session.client("sqs", endpoint_url=endpoint))
    return queue


def _prepare(
    variants: list[Variant], runtime: Path, endpoint: str, queue: str, posted: list[bytes]
) -> None:
    """What the measured first events need, made by the zip itself (untimed): the connection the
    register arrives on, and a broadcast's first job on the queue for the FanoutWorker."""
    import boto3

    from devstack.fanout import sqs_event

    by_name = {variant.name: variant for variant in variants}
    message = by_name["WebsocketMessage"]
    connection_id = json.loads(message.event or "{}")["requestContext"]["connectionId"]
    setup = Variant("setup", "", APP_CHILD, message.task, by_name["WebsocketConnect"].env)
    for handler, event in (
        ("connect", connect_event(hs256_token(), connection_id)),
        ("message", message.event),
    ):
        setup.env = {**setup.env, "BENCH_HANDLER": handler}
        setup.event = event
        run_child(setup, runtime)
    # Above the threshold (0: every broadcast) a broadcast goes through the queue.
    setup.env = {**by_name["APIHandler"].env, "FANOUT_THRESHOLD": "0"}
    setup.event = rest_event(
        "POST", "/api/notifications/broadcast", hs256_token(admin=True), {"message": "Closed"}
    )
    reply = run_child(setup, runtime)["result"]
    if reply.get("statusCode") != 202:
        raise RuntimeError(f"the broadcast that makes the FanoutWorker's job failed: {reply}")
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    jobs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["All"])
    if not jobs.get("Messages"):
        raise RuntimeError("the broadcast enqueued no job for the FanoutWorker")
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    by_name["FanoutWorker"].event = json.dumps(sqs_event(jobs["Messages"], arn["QueueArn"], REGION))
    posted.clear()


def _check(variant: Variant, result: Any, posted: list[bytes]) -> None:
    """Each first event did its work: a cold start that failed fast would flatter the figures."""
    name = variant.name
    if name in ("WebsocketConnect", "nopyc", "rs256", "APIHandler"):
        ok = (result or {}).get("statusCode") == 200
    elif name == "WebsocketMessage":
        ok = any(json.loads(body).get("event") == "registered" for body in posted)
    elif name == "FanoutWorker":
        ok = result == {"batchItemFailures": []}
    elif name == "EscalationSweep":
        ok = isinstance(result, dict)
    else:
        ok = True
    if not ok:
        raise RuntimeError(f"{name}: its first event failed: {result} (posted {posted})")


def _variants(
    archive: Path,
    scratch: Path,
    endpoint: str,
    queue: str,
    connections: str,
    jwks_url: str,
    key: Any,
) -> list[Variant]:
    from devstack.events import new_connection_id
    from devstack.messaging import scheduled_event

    base = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR"}}
    env = {
        **base,
        **configured_environment(archive),
        **ENVIRONMENT,
        "STAGE": "prod",
        "DYNAMODB_ENDPOINT": endpoint,
        "SQS_ENDPOINT": endpoint,
        "SES_ENDPOINT": endpoint,
        "SNS_ENDPOINT": endpoint,
        "FANOUT_QUEUE_URL": queue,
        "WEBSOCKET_ENDPOINT": connections,
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
    }
    # Stage dev: the JWKS on 127.0.0.1 is plain http, which prod refuses.
    rs256 = {
        **env,
        "JWT_JWKS_URL": jwks_url,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "STAGE": "dev",
        "BENCH_HANDLER": "connect",
    }
    task = unpack(archive, scratch / "task", bytecode=True)
    bare = unpack(archive, scratch / "task-nopyc", bytecode=False)
    events = {
        "WebsocketConnect": None,  # a new connection each run
        "WebsocketMessage": register_event(hs256_token(), new_connection_id()),
        "APIHandler": rest_event("GET", "/api/notifications", hs256_token()),
        "FanoutWorker": None,  # made by `_prepare`
        "EscalationSweep": json.dumps(scheduled_event(REGION, SWEEP_RULE)),
    }
    labels = {
        "WebsocketConnect": "$connect, HS256",
        "WebsocketMessage": "register",
        "APIHandler": "GET /api/notifications",
        "FanoutWorker": "a broadcast's first job",
        "EscalationSweep": "a sweep, nothing due",
    }
    functions = [
        Variant(
            name,
            f"{name}: {labels[name]}",
            APP_CHILD,
            task,
            {**env, "BENCH_HANDLER": handler},
            events[name],
        )
        for name, (handler, _) in FUNCTIONS.items()
    ]
    connect_env = {**env, "BENCH_HANDLER": "connect"}
    return [
        Variant("boto3", "boto3: import + 1 DynamoDB client", BOTO3_CHILD, task, env),
        Variant("boto3call", "boto3: ... + 1st call (a GetItem)", BOTO3_CALL_CHILD, task, env),
        Variant("botocore", "botocore: import + 1 DynamoDB client", BOTOCORE_CHILD, task, env),
        Variant("pydantic", "botocore ... + pydantic, 1 model used", PYDANTIC_CHILD, task, env),
        *functions,
        Variant("nopyc", "$connect, zip without .pyc", APP_CHILD, bare, connect_env),
        Variant("rs256", "$connect with RS256 (JWKS)", APP_CHILD, task, rs256),
    ]


def _report(variants: list[Variant], share: float, memory: int, archive: Path, runs: int) -> None:
    print(
        f"zip {archive} ({archive.stat().st_size // 1024} KiB); one core pinned per child; "
        f"CPU share at {memory} MB = {share:.2f} vCPU; median of {runs} run(s), ms"
    )
    print(
        "at memory = cpu / share; wall-based = (wall - cpu) + cpu / share; burst = init's cpu "
        "at a full vCPU + the rest / share; init = import (Lambda's init phase), invoke = first "
        "handler call (in-process wall)"
    )
    print(
        f"{'':42}{'init':>6}{'invoke':>7}{'wall':>6}{'cpu':>6}"
        f"{'at memory':>11}{'wall-based':>12}{'burst':>7}  loaded"
    )
    cpu_based: dict[str, float] = {}
    walls: dict[str, float] = {}
    bursts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for variant in variants:
        wall, cpu = variant.median("wall"), variant.median("cpu")
        cpu_based[variant.name] = cpu / share
        walls[variant.name] = statistics.median(
            wall_based(w, c, share)
            for w, c in zip(variant.samples["wall"], variant.samples["cpu"], strict=True)
        )
        bursts[variant.name] = statistics.median(
            burst_based(c, i, share)
            for c, i in zip(variant.samples["cpu"], variant.samples["cpu_init"], strict=True)
        )
        ends[variant.name] = statistics.median(
            (i + v) / share
            for i, v in zip(variant.samples["cpu_init"], variant.samples["cpu_invoke"], strict=True)
        )
        loaded = ", ".join(name for name, on in variant.flags.items() if on) or "-"
        print(
            f"{variant.label:42}{variant.median('init') * 1000:>6.0f}"
            f"{variant.median('invoke') * 1000:>7.0f}{wall * 1000:>6.0f}{cpu * 1000:>6.0f}"
            f"{cpu_based[variant.name] * 1000:>11.0f}{walls[variant.name] * 1000:>12.0f}"
            f"{bursts[variant.name] * 1000:>7.0f}  {loaded}"
        )
    for name in ("boto3call", "botocore", "pydantic", *FUNCTIONS, "nopyc", "rs256"):
        ratio = cpu_based[name] / cpu_based["boto3"]
        judged = max(ratio, ends[name] / ends["boto3"])
        verdict = "meets" if judged <= GOAL else "misses"
        print(
            f"ratio {name} / boto3 at {memory} MB: {ratio:.2f}x ({verdict} the {GOAL}x goal; "
            f"wall-based {walls[name] / walls['boto3']:.2f}x; "
            f"burst {bursts[name] / bursts['boto3']:.2f}x; "
            f"to event end {ends[name] / ends['boto3']:.2f}x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="each variant once, no warm-up")
    main(tiny=parser.parse_args().tiny)
