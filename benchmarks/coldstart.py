"""Cold start: a fresh process importing app.py and handling its first `$connect`, against a
fresh process that only imports boto3 and creates one DynamoDB client.

The app process talks to a moto server (started here, on a free port, tables created from
infra/ with `devstack.tables.create_tables`) through `DYNAMODB_ENDPOINT`, so the first
`$connect` makes its real HTTP calls. Each child records `time.perf_counter()` as its first
statement and prints the elapsed time of the measured code; the parent also times the whole
process (interpreter start-up and exit included). Runs alternate between the variants so
that drift on the machine hits them alike; one discarded warm-up run of each comes first
(disk cache, .pyc files).

Two app variants: as-is (the dev venv), and with `cryptography` hidden from the child. The
Lambda zip holds only requirements.txt (boto3 comes with the runtime), which does not list
cryptography; PyJWT imports cryptography whenever it is importable, and the dev venv has it (moto
needs it), so the as-is figure overstates what Lambda pays. A `sys.modules["cryptography"] =
None` shim, the child's first statement, makes PyJWT take its "not installed" branch
(HS256 needs nothing from cryptography).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.calls import (
    CONNECTIONS_TABLE,
    ENVIRONMENT,
    NOTIFICATIONS_TABLE,
    REGION,
    token,
)

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
TOP_IMPORTS = 8

HIDE_CRYPTOGRAPHY = (
    "import sys\nsys.modules['cryptography'] = None  # not in the Lambda zip: PyJWT falls back\n"
)

APP_CHILD = """\
import time
_t0, _c0 = time.perf_counter(), time.process_time()
{shim}
import app
_t1 = time.perf_counter()
from chalicelib.wiring import get_service
get_service()
_t2 = time.perf_counter()
import json, os
_result = app.connect(json.loads(os.environ["BENCH_EVENT"]), None)
_t3, _c3 = time.perf_counter(), time.process_time()
import sys
print(json.dumps({{
    "total": _t3 - _t0, "cpu": _c3 - _c0,
    "import": _t1 - _t0, "service": _t2 - _t1, "connect": _t3 - _t2,
    "result": _result, "cryptography": sys.modules.get("cryptography") is not None,
}}))
"""

BOTO3_CHILD = """\
import time
_t0, _c0 = time.perf_counter(), time.process_time()
import boto3
_t1 = time.perf_counter()
import os
_client = boto3.client(
    "dynamodb", region_name=os.environ["AWS_REGION"], endpoint_url=os.environ["DYNAMODB_ENDPOINT"]
)
_t2, _c2 = time.perf_counter(), time.process_time()
import json
print(json.dumps({
    "total": _t2 - _t0, "cpu": _c2 - _c0, "import": _t1 - _t0, "client": _t2 - _t1,
}))
"""


@dataclass
class Variant:
    name: str
    code: str
    needs_event: bool
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def median(self, phase: str) -> float:
        return statistics.median(self.samples[phase])

    def spread(self, phase: str) -> str:
        values = self.samples[phase]
        return f"{ms(statistics.median(values))} [{ms(min(values))}-{ms(max(values))}]"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_environment(endpoint: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.pop("PYTHONPATH", None)
    env.update(ENVIRONMENT)
    env["DYNAMODB_ENDPOINT"] = endpoint
    return env


def connect_event() -> str:
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
        context,
        header_pairs=[("Host", context.domain_name)],
        query_pairs=[("token", token("coldstart-user"))],
    )
    return json.dumps(event)


def run_child(
    variant: Variant, env: dict[str, str], *, importtime: bool = False
) -> tuple[dict[str, Any], float, str]:
    """One fresh process; its own figures, the whole-process wall time, and its stderr."""
    child_env = dict(env)
    if variant.needs_event:
        child_env["BENCH_EVENT"] = connect_event()
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", variant.code]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=child_env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{variant.name} child failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # Chalice turns a handler's None into {"statusCode": 200}: the handshake was accepted.
    if variant.needs_event and (figures["result"] or {}).get("statusCode") != 200:
        raise RuntimeError(f"{variant.name}: $connect was rejected: {figures['result']}")
    return figures, wall, done.stderr


def imported_modules(stderr: str) -> Iterator[tuple[str, float]]:
    """(module, self time in s) of every line of `-X importtime` output."""
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _cumulative, name = line.removeprefix("import time:").split("|", 2)
            yield name.strip(), int(own) / 1e6


def startup_modules(env: dict[str, str]) -> set[str]:
    """What the interpreter imports before any of the measured code runs."""
    command = [sys.executable, "-X", "importtime", "-c", "pass"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return {module for module, _ in imported_modules(done.stderr)}


def import_costs(
    stderr: str, skip: set[str] = frozenset()
) -> list[tuple[str, float, int, str, float]]:
    """Self time of every import but `skip`, summed per top-level package: (package, s,
    modules, heaviest module, its self s), heaviest first."""
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    heaviest: dict[str, tuple[float, str]] = {}
    for module, seconds in imported_modules(stderr):
        if module in skip:
            continue
        package = module.split(".")[0]
        totals[package] += seconds
        counts[package] += 1
        if seconds > heaviest.get(package, (-1.0, ""))[0]:
            heaviest[package] = (seconds, module)
    ranked = sorted(totals, key=totals.__getitem__, reverse=True)
    return [(p, totals[p], counts[p], heaviest[p][1], heaviest[p][0]) for p in ranked]


def main() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from devstack.tables import create_tables

    print(f"== Cold start: fresh processes, median of {RUNS} runs each (+1 discarded warm-up) ==")
    # Werkzeug (moto's server) logs every request at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        env = child_environment(endpoint)
        setup = boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        create_tables(
            setup, connections_table=CONNECTIONS_TABLE, notifications_table=NOTIFICATIONS_TABLE
        )
        baseline = Variant("boto3", BOTO3_CHILD, needs_event=False)
        as_is = Variant("app as-is", APP_CHILD.format(shim=""), needs_event=True)
        no_crypto = Variant(
            "app, no cryptography", APP_CHILD.format(shim=HIDE_CRYPTOGRAPHY), needs_event=True
        )
        variants = (baseline, as_is, no_crypto)
        loaded: dict[str, bool] = {}
        for round_ in range(RUNS + 1):
            for variant in variants:
                figures, wall, _ = run_child(variant, env)
                if round_ == 0:
                    continue
                for phase, value in figures.items():
                    if isinstance(value, float):
                        variant.samples[phase].append(value)
                variant.samples["wall"].append(wall)
                if "cryptography" in figures:
                    loaded[variant.name] = figures["cryptography"]
        connections = setup.describe_table(TableName=CONNECTIONS_TABLE)["Table"]
        _, _, importtime = run_child(as_is, env, importtime=True)
        _, _, baseline_importtime = run_child(baseline, env, importtime=True)
        startup = startup_modules(env)
    finally:
        server.stop()

    print(
        f"python {sys.version.split()[0]}; DynamoDB = moto server on {endpoint}; "
        f"{connections.get('ItemCount', '?')} connection items after the runs"
    )
    print("times in ms, median [min-max]. in-process: from the child's first statement, wall")
    print("(perf_counter) and CPU (process_time, less disturbed by other load on the machine);")
    print("whole process: spawn to exit, as the parent sees it")
    print()
    rows = [
        ("boto3: import + 1 DynamoDB client", baseline),
        ("app as-is: import + first $connect", as_is),
        ("app, no cryptography (Lambda-like)", no_crypto),
    ]
    width = max(len(label) for label, _ in rows) + 2
    columns = (("total", "in-process wall"), ("cpu", "in-process CPU"), ("wall", "whole process"))
    print(f"{'':{width}}" + "".join(f"{title:>18}" for _, title in columns))
    for label, variant in rows:
        print(f"{label:{width}}" + "".join(f"{variant.spread(key):>18}" for key, _ in columns))
    print()
    print("phases (median ms):")
    print(
        f"  boto3 baseline: import boto3 {ms(baseline.median('import'))}, "
        f"client {ms(baseline.median('client'))}"
    )
    for _, variant in rows[1:]:
        print(
            f"  {variant.name}: import app {ms(variant.median('import'))}, "
            f"first get_service() (imports boto3, session, DynamoDB client) "
            f"{ms(variant.median('service'))}, "
            f"$connect (JWT + PutItem + UpdateItem over HTTP) {ms(variant.median('connect'))}"
            f"; cryptography loaded: {loaded.get(variant.name)}"
        )
    print()
    print("ratio app / boto3 baseline, of medians [of minimums]:")
    for label, variant in rows[1:]:
        ratios = []
        for key, title in columns:
            ours, theirs = variant.samples[key], baseline.samples[key]
            median = statistics.median(ours) / statistics.median(theirs)
            ratios.append(f"{title} {median:.2f}x [{min(ours) / min(theirs):.2f}x]")
        print(f"  {label:{width}}" + ", ".join(ratios))
    print()
    costs = import_costs(importtime, startup)
    total = sum(cost for _, cost, _, _, _ in costs)
    shared = {package for package, *_ in import_costs(baseline_importtime, startup)}
    print(
        f"top {TOP_IMPORTS} import costs of the app process (as-is; one extra run with "
        "-X importtime, which inflates times;"
    )
    print(
        "self time summed per top-level package, interpreter start-up imports left out; "
        f"all: {total * 1000:.0f} ms):"
    )
    print(f"  {'package':<22}{'ms':>7}{'modules':>9}  {'boto3 too':<10}heaviest module (ms)")
    for package, cost, count, module, module_cost in costs[:TOP_IMPORTS]:
        also = "yes" if package in shared else "no"
        print(
            f"  {package:<22}{cost * 1000:>7.1f}{count:>9}  {also:<10}"
            f"{module} ({module_cost * 1000:.1f})"
        )
    app_only = sum(cost for package, cost, *_ in costs if package not in shared)
    print(
        f"  packages the boto3 baseline does not import: {app_only * 1000:.0f} ms of the "
        f"{total * 1000:.0f} ms ('boto3 too' = the baseline's importtime run imports it too)"
    )
    print()


if __name__ == "__main__":
    main()
