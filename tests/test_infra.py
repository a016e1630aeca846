"""The deployable template and zip, as `make package` builds them (infra/package.py), checked
as written and as CloudFormation runs it: expanded by aws-sam-translator (the SAM transform)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WS_ROUTES = {
    "$connect",
    "$disconnect",
    "$default",
    "register",
    "mark_read",
    "get_notifications",
    "ack",
    "ping",
    "seen",
    "archive",
    "confirm",
}
FUNCTIONS = [
    "APIHandler",
    "WebsocketConnect",
    "WebsocketMessage",
    "WebsocketDisconnect",
    "FanoutWorker",
    "EscalationSweep",
    "EventsPublisher",
]
TEMPLATE_BODY_LIMIT = 51_200  # `aws cloudformation deploy` without --s3-bucket
TEMPLATE_S3_LIMIT = 1_000_000  # with --s3-bucket


def load_package_module() -> Any:
    spec = importlib.util.spec_from_file_location("infra_package", ROOT / "infra" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


packaging = load_package_module()


@pytest.fixture(scope="module")
def package(lambda_package: Path) -> Path:
    return lambda_package


@pytest.fixture(scope="module")
def template(package: Path) -> dict[str, Any]:
    return json.loads((package / "sam.json").read_text())


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation deploys it."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    raw = copy.deepcopy(template)
    for resource in raw["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/deployment.zip"  # as after upload
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(raw, {}, NoManagedPolicies())


@pytest.fixture(scope="module")
def expanded(template: dict[str, Any]) -> dict[str, Any]:
    return expand(template)


@pytest.fixture(scope="module")
def archive(package: Path) -> Iterator[zipfile.ZipFile]:
    with zipfile.ZipFile(package / "deployment.zip") as opened:
        yield opened


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    found = []
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]  # the statement when its condition holds
            found.append(statement)
    return found


def statements_of(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    resource = template["Resources"][name]
    if resource.get("Type") == "AWS::IAM::Role":
        return role_statements(template, name)
    if resource.get("Type") == "AWS::IAM::Policy":
        return resource["Properties"]["PolicyDocument"]["Statement"]
    return []


def all_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for name in template["Resources"] for s in statements_of(template, name)]


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else value


def references(node: Any) -> set[str]:
    """Logical ids a value depends on: Ref, Fn::GetAtt and ${...} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if isinstance(value, list):
                    found |= references(value[1])
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependencies(template: dict[str, Any], name: str) -> set[str]:
    """Every resource CloudFormation must finish before it creates `name`."""
    resources = template["Resources"]
    seen: set[str] = set()
    pending = [name]
    while pending:
        resource = resources[pending.pop()]
        depends = resource.get("DependsOn", [])
        direct = references(resource) | set([depends] if isinstance(depends, str) else depends)
        for found in direct & set(resources):
            if found not in seen:
                seen.add(found)
                pending.append(found)
    return seen


def function_role(template: dict[str, Any], function: str) -> str:
    role = template["Resources"][function]["Properties"]["Role"]
    assert role == {"Fn::GetAtt": [f"{function}Role", "Arn"]}
    return f"{function}Role"


def granted(template: dict[str, Any], function: str) -> set[str]:
    return {
        a for s in role_statements(template, function_role(template, function)) for a in actions(s)
    }


