"""Cold start the way Lambda runs it: the packaged zip, at the configured memory's CPU share,
against `import boto3` + one client under the same conditions.

What runs: `make package`'s zip (infra/package.py: with its precompiled bytecode) unpacked into
a task directory, as Lambda unpacks it into /var/task. Each child is a fresh interpreter
started with `-S` (no site-packages: nothing from the dev venv leaks in) whose `sys.path` is the
task directory, then a "runtime" directory holding only what the Lambda Python runtime ships
(boto3, botocore and their dependencies, already compiled, as in the runtime image). Bytecode
is never written (Lambda's /var/task is read-only). The child imports `app` (Lambda's init
phase) and handles a first `$connect` with a token (the first invocation: settings, service,
token verification, a PutItem and an UpdateItem over HTTP to a moto server). The baseline
child, under the same conditions, imports boto3 and creates one DynamoDB client.

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

Variants: the baseline; the baseline plus its first request (a GetItem: what any function
that does work also pays, for context); the zip as built; the zip without its .pyc files (what
the bytecode saves); and the zip verifying an RS256 token through a JWKS served on 127.0.0.1
(the Cognito path, which imports PyJWT and cryptography; HS256 imports neither).

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
_t1 = time.perf_counter()
import json, os
from awslambda_context import context
_result = app.connect(json.loads(os.environ["BENCH_EVENT"]), context())
_t2 = time.perf_counter()
print(json.dumps({"init": _t1 - _t0, "invoke": _t2 - _t1, "result": _result,
                  "crypto": "cryptography" in sys.modules, "jwt": "jwt" in sys.modules}))
"""

BOTO3_CHILD = """\
import boto3
_t1 = time.perf_counter()
import json, os
boto3.client("dynamodb", region_name=os.environ["AWS_REGION"],
             endpoint_url=os.environ["DYNAMODB_ENDPOINT"])
_t2 = time.perf_counter()
print(json.dumps({"init": _t1 - _t0, "invoke": _t2 - _t1}))
"""

BOTO3_CALL_CHILD = BOTO3_CHILD.replace(
    'endpoint_url=os.environ["DYNAMODB_ENDPOINT"])',
    'endpoint_url=os.environ["DYNAMODB_ENDPOINT"]).get_item(\n'
    '    TableName="connections", Key={"connection_id": {"S": "none"}})',
)

# A context object of the shape Lambda passes (attributes, not a dict), for the child.
CONTEXT_MODULE = """\
import time
class LambdaContext:
    function_name = "bench-WebsocketConnect"
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
    samples: dict[str, list[float]] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)

    def add(self, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            self.samples.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key])


def configured_memory() -> int:
    """The memory of the function measured here ($connect), as the template configures it."""
    from benchmarks.aws_model import memory_mb

    return memory_mb("websocket_connect")


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


def run_child(
    variant: Variant, runtime: Path, event: str | None, *, importtime: bool = False
) -> dict[str, Any]:
    """One fresh interpreter pinned to one core; its figures, wall and CPU time (and, with
    `importtime`, its `-X importtime` lines under "imports")."""
    code = CHILD_PRELUDE.format(task=str(variant.task), runtime=str(runtime)) + variant.code
    env = dict(variant.env)
    if event is not None:
        env["BENCH_EVENT"] = event
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


@contextmanager
def jwks_server() -> Iterator[tuple[str, Any]]:
    """A JWKS on 127.0.0.1 and the private key that signs tokens for it."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "bench", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()


def connect_event(token: str) -> str:
    from devstack import events

    context = events.ConnectionContext(
        connection_id=events.new_connection_id(),
        connected_at=events.now_ms(),
        source_ip="127.0.0.1",
        user_agent="benchmarks",
        domain_name="benchapi.execute-api.us-east-1.amazonaws.com",
        stage="bench",
    )
    event = events.connect_event(
        context, header_pairs=[("Host", context.domain_name)], query_pairs=[("token", token)]
    )
    return json.dumps(event)


def hs256_token() -> str:
    from devstack.tokens import mint_token

    return mint_token("coldstart-user", secret=SECRET)


