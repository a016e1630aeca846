"""What a cold start loads: the SDK without boto3, and service models without a directory walk.

The figures are the benchmark's (`python -m benchmarks coldstart`); these tests hold the
behaviour the cuts must keep: every client the service uses still works, an unknown service
still fails with botocore's own error, and what was cut stays cut.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from chalicelib.settings import Settings
from chalicelib.wiring import Clients, SdkSession, build_service

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
# Every AWS service the service talks to (wiring.py, auth.py and webpush.py's SSM reads).
SERVICES = ("dynamodb", "apigatewaymanagementapi", "sqs", "sesv2", "sns", "events", "ssm")

_listings: list[str] = []
_opened: list[str] = []
_listening: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _listening and event == "os.listdir":
        _listings.append(str(args[0]))
    if _listening and event == "open":
        _opened.append(str(args[0]))


# The interpreter's audit events: what the file system was asked, with nothing patched.
sys.addaudithook(_audit)


@pytest.fixture
def listings() -> Iterator[list[str]]:
    """Every directory listed while the test runs."""
    _listings.clear()
    _listening.append(True)
    try:
        yield _listings
    finally:
        _listening.clear()


def python_child(code: str, env: dict[str, str] | None = None) -> str:
    """What a fresh interpreter running `code` in the project prints (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("name", SERVICES)
def test_sdk_session_makes_each_client_the_service_uses(name: str) -> None:
    client = SdkSession().client(name, region_name=REGION, endpoint_url="http://127.0.0.1:9")
    assert client.meta.service_model.service_name == name
    assert client.meta.region_name == REGION


def test_a_client_from_the_sdk_session_talks_to_dynamodb(dynamodb: Any) -> None:
    """Inside moto, as the tests' boto3 clients: the same botocore underneath."""
    client = SdkSession().client("dynamodb", region_name=REGION)
    assert "notifications" in client.list_tables()["TableNames"]


def test_an_unknown_service_still_fails_naming_the_known_ones() -> None:
    with pytest.raises(UnknownServiceError) as raised:
        SdkSession().client("dynamodbb", region_name=REGION)
    assert "dynamodb" in str(raised.value)
    assert "sqs" in str(raised.value)


def test_a_client_lists_only_its_own_services_directory(listings: list[str]) -> None:
    """botocore lists every service's directory (hundreds) before each model it loads."""
    SdkSession().client("dynamodb", region_name=REGION)
    ours = len(listings)
    listings.clear()
    botocore.session.Session().create_client("dynamodb", region_name=REGION)
    assert ours < 20, listings
    assert len(listings) > 10 * ours


def test_the_sdk_sessions_data_path_is_botocores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_DATA_PATH (models of services botocore does not ship) is still searched first."""
    shipped = Path(botocore.__file__).parent / "data" / "sns"
    version = sorted(path.name for path in shipped.iterdir() if path.is_dir())[-1]
    extra = tmp_path / "models" / "sns-copy" / version
    extra.mkdir(parents=True)
    for source in (shipped / version).iterdir():
        (extra / source.name).write_bytes(source.read_bytes())
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "models"))
    client = SdkSession().client("sns-copy", region_name=REGION)
    assert client.meta.service_model.service_name == "sns-copy"


def test_the_service_is_built_without_boto3() -> None:
    """A fresh interpreter, as a Lambda's: building the service and its DynamoDB client never
    imports boto3 (nor s3transfer, nor multiprocessing)."""
    code = (
        "import sys\n"
        "from chalicelib.settings import Settings\n"
        "from chalicelib.wiring import build_service\n"
        "service = build_service(Settings.from_env())\n"
        "service.clients.dynamodb\n"
        "print(sorted(m for m in ('boto3', 's3transfer', 'multiprocessing') if m in sys.modules))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "STAGE": "dev",
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
        "JWT_SECRET": "x" * 32,
    }
    assert python_child(code, env) == "[]"


def test_the_service_takes_a_boto3_session_too(dynamodb: Any) -> None:
    import boto3

    settings = Settings.from_env()
    clients = Clients.from_settings(settings, session=boto3.session.Session())
    service = build_service(settings, clients=clients)
    assert service.clients.dynamodb.describe_table(TableName="notifications")["Table"]


def test_a_chalicelib_module_loads_without_the_service_graph() -> None:
    """The package's own module runs before any of its modules: it must not import them all."""
    code = (
        "import sys\n"
        "import chalicelib.settings\n"
        "print(sorted(m for m in ('chalicelib.wiring', 'chalicelib.models', 'pydantic')"
        " if m in sys.modules))\n"
    )
    assert python_child(code) == "[]"


def test_importing_the_app_leaves_the_collector_on_with_its_objects_frozen() -> None:
    """app.py pauses the cyclic collector while it loads and freezes what it loaded: after the
    import the collector runs again (a cycle made then is collected), and the modules' objects
    are out of its reach."""
    code = (
        "import gc, json\n"
        "import app\n"
        "class Cycle:\n"
        "    pass\n"
        "cycle = Cycle()\n"
        "cycle.me = cycle\n"
        "del cycle\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),\n"
        "                  'collected': gc.collect()}))\n"
    )
    figures = json.loads(python_child(code).splitlines()[-1])
    assert figures["enabled"] is True
    assert figures["frozen"] > 20_000  # botocore, chalice and the app's modules
    assert figures["collected"] >= 1  # the cycle made after the import


# What pushes, fans out, records or publishes a notification, and the models: neither a
# `$connect` nor a sweep with nothing due parses or builds one, so neither imports pydantic.
NOTIFYING = (
    "pydantic",
    "chalicelib.models",
    "chalicelib.notifications",
    "chalicelib.webpush",
    "chalicelib.delivery",
    "chalicelib.fanout",
    "chalicelib.receipts",
    "chalicelib.publisher",
    "chalicelib.rights",
    "chalicelib.storage.inbox",
)
# What `$connect` reaches: sessions, connections, the directory, the counters, the verifier.
# The rest of the domain (and what it imports) is for the other functions.
NOT_FOR_CONNECT = (
    *NOTIFYING,
    "chalicelib.escalation",
    "chalicelib.sweep",
    "chalicelib.immigration",
    "chalicelib.accounts",
    "chalicelib.i18n",
    "chalicelib.storage.receipts",
)
# A sweep with nothing due reads its cursor and the due buckets: nothing that fires a step.
NOT_FOR_AN_IDLE_SWEEP = (
    *NOTIFYING,
    "chalicelib.sessions",
    "chalicelib.storage.profiles",
    "chalicelib.storage.subscriptions",
)

FUNCTION_CHILD = """\
import json, os, sys
from moto import mock_aws
with mock_aws():
    import boto3
    from devstack.context import LambdaContext
    from devstack.tables import create_tables
    dynamodb = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
    create_tables(dynamodb, connections_table=os.environ["CONNECTIONS_TABLE"],
                  notifications_table=os.environ["NOTIFICATIONS_TABLE"])
    import app
    for name, event in json.loads(os.environ["EVENTS"]):
        result = getattr(app, name)(event, LambdaContext(function_name="f"))
    stored = dynamodb.scan(TableName=os.environ["CONNECTIONS_TABLE"])["Items"]
    print(json.dumps({"result": result, "connections": len(stored),
                      "loaded": sorted(m for m in sys.modules
                                       if m.startswith("chalicelib") or m == "pydantic")}))
"""


def first_events(
    *events: tuple[str, dict[str, Any]],
    child: str = FUNCTION_CHILD,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A fresh interpreter, as a function's first: moto's tables, `import app`, then each of
    `events` (handler, event) in turn; what the last returned, the connections stored and the
    chalicelib modules (and pydantic) loaded."""
    import os

    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "EVENTS": json.dumps(events)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def token_connect(user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new connection's context and its `$connect` event, with a token for `user_id`."""
    from devstack import events
    from devstack.tokens import mint_token
    from tests.conftest import SECRET

    context = events.ConnectionContext(
        connection_id=events.new_connection_id(),
        connected_at=events.now_ms(),
        source_ip="127.0.0.1",
        user_agent="tests",
        domain_name="testapi.execute-api.us-east-1.amazonaws.com",
        stage="test",
    )
    token = mint_token(user_id, secret=SECRET, ttl_seconds=600)
    event = events.connect_event(
        context, header_pairs=[("Host", context.domain_name)], query_pairs=[("token", token)]
    )
    return context, event


def test_connect_loads_only_what_its_route_needs() -> None:
    """WebsocketConnect: importing the app and accepting a `$connect` with a token stores the
    connection without loading the notification, escalation, Web Push, receipt or event
    modules."""
    _, event = token_connect("user-connect")
    figures = first_events(("connect", event))
    assert figures["result"] == {"statusCode": 200}  # accepted
    assert figures["connections"] == 1
    assert "chalicelib.sessions" in figures["loaded"]
    assert sorted(set(NOT_FOR_CONNECT) & set(figures["loaded"])) == []


def test_an_idle_sweep_loads_nothing_that_fires_a_step() -> None:
    """EscalationSweep: a first sweep with nothing due answers without building (or importing)
    delivery, Web Push, receipts or the notifications."""
    from devstack.messaging import scheduled_event

    figures = first_events(("escalation_sweep", scheduled_event(REGION, "sweep")))
    assert figures["result"] == {"due": 0, "outcomes": {}}
    assert "chalicelib.sweep" in figures["loaded"]
    assert sorted(set(NOT_FOR_AN_IDLE_SWEEP) & set(figures["loaded"])) == []


def test_each_api_builds_only_its_own_contract() -> None:
    """A register builds the WebSocket API's frames and events, never the REST replies; a REST
    page builds its reply, never a frame or an event; neither reads the published examples."""
    from benchmarks.coldstart import rest_event
    from devstack import events
    from devstack.tokens import mint_token
    from tests.conftest import SECRET

    context, connect = token_connect("user-contract")
    register = events.message_event(context, route_key="register", body='{"action":"register"}')
    websocket = first_events(("connect", connect), ("message", register))["loaded"]
    assert "chalicelib.protocol" in websocket
    assert sorted({"chalicelib.contract", "chalicelib.examples"} & set(websocket)) == []

    token = mint_token("user-contract", secret=SECRET, ttl_seconds=600)
    page = json.loads(rest_event("GET", "/api/notifications", token))
    rest = first_events(("app", page))
    assert rest["result"]["statusCode"] == 200, rest["result"]
    assert "chalicelib.contract" in rest["loaded"]
    unwanted = {"chalicelib.protocol", "chalicelib.examples", "chalicelib.sessions"}
    assert sorted(unwanted & set(rest["loaded"])) == []


COLLECTOR_CHILD = FUNCTION_CHILD.replace(
    "    import app\n", "    import app, gc\n    during_init = gc.isenabled()\n"
).replace('"loaded":', '"collector": [during_init, gc.isenabled()], "loaded":')


def test_in_lambda_the_collector_stays_off_until_the_first_event_is_answered() -> None:
    """In Lambda (AWS_LAMBDA_FUNCTION_NAME set) the first event ends the cold start: the
    collector is still off after `import app` and on once that event is answered."""
    from devstack.messaging import scheduled_event

    figures = first_events(
        ("escalation_sweep", scheduled_event(REGION, "sweep")),
        child=COLLECTOR_CHILD,
        env={"AWS_LAMBDA_FUNCTION_NAME": "f"},
    )
    assert figures["result"] == {"due": 0, "outcomes": {}}
    assert figures["collector"] == [False, True]


FAILING_FIRST_EVENT_CHILD = """\
import gc, json
from moto import mock_aws
with mock_aws():
    from devstack.context import LambdaContext
    from devstack.messaging import scheduled_event
    import app
    during_init = gc.isenabled()
    try:
        sweep = scheduled_event("us-east-1", "sweep")
        app.escalation_sweep(sweep, LambdaContext(function_name="f"))
    except Exception as exc:
        raised = type(exc).__name__
    else:
        raised = None
    print(json.dumps({"raised": raised, "collector": [during_init, gc.isenabled()],
                      "first": app.app.middleware_handlers[0][0].__name__}))
"""


def test_in_lambda_a_first_event_that_raises_still_turns_the_collector_back_on() -> None:
    """A first event that fails (here a sweep with no tables behind it) leaves no container
    running without the collector; its middleware is the outermost, so no other one can skip
    it."""
    import os

    printed = python_child(
        FAILING_FIRST_EVENT_CHILD, {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "f"}
    )
    figures = json.loads(printed.splitlines()[-1])
    assert figures["raised"] == "ResourceNotFoundException"
    assert figures["collector"] == [False, True]
    assert figures["first"] == "collect_after_the_first_event"


# --- botocore's endpoint data, cut to the services the app calls ----------------------------


@pytest.fixture
def whole_endpoints() -> dict[str, Any]:
    """botocore's endpoint data, read afresh (botocore's resolver changes what it is given)."""
    from botocore.loaders import create_loader

    data: dict[str, Any] = create_loader().load_data("endpoints")
    return data


@pytest.fixture
def trimmed_file(tmp_path: Path, whole_endpoints: dict[str, Any]) -> Path:
    """The file infra/package.py writes into the package, from this botocore's data."""
    import json

    from chalicelib.wiring import ENDPOINT_PREFIXES
    from tests.test_infra import packaging

    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(packaging.trimmed_endpoints(whole_endpoints, ENDPOINT_PREFIXES)))
    return path


def test_the_cut_endpoint_data_resolves_every_region_as_botocores_whole_file(
    trimmed_file: Path, whole_endpoints: dict[str, Any]
) -> None:
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    from chalicelib.wiring import ENDPOINT_PREFIXES, TrimmedEndpoints

    trimmed = TrimmedEndpoints(trimmed_file, create_loader())
    whole = EndpointResolver(whole_endpoints, uses_builtin_data=True)
    regions = [
        (partition["partition"], region)
        for partition in whole_endpoints["partitions"]
        for region in [*partition["regions"], "xx-unknown-1"]
    ]
    assert len(regions) > 30
    compared = 0
    for service in sorted(ENDPOINT_PREFIXES):
        for partition, region in regions:
            for variant in ({}, {"use_fips_endpoint": True}, {"use_dualstack_endpoint": True}):
                expected = _resolved(whole, service, region, partition, **variant)
                assert _resolved(trimmed, service, region, partition, **variant) == expected, (
                    service,
                    region,
                    variant,
                )
                compared += isinstance(expected, dict)
        assert trimmed.get_available_endpoints(service) == whole.get_available_endpoints(service)
    assert compared > 100
    # A service outside the cut is answered from the whole file, read then.
    assert "whole" not in vars(trimmed)
    assert trimmed.construct_endpoint("s3", "eu-west-1") == whole.construct_endpoint(
        "s3", "eu-west-1"
    )


def test_a_session_with_the_cut_data_makes_the_same_clients_without_the_whole_file(
    trimmed_file: Path,
) -> None:
    """Each client the service uses gets the endpoint, region and signing of a plain botocore
    session's, and botocore's 1.2 MB endpoints.json is never opened."""
    plain = botocore.session.Session()
    expected = {name: plain.create_client(name, region_name="eu-west-2") for name in SERVICES}
    _opened.clear()
    _listening.append(True)
    try:
        session = SdkSession(endpoints=trimmed_file)
        made = {name: session.client(name, region_name="eu-west-2") for name in SERVICES}
    finally:
        _listening.clear()
    assert str(trimmed_file) in _opened
    assert [path for path in _opened if path.endswith(("endpoints.json", "endpoints.json.gz"))] == [
        str(trimmed_file)
    ]
    for name, client in made.items():
        assert client.meta.endpoint_url == expected[name].meta.endpoint_url, name
        assert client.meta.region_name == expected[name].meta.region_name
        assert client.meta.partition == expected[name].meta.partition
        assert client._request_signer._signing_name == expected[name]._request_signer._signing_name


def _resolved(resolver: Any, *args: Any, **kwargs: Any) -> Any:
    """What `construct_endpoint` answers, or the name of the error it raises."""
    try:
        return resolver.construct_endpoint(*args, **kwargs)
    except Exception as exc:
        return type(exc).__name__


def test_the_package_carries_the_endpoint_data_cut_to_the_apps_services(
    lambda_package: Path, whole_endpoints: dict[str, Any]
) -> None:
    """What `make package` writes beside wiring.py, from the botocore it packages with."""
    import json
    import zipfile

    from chalicelib.wiring import ENDPOINT_PREFIXES
    from tests.test_infra import packaging

    with zipfile.ZipFile(lambda_package / "deployment.zip") as archive:
        shipped = json.loads(archive.read("chalicelib/endpoints.json"))
    cut = packaging.trimmed_endpoints(whole_endpoints, ENDPOINT_PREFIXES)
    assert shipped == json.loads(json.dumps(cut))
    assert {"dynamodb", "sqs", "sns"} <= set(shipped["partitions"][0]["services"])


@pytest.fixture
def cut_models(tmp_path: Path) -> Path:
    """The DynamoDB model infra/package.py writes into the package, from this botocore's."""
    import json

    from tests.test_infra import packaging

    for entry, data in packaging.sdk_models().items():
        path = tmp_path / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        json.loads(data)
    return tmp_path / packaging.SDK_DATA_ENTRY


def _dynamodb_method_names() -> dict[str, str]:
    """The DynamoDB client's methods and their operations, as botocore names them."""
    client = botocore.session.Session().create_client("dynamodb", region_name=REGION)
    mapping: dict[str, str] = client.meta.method_to_api_mapping
    return mapping


def test_the_cut_dynamodb_model_holds_every_operation_the_app_calls() -> None:
    """Every DynamoDB call in chalicelib (a client method, or one named in a table of them) is
    one of the cut's operations, and the cut holds no operation nothing calls."""
    import ast

    from chalicelib.wiring import DYNAMODB_OPERATIONS

    methods = _dynamodb_method_names()
    called: set[str] = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in methods:
                called.add(methods[node.attr])
            if isinstance(node, ast.Constant) and node.value in methods:
                called.add(methods[node.value])  # getattr(client, "put_item")
    assert called == DYNAMODB_OPERATIONS


def test_the_cut_dynamodb_model_is_botocores_for_those_operations(cut_models: Path) -> None:
    """Each kept operation and every shape it reaches are botocore's own, to the letter, and no
    shape is missing: a client makes the same requests and reads the same answers."""
    import json

    from botocore.loaders import create_loader

    from chalicelib.wiring import DYNAMODB_OPERATIONS

    whole = create_loader().load_service_model("dynamodb", "service-2")
    [path] = list(cut_models.glob("dynamodb/*/service-2.json"))
    cut = json.loads(path.read_text())
    assert set(cut["operations"]) == DYNAMODB_OPERATIONS
    assert cut["metadata"] == whole["metadata"]
    assert all(cut["operations"][name] == whole["operations"][name] for name in cut["operations"])
    assert all(cut["shapes"][name] == whole["shapes"][name] for name in cut["shapes"])
    referenced = {
        ref["shape"]
        for shape in cut["shapes"].values()
        for ref in (
            *(shape[part] for part in ("member", "key", "value") if part in shape),
            *shape.get("members", {}).values(),
        )
    }
    assert referenced <= set(cut["shapes"])
    assert len(cut["shapes"]) < len(whole["shapes"]) / 2


def test_a_session_with_the_cut_model_reads_it_and_talks_to_dynamodb(
    dynamodb: Any, cut_models: Path
) -> None:
    """The cut is read instead of botocore's DynamoDB model, and its client works (inside
    moto): a write and a read back."""
    _opened.clear()
    _listening.append(True)
    try:
        client = SdkSession(models=cut_models).client("dynamodb", region_name=REGION)
    finally:
        _listening.clear()
    models = [path for path in _opened if "service-2.json" in path]
    assert models and all(path.startswith(str(cut_models)) for path in models), models
    key = {"connection_id": {"S": "cut-model"}}
    client.put_item(TableName="connections", Item={**key, "user_id": {"S": "u"}})
    item = client.get_item(TableName="connections", Key=key, ConsistentRead=True)["Item"]
    assert item["user_id"] == {"S": "u"}
    assert not hasattr(client, "scan")  # an operation outside the cut


def test_the_package_carries_the_cut_dynamodb_model(lambda_package: Path, cut_models: Path) -> None:
    import zipfile

    with zipfile.ZipFile(lambda_package / "deployment.zip") as archive:
        shipped = {
            name: archive.read(name)
            for name in archive.namelist()
            if name.startswith("chalicelib/sdk_data/")
        }
    expected = {
        f"chalicelib/sdk_data/{path.relative_to(cut_models)}": path.read_bytes()
        for path in cut_models.rglob("*.json")
    }
    assert shipped == expected