def test_cfn_lint_reports_nothing_including_informational(package: Path) -> None:
    result = subprocess.run(
        [BIN / "cfn-lint", "--include-checks", "I", "--", str(package / "sam.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sam_transform_expands_it(expanded: dict[str, Any]) -> None:
    functions = resources_of(expanded, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)


# --- 1. first-deploy race: the SQS mapping needs ReceiveMessage before it is created ------------


def test_the_sqs_mapping_is_created_after_its_receive_permissions(
    expanded: dict[str, Any],
) -> None:
    [name] = [
        name
        for name, mapping in resources_of(expanded, "AWS::Lambda::EventSourceMapping").items()
        if references(mapping["Properties"]["EventSourceArn"]) == {"FanoutQueue"}
    ]
    before = dependencies(expanded, name)
    grants = [
        resource
        for resource in before
        if expanded["Resources"][resource]["Type"] in {"AWS::IAM::Role", "AWS::IAM::Policy"}
        and any(
            "sqs:ReceiveMessage" in actions(statement)
            and references(statement["Resource"]) == {"FanoutQueue"}
            for statement in statements_of(expanded, resource)
        )
    ]
    assert grants == ["FanoutWorkerRole"]
    # No permission the mapping needs may live in a policy created beside it.
    assert not resources_of(expanded, "AWS::IAM::Policy")


# --- 2. WebSocket route changes are redeployed ------------------------------------------------


def test_the_websocket_deployment_id_follows_the_routes(template: dict[str, Any]) -> None:
    [(name, deployment)] = resources_of(template, "AWS::ApiGatewayV2::Deployment").items()
    digest = packaging.routes_digest(template)
    assert name == f"WebsocketAPIDeployment{digest}"
    assert deployment["Properties"]["Description"] == f"routes sha256:{digest}"
    stage = template["Resources"]["WebsocketAPIStage"]["Properties"]
    assert stage["DeploymentId"] == {"Ref": name}
    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    assert set(deployment["DependsOn"]) == set(routes)

    changed = copy.deepcopy(template)
    changed["Resources"]["WebsocketPingRoute"]["Properties"]["RouteKey"] = "pong"
    assert packaging.routes_digest(changed) != digest
    changed["Resources"]["WebsocketPingRoute"]["Properties"]["RouteKey"] = "ping"
    changed["Resources"]["ConnectionsTable"]["Properties"]["BillingMode"] = "PROVISIONED"
    assert packaging.routes_digest(changed) == digest  # unrelated changes keep the deployment


def test_every_websocket_route_is_declared_and_deployed(template: dict[str, Any]) -> None:
    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    assert {route["Properties"]["RouteKey"] for route in routes.values()} == WS_ROUTES
    for route in routes.values():
        if route["Properties"]["RouteKey"] not in {"$connect", "$disconnect"}:
            target = json.dumps(route["Properties"]["Target"])
            assert "WebsocketMessageAPIIntegration" in target


# --- 3. template size -----------------------------------------------------------------------


def test_template_size_and_the_deploy_command_uploads_it(package: Path) -> None:
    size = (package / "sam.json").stat().st_size
    print(f"template: {size} bytes")
    assert size < TEMPLATE_S3_LIMIT
    # Over the 51,200-byte inline limit (or close to it): every deploy command must upload it.
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for text in (makefile, readme):
        deploys = re.findall(r"aws cloudformation deploy[^\n]*(?:\\\n[^\n]*)*", text)
        assert deploys
        assert all("--s3-bucket" in command for command in deploys), deploys
    if size < TEMPLATE_BODY_LIMIT:
        pytest.skip("small enough to deploy inline too")


def test_the_readme_deploy_commands_match_the_template(template: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploy to AWS") : readme.index("### Capacity")]
    [deploy] = re.findall(r"aws cloudformation deploy[^`]*", section)
    assert "CAPABILITY_IAM" in deploy and "CAPABILITY_AUTO_EXPAND" in deploy
    assert "CAPABILITY_NAMED_IAM" not in deploy
    named_roles = [
        r
        for r in resources_of(template, "AWS::IAM::Role").values()
        if "RoleName" in r["Properties"]
    ]
    assert not named_roles  # else CAPABILITY_NAMED_IAM would be needed
    overrides = re.findall(r"(\w+)=", deploy.split("--parameter-overrides", 1)[1])
    assert overrides and set(overrides) <= set(template["Parameters"])
    table = section[section.index("| parameter |") :].split("\n\n")[0]
    documented = set(re.findall(r"^\s*\| `(\w+)`", table, re.MULTILINE))
    documented |= {"JwksUrl", "JwtIssuer", "JwtAudience"}
    assert documented == set(template["Parameters"])
    makefile = (ROOT / "Makefile").read_text()
    assert "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND" in makefile


# --- 4. least privilege per function --------------------------------------------------------


def test_each_function_has_its_own_role(template: dict[str, Any], expanded: dict[str, Any]) -> None:
    roles = [function_role(template, function) for function in FUNCTIONS]
    assert len(set(roles)) == len(FUNCTIONS)
    assert "DefaultRole" not in template["Resources"]
    for function in FUNCTIONS:
        role = expanded["Resources"][function]["Properties"]["Role"]
        assert role == {"Fn::GetAtt": [f"{function}Role", "Arn"]}


def test_only_what_each_function_uses(template: dict[str, Any]) -> None:
    connect, disconnect, message, api, worker = (
        granted(template, f)
        for f in [
            "WebsocketConnect",
            "WebsocketDisconnect",
            "WebsocketMessage",
            "APIHandler",
            "FanoutWorker",
        ]
    )
    receive = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    assert receive <= worker
    assert not receive & (connect | disconnect | message | api)
    # The WebSocket's user-wide read and archive hand what remains to a job on the queue.
    assert "sqs:SendMessage" in api & message and "sqs:SendMessage" not in connect | disconnect
    push = "execute-api:ManageConnections"
    assert push in api and push in message and push in worker
    assert push not in connect | disconnect  # $connect cannot push; $disconnect has no one to
    assert "ssm:GetParameter" not in disconnect  # it never verifies a token nor pushes
    # The worker never verifies a token: the only parameter it reads is the Web Push key.
    worker_role = template["Resources"][function_role(template, "FanoutWorker")]
    assert "${JwtSecretParameterName}" not in json.dumps(worker_role)
    assert "${VapidPrivateKeyParameterName}" in json.dumps(worker_role)
    assert "ssm:GetParameter" in connect & message & api
    assert "dynamodb:DeleteItem" not in connect
    assert not {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:GetItem"} & disconnect
    everything = connect | disconnect | message | api | worker
    assert not any(a.endswith(("Scan", "*")) for a in everything)


def test_resources_are_scoped(template: dict[str, Any]) -> None:
    for statement in all_statements(template):
        if statement.get("Sid") == "Tracing":
            assert set(actions(statement)) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
            continue  # X-Ray has no resource-level permissions
        if "NotResource" in statement:
            # SMS to a phone number has no ARN to name (IAM checks Publish against "*"): every
            # SNS ARN (topics, platform endpoints) is excluded, so only phone numbers remain.
            assert actions(statement) == ["sns:Publish"], statement
            assert statement["NotResource"] == {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}
            continue
        assert statement["Resource"] != "*" and "*" not in statement["Resource"], statement
    pushes = [s for s in all_statements(template) if "execute-api:ManageConnections" in actions(s)]
    for statement in pushes:
        assert "${WebsocketAPI}/*/POST/@connections/*" in json.dumps(statement["Resource"])


# --- 5. sizing --------------------------------------------------------------------------------


def test_sizing(template: dict[str, Any]) -> None:
    functions = resources_of(template, "AWS::Serverless::Function")
    for function in functions.values():
        assert function["Properties"]["MemorySize"] >= 1024  # ~0.6 vCPU: see README
    assert functions["APIHandler"]["Properties"]["Timeout"] <= 29  # API Gateway gives up at 29 s
    assert functions["WebsocketMessage"]["Properties"]["Timeout"] <= 29
    # The sweep stops starting steps 15 s before its deadline (app.py) and runs every minute.
    assert 30 <= functions["EscalationSweep"]["Properties"]["Timeout"] <= 60
    reserved = functions["APIHandler"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {
        "Fn::If": [
            "ReserveApiConcurrency",
            {"Ref": "ApiReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # New accounts have a concurrency quota of 10 and a reservation must leave 100 free:
    # nothing is reserved unless the operator asks (README "Deploy to AWS").
    assert template["Parameters"]["ApiReservedConcurrency"]["Default"] == 0


def test_visibility_timeout_is_derived_from_the_worker_timeout(template: dict[str, Any]) -> None:
    queue = template["Resources"]["FanoutQueue"]["Properties"]
    worker = template["Resources"]["FanoutWorker"]["Properties"]
    assert queue["VisibilityTimeout"] == 6 * worker["Timeout"]
    source = json.loads((ROOT / "infra" / "resources.json").read_text())
    assert "VisibilityTimeout" not in source["Resources"]["FanoutQueue"]["Properties"]
    changed = copy.deepcopy(template)
    changed["Resources"]["FanoutWorker"]["Properties"]["Timeout"] = 90
    assert packaging.derive_visibility_timeout(changed) == 540


def test_the_zip_holds_bytecode_python_313_uses(archive: zipfile.ZipFile) -> None:
    names = set(archive.namelist())
    tag = sys.implementation.cache_tag
    for module in ["app", "chalicelib/wiring", "chalicelib/auth", "pydantic/main", "chalice/app"]:
        directory, _, stem = module.rpartition("/")
        pyc = f"{directory + '/' if directory else ''}__pycache__/{stem}.{tag}.pyc"
        assert pyc in names, pyc
        header = archive.read(pyc)[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        # Flags 0b01: hash-based and unchecked, so the zip's timestamps cannot invalidate it.
        assert int.from_bytes(header[4:8], "little") == 0b01


def test_the_zip_leaves_out_what_nothing_imports(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    assert not [n for n in names if "swagger_ui" in n]
    assert not [n for n in names if n.endswith((".pyi", ".h"))]
    assert not [n for n in names if n.startswith(("boto3/", "botocore/"))]  # in the runtime


def test_the_zip_carries_a_lambda_build_of_cryptography(archive: zipfile.ZipFile) -> None:
    wheel = archive.read("cryptography-50.0.2.dist-info/WHEEL").decode()
    tags = re.findall(r"Tag: (\S+)", wheel)
    # Lambda's python3.13 runs on Amazon Linux 2023 (glibc 2.34), x86_64 as the template says.
    assert any(re.match(r"cp3\d+-abi3-manylinux_2_(\d+)_x86_64", tag) for tag in tags), tags
    assert all(int(m) <= 34 for m in re.findall(r"manylinux_2_(\d+)", " ".join(tags)))


def test_the_lambda_zip_is_small(package: Path) -> None:
    size = (package / "deployment.zip").stat().st_size
    print(f"zip: {size} bytes")
    assert size <= 15 * 1024 * 1024  # cryptography alone is ~5 MB


# --- 6. operability -----------------------------------------------------------------------------


def test_each_function_logs_to_its_own_group_with_retention(
    template: dict[str, Any], expanded: dict[str, Any]
) -> None:
    groups = set()
    for function in FUNCTIONS:
        logging = expanded["Resources"][function]["Properties"]["LoggingConfig"]
        [group] = references(logging["LogGroup"])
        resource = template["Resources"][group]
        assert resource["Type"] == "AWS::Logs::LogGroup"
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        logs = [s for s in role_statements(template, f"{function}Role") if s["Sid"] == "Logs"]
        assert references(logs[0]["Resource"]) == {group}
        assert "logs:CreateLogGroup" not in actions(logs[0])  # it exists before the function
        groups.add(group)
    assert len(groups) == len(FUNCTIONS)


def test_tracing_is_active(template: dict[str, Any], expanded: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        assert expanded["Resources"][function]["Properties"]["TracingConfig"] == {"Mode": "Active"}
    stages = resources_of(expanded, "AWS::ApiGateway::Stage")
    assert all(stage["Properties"]["TracingEnabled"] for stage in stages.values())


def test_access_logs_on_both_apis(expanded: dict[str, Any]) -> None:
    [rest] = resources_of(expanded, "AWS::ApiGateway::Stage").values()
    assert references(rest["Properties"]["AccessLogSetting"]) == {"RestApiAccessLogs"}
    websocket = expanded["Resources"]["WebsocketAPIStage"]
    assert references(websocket["Properties"]["AccessLogSettings"]) == {"WebsocketApiAccessLogs"}
    # API Gateway writes logs through the account's CloudWatch role: set before the stages.
    assert "ApiGatewayAccount" in dependencies(expanded, "WebsocketAPIStage")
    [(rest_name, _)] = resources_of(expanded, "AWS::ApiGateway::Stage").items()
    assert "ApiGatewayAccount" in dependencies(expanded, rest_name)


def test_tables_are_retained(template: dict[str, Any]) -> None:
    tables = resources_of(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"ConnectionsTable", "NotificationsTable", "ReceiptsTable"}
    for table in tables.values():
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"
        properties = table["Properties"]
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": "expires_at",
            "Enabled": True,
        }
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        assert properties["SSESpecification"]["SSEEnabled"]


def test_dashboard_and_alarms(template: dict[str, Any]) -> None:
    dashboard = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", dashboard[0]))
    titles = {widget["properties"]["title"] for widget in body["widgets"]}
    assert {"Errors", "Throttles", "Fan-out queue"} <= titles
    named = references(template["Resources"]["Dashboard"])
    assert set(FUNCTIONS) | {"FanoutQueue", "FanoutDeadLetterQueue", "WebsocketAPI"} <= named
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert "FanoutDeadLetterAlarm" in alarms
    assert {f"{name}ErrorsAlarm" for name in FUNCTIONS} <= set(alarms)
    stage = template["Resources"]["WebsocketAPIStage"]["Properties"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    rest = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"][0]
    assert rest["ThrottlingRateLimit"] > 0
    outputs = template["Outputs"]
    assert "wss://" in json.dumps(outputs["WebsocketConnectEndpointURL"])
    assert "https://" in json.dumps(outputs["EndpointURL"])


def test_fanout_queue_redrives_to_a_dead_letter_queue(template: dict[str, Any]) -> None:
    queue = template["Resources"]["FanoutQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["FanoutDeadLetterQueue", "Arn"]
    }
    event = template["Resources"]["FanoutWorker"]["Properties"]["Events"][
        "FanoutWorkerSqsEventSource"
    ]["Properties"]
    assert event["Queue"] == {"Fn::Sub": "${FanoutQueue.Arn}"}
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# --- 7. prod by default ---------------------------------------------------------------------------


def test_make_package_defaults_to_prod(template: dict[str, Any]) -> None:
    assert re.search(r"^STAGE \?= prod$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    for function in resources_of(template, "AWS::Serverless::Function").values():
        assert function["Properties"]["Environment"]["Variables"]["STAGE"] == "prod"
        assert function["Properties"]["Runtime"] == "python3.13"


# --- settings and Cognito -----------------------------------------------------------------------


def test_functions_get_their_settings_by_reference(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CONNECTIONS_TABLE"] == {"Ref": "ConnectionsTable"}
    assert variables["NOTIFICATIONS_TABLE"] == {"Ref": "NotificationsTable"}
    assert variables["WEBSOCKET_API_ID"] == {"Ref": "WebsocketAPI"}
    assert variables["FANOUT_QUEUE_URL"] == {"Ref": "FanoutQueue"}
    assert variables["JWT_SECRET_PARAMETER"] == {"Ref": "JwtSecretParameterName"}
    assert 'JWT_SECRET"' not in json.dumps(template)


def test_the_optional_user_pool_is_wired_to_the_jwks_settings(template: dict[str, Any]) -> None:
    assert template["Parameters"]["UserPool"]["AllowedValues"] == ["none", "create"]
    for name in ("CognitoUserPool", "CognitoUserPoolClient", "CognitoAdminGroup"):
        assert template["Resources"][name]["Condition"] == "CreateUserPool"
    assert template["Resources"]["CognitoUserPool"]["DeletionPolicy"] == "Retain"
    group = template["Resources"]["CognitoAdminGroup"]["Properties"]["GroupName"]
    assert group == {"Ref": "AdminGroup"}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    jwks = variables["JWT_JWKS_URL"]["Fn::If"]
    issuer = variables["JWT_ISSUER"]["Fn::If"]
    assert jwks[0] == issuer[0] == "CreateUserPool"
    assert jwks[1]["Fn::Sub"] == issuer[1]["Fn::Sub"] + "/.well-known/jwks.json"
    assert "cognito-idp.${AWS::Region}.amazonaws.com/${CognitoUserPool}" in issuer[1]["Fn::Sub"]
    assert variables["JWT_AUDIENCE"]["Fn::If"][1] == {"Ref": "CognitoUserPoolClient"}
    assert variables["ADMIN_GROUP"] == {"Ref": "AdminGroup"}
    assert (jwks[2], issuer[2]) == ({"Ref": "JwksUrl"}, {"Ref": "JwtIssuer"})


def test_every_variant_expands(template: dict[str, Any]) -> None:
    """With the user pool and without the secret parameter the transform still succeeds."""
    variant = copy.deepcopy(template)
    variant["Parameters"]["UserPool"]["Default"] = "create"
    variant["Parameters"]["JwtSecretParameterName"]["Default"] = ""
    variant["Parameters"]["ApiReservedConcurrency"]["Default"] = 0
    assert resources_of(expand(variant), "AWS::Cognito::UserPool")


# --- the zip's own auth path, in a Lambda-like interpreter ----------------------------------------

ZIP_CHILD = """
import json, sys
sys.path[:0] = sys.argv[1:3]
import boto3
from chalicelib.auth import build_verifier
from chalicelib.settings import Settings
from chalicelib.token_keys import token_keys
settings = Settings.from_env()
verifier = build_verifier(settings, token_keys(settings, boto3.session.Session()))
principal = verifier.verify(sys.argv[3])
crypto = sys.modules.get("cryptography")
print(json.dumps({"user": principal.user_id, "admin": principal.is_admin,
                  "cryptography": crypto.__file__ if crypto else None}))
"""


@pytest.fixture(scope="module")
def lambda_layout(package: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The zip unpacked as /var/task, and a directory with only what the runtime ships."""
    import boto3

    task = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(package / "deployment.zip") as opened:
        opened.extractall(task)
    runtime = tmp_path_factory.mktemp("runtime")
    site = Path(boto3.__file__).resolve().parent.parent
    for name in ("boto3", "botocore", "s3transfer", "dateutil", "jmespath", "urllib3", "six.py"):
        (runtime / name).symlink_to(site / name)
    return task, runtime


def verify_in_zip(layout: tuple[Path, Path], token: str, env: dict[str, str]) -> dict[str, Any]:
    task, runtime = layout
    result = subprocess.run(
        [sys.executable, "-S", "-B", "-c", ZIP_CHILD, str(task), str(runtime), token],
        cwd=task,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_zip_verifies_cognito_tokens_with_its_own_cryptography(
    lambda_layout: tuple[Path, Path],
) -> None:
    from tests.test_auth import AUDIENCE, ISSUER, Issuer, hs256

    issuer = Issuer()
    try:
        env = {
            "STAGE": "dev",
            "JWT_SECRET": "s" * 32,
            "JWT_JWKS_URL": issuer.url,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
        }
        rs = verify_in_zip(lambda_layout, issuer.token(**{"cognito:groups": ["admins"]}), env)
        assert rs["user"] == "alice" and rs["admin"]
        assert rs["cryptography"].startswith(str(lambda_layout[0]))  # the zip's manylinux build
        hs = verify_in_zip(lambda_layout, hs256({"sub": "svc", "exp": 2_000_000_000}), env)
        assert hs == {"user": "svc", "admin": False, "cryptography": None}
    finally:
        issuer.server.close()


# --- events out: the receipts stream, the bus, the webhook --------------------------------------


def test_the_receipts_stream_feeds_the_publisher_with_partial_failures_and_an_on_failure_queue(
    template: dict[str, Any], expanded: dict[str, Any]
) -> None:
    table = template["Resources"]["ReceiptsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    [(name, mapping)] = [
        (name, mapping)
        for name, mapping in resources_of(expanded, "AWS::Lambda::EventSourceMapping").items()
        if mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["ReceiptsTable", "StreamArn"]}
    ]
    properties = mapping["Properties"]
    assert properties["FunctionName"] == {"Ref": "EventsPublisher"}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 < properties["MaximumRetryAttempts"] <= 20
    assert properties["MaximumRecordAgeInSeconds"] <= 86400  # the stream keeps records 24 h
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]
    }
    [only_inserts] = properties["FilterCriteria"]["Filters"]
    assert json.loads(only_inserts["Pattern"]) == {"eventName": ["INSERT"]}
    # The mapping polls with the function's role: its permissions exist before it.
    assert "EventsPublisherRole" in dependencies(expanded, name)
    statements = {s["Sid"]: s for s in role_statements(template, "EventsPublisherRole")}
    assert statements["ReceiptsStream"]["Resource"] == {
        "Fn::GetAtt": ["ReceiptsTable", "StreamArn"]
    }
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"} <= set(
        actions(statements["ReceiptsStream"])
    )
    assert statements["OnFailure"]["Resource"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert references(alarms["EventsDeadLetterAlarm"]) >= {"EventsDeadLetterQueue"}
    assert alarms["EventsDeadLetterAlarm"]["Properties"]["Threshold"] == 0
    assert alarms["EventsPublisherIteratorAgeAlarm"]["Properties"]["MetricName"] == "IteratorAge"


def test_the_publisher_may_put_events_on_the_stacks_bus_only(template: dict[str, Any]) -> None:
    bus = template["Resources"]["NotificationEvents"]
    assert bus["Type"] == "AWS::Events::EventBus"
    puts = [s for s in all_statements(template) if "events:PutEvents" in actions(s)]
    assert len(puts) == 1
    assert puts[0]["Resource"] == {"Fn::GetAtt": ["NotificationEvents", "Arn"]}
    assert granted(template, "EventsPublisher") == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "events:PutEvents",
        "sqs:SendMessage",
    }
    variables = template["Resources"]["EventsPublisher"]["Properties"]["Environment"]["Variables"]
    assert variables["EVENT_BUS_NAME"] == {"Ref": "NotificationEvents"}
    outputs = template["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": "NotificationEvents"}
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": ["NotificationEvents", "Arn"]}


WEBHOOK = {
    "WebhookConnection",
    "WebhookDestination",
    "WebhookRule",
    "WebhookRole",
    "WebhookDeadLetterQueue",
    "WebhookDeadLetterQueuePolicy",
    "WebhookDeadLetterAlarm",
}


def test_the_webhook_exists_only_when_its_url_and_key_are_given(
    template: dict[str, Any], expanded: dict[str, Any]
) -> None:
    parameters = template["Parameters"]
    assert parameters["WebhookUrl"]["Default"] == ""
    assert parameters["WebhookUrl"]["AllowedPattern"] == "^(https://.+)?$"
    assert parameters["WebhookApiKey"]["NoEcho"] is True
    assert parameters["WebhookRateLimit"]["Default"] > 0
    for name in WEBHOOK:
        assert template["Resources"][name]["Condition"] == "HasWebhook", name
        assert expanded["Resources"][name]["Condition"] == "HasWebhook", name
    condition = json.dumps(template["Conditions"]["HasWebhook"])
    assert '"WebhookUrl"' in condition and '"WebhookApiKey"' in condition
    # A URL without a key fails the deploy instead of creating nothing.
    [assertion] = template["Rules"]["WebhookNeedsApiKey"]["Assertions"]
    assert "WebhookApiKey" in json.dumps(assertion)
    assert "WebhookUrl" in json.dumps(template["Rules"]["WebhookNeedsApiKey"]["RuleCondition"])


def test_the_webhook_rule_sends_every_notice_event_with_retries_and_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    connection = resources["WebhookConnection"]["Properties"]
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "x-api-key",
        "ApiKeyValue": {"Ref": "WebhookApiKey"},
    }
    destination = resources["WebhookDestination"]["Properties"]
    assert destination["InvocationEndpoint"] == {"Ref": "WebhookUrl"}
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationRateLimitPerSecond"] == {"Ref": "WebhookRateLimit"}
    rule = resources["WebhookRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "NotificationEvents"}
    assert rule["EventPattern"] == {
        "source": ["legal-aid.notifications"],
        "detail-type": [{"prefix": "notice."}],
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookDestination", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    [invoke] = role_statements(template, "WebhookRole")
    assert actions(invoke) == ["events:InvokeApiDestination"]
    assert invoke["Resource"] == {"Fn::GetAtt": ["WebhookDestination", "Arn"]}
    [deliver] = resources["WebhookDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert deliver["Principal"] == {"Service": "events.amazonaws.com"}
    assert deliver["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["WebhookRule", "Arn"]
    }


def test_a_webhook_variant_expands_and_lints(template: dict[str, Any], tmp_path: Path) -> None:
    variant = copy.deepcopy(template)
    variant["Parameters"]["WebhookUrl"]["Default"] = "https://cases.example.org/hooks/notices"
    variant["Parameters"]["WebhookApiKey"]["Default"] = "k" * 32
    assert {"WebhookRule", "WebhookDestination"} <= set(expand(variant)["Resources"])
    path = tmp_path / "webhook.json"
    path.write_text(json.dumps(variant))
    result = subprocess.run(
        [BIN / "cfn-lint", "--include-checks", "I", "--", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sender_address_must_be_given_and_real(template: dict[str, Any]) -> None:
    """A placeholder sender deploys a stack whose every escalation email fails: refused."""
    email_from = template["Parameters"]["EmailFrom"]
    assert "Default" not in email_from  # a deploy without it fails at once
    pattern = re.compile(email_from["AllowedPattern"])
    assert pattern.match("notices@legalaid.example.net")
    for placeholder in ("notices@example.org", "notices@example.com", "", "notices"):
        assert not pattern.match(placeholder), placeholder
    alarm = template["Resources"]["EscalationProviderFailuresAlarm"]["Properties"]
    assert alarm["MetricName"] == "EscalationProviderFailures"
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (60, 1, 0)


def test_the_prod_template_carries_no_test_route(template: dict[str, Any]) -> None:
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert "/api/notifications" in paths and "/api/me" in paths
    assert not [path for path in paths if path.startswith("/api/test/")]
    assert "/api/test/" not in json.dumps(template)


def test_test_routes_stay_in_the_test_stages_only(template: dict[str, Any]) -> None:
    import app
    from chalicelib.rest import Access

    local = [spec.path for spec in app.api.routes if spec.access is Access.LOCAL]
    assert local, "app.py has a route for tests"
    assert all(path.startswith(packaging.TEST_ROUTE_PREFIX) for path in local)
    for stage, kept in (("dev", True), ("local", True), ("prod", False), ("staging", False)):
        copied = copy.deepcopy(template)
        paths = copied["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
        paths["/api/test/notification/{user_id}"] = {"post": {}}
        packaging.drop_test_routes(copied, stage)
        assert ("/api/test/notification/{user_id}" in paths) is kept
        assert "/api/notifications" in paths