def rs256_token(key: Any) -> str:
    import jwt

    claims = {
        "sub": "coldstart-user",
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
    print(f"== Cold start as Lambda runs it: the packaged zip at {memory} MB ==")
    archive = package_zip()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="coldstart-"))
    try:
        _create_tables(endpoint)
        with jwks_server() as (jwks_url, key):
            variants = _variants(archive, scratch, endpoint, jwks_url)
            runtime = runtime_directory(scratch / "runtime")
            events = {"app": hs256_token(), "nopyc": hs256_token(), "rs256": rs256_token(key)}
            for round_ in range(runs + (0 if tiny else 1)):
                for variant in variants:
                    token = events.get(variant.name)
                    figures = run_child(
                        variant, runtime, connect_event(token) if token is not None else None
                    )
                    result = figures.pop("result", None)
                    if token is not None and (result or {}).get("statusCode") != 200:
                        raise RuntimeError(f"{variant.name}: $connect was rejected: {result}")
                    variant.flags = {k: figures.pop(k) for k in ("crypto", "jwt") if k in figures}
                    if tiny or round_ > 0:
                        variant.add(figures)
            profile = run_child(
                variants[2], runtime, connect_event(events["app"]), importtime=True
            )["imports"]
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    _report(variants, share, memory, archive, runs)
    print("heaviest imports of the zip's cold start (self ms per package, -X importtime, 1 run):")
    print(
        "  " + ", ".join(f"{name} {cost * 1000:.0f}" for name, cost in import_costs(profile)[:10])
    )
    print()


def _create_tables(endpoint: str) -> None:
    import boto3

    from devstack.tables import create_tables

    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_tables(
        client, connections_table=CONNECTIONS_TABLE, notifications_table=NOTIFICATIONS_TABLE
    )


def _variants(archive: Path, scratch: Path, endpoint: str, jwks_url: str) -> list[Variant]:
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR"}}
    env = {
        **base,
        **ENVIRONMENT,
        "STAGE": "prod",
        "DYNAMODB_ENDPOINT": endpoint,
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
    }
    task = unpack(archive, scratch / "task", bytecode=True)
    bare = unpack(archive, scratch / "task-nopyc", bytecode=False)
    return [
        Variant("boto3", "boto3: import + 1 DynamoDB client", BOTO3_CHILD, task, env),
        Variant("boto3call", "boto3: ... + 1st call (a GetItem)", BOTO3_CALL_CHILD, task, env),
        Variant("app", "zip: import app + 1st $connect, HS256", APP_CHILD, task, env),
        Variant("nopyc", "zip without .pyc: Lambda compiles", APP_CHILD, bare, env),
        Variant("rs256", "zip: 1st $connect with RS256 (JWKS)", APP_CHILD, task, rs256),
    ]


def _report(variants: list[Variant], share: float, memory: int, archive: Path, runs: int) -> None:
    print(
        f"zip {archive} ({archive.stat().st_size // 1024} KiB); one core pinned per child; "
        f"CPU share at {memory} MB = {share:.2f} vCPU; median of {runs} run(s), ms"
    )
    print(
        "at memory = cpu / share; wall-based = (wall - cpu) + cpu / share; init = import "
        "(Lambda's init phase), invoke = first handler call (in-process wall)"
    )
    print(
        f"{'':40}{'init':>6}{'invoke':>7}{'wall':>6}{'cpu':>6}"
        f"{'at memory':>11}{'wall-based':>12}  loaded"
    )
    cpu_based: dict[str, float] = {}
    walls: dict[str, float] = {}
    for variant in variants:
        wall, cpu = variant.median("wall"), variant.median("cpu")
        cpu_based[variant.name] = cpu / share
        walls[variant.name] = statistics.median(
            wall_based(w, c, share)
            for w, c in zip(variant.samples["wall"], variant.samples["cpu"], strict=True)
        )
        loaded = ", ".join(name for name, on in variant.flags.items() if on) or "-"
        print(
            f"{variant.label:40}{variant.median('init') * 1000:>6.0f}"
            f"{variant.median('invoke') * 1000:>7.0f}{wall * 1000:>6.0f}{cpu * 1000:>6.0f}"
            f"{cpu_based[variant.name] * 1000:>11.0f}{walls[variant.name] * 1000:>12.0f}  {loaded}"
        )
    for name in ("boto3call", "app", "nopyc", "rs256"):
        ratio = cpu_based[name] / cpu_based["boto3"]
        verdict = "meets" if ratio <= GOAL else "misses"
        print(
            f"ratio {name} / boto3 at {memory} MB: {ratio:.2f}x ({verdict} the {GOAL}x goal; "
            f"wall-based {walls[name] / walls['boto3']:.2f}x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="each variant once, no warm-up")
    main(tiny=parser.parse_args().tiny)
