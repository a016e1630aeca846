"""The deployable template: `chalice package --merge-template infra/resources.json`, then lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WS_ROUTES = {"$connect", "$disconnect", "$default", "register", "mark_read", "get_notifications",
             "ack", "ping"}  # fmt: skip
FUNCTIONS = ["APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect",
             "FanoutWorker", "EscalationSweep"]  # fmt: skip


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    subprocess.run(
        [
            BIN / "chalice",
            "package",
            "--stage",
            "prod",
            "--merge-template",
            "infra/resources.json",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": str(BIN) + ":/usr/bin:/bin"},
    )
    return out


@pytest.fixture(scope="module")
def template(package: Path) -> dict[str, Any]:
    return json.loads((package / "sam.json").read_text())


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            found.extend(document["Statement"])
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else value


def test_cfn_lint_reports_nothing(package: Path) -> None:
    result = subprocess.run(
        [BIN / "cfn-lint", str(package / "sam.json")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lambda_zip_is_small(package: Path) -> None:
    assert (package / "deployment.zip").stat().st_size <= 10 * 1024 * 1024


def test_tables_have_ttl_pitr_and_encryption(template: dict[str, Any]) -> None:
    tables = resources_of(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"ConnectionsTable", "NotificationsTable"}
    for table in tables.values():
        properties = table["Properties"]
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": "expires_at",
            "Enabled": True,
        }
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        assert properties["SSESpecification"]["SSEEnabled"]


def test_every_websocket_route_is_declared_and_deployed(template: dict[str, Any]) -> None:
    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    assert {route["Properties"]["RouteKey"] for route in routes.values()} == WS_ROUTES
    for route in routes.values():
        if route["Properties"]["RouteKey"] not in {"$connect", "$disconnect"}:
            target = json.dumps(route["Properties"]["Target"])
            assert "WebsocketMessageAPIIntegration" in target
    deployment = template["Resources"]["WebsocketAPIDeployment"]
    assert set(deployment["DependsOn"]) == set(routes)


def test_iam_never_allows_scan_or_wildcard_dynamodb(template: dict[str, Any]) -> None:
    everything = statements(template)
    assert not any("Scan" in action for s in everything for action in actions(s))
    dynamodb = [s for s in everything if any(a.startswith("dynamodb:") for a in actions(s))]
    assert dynamodb
    for statement in dynamodb:
        resources = statement["Resource"]
        assert resources != "*" and "*" not in resources
        assert all("Table" in json.dumps(resource) for resource in resources)
    assert all(not a.endswith("*") for s in dynamodb for a in actions(s))


def test_manage_connections_is_scoped_to_this_api(template: dict[str, Any]) -> None:
    grants = [s for s in statements(template) if "execute-api:ManageConnections" in actions(s)]
    assert len(grants) == 1
    assert "${WebsocketAPI}/*/*/@connections/*" in json.dumps(grants[0]["Resource"])


def test_functions_get_their_settings_by_reference(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CONNECTIONS_TABLE"] == {"Ref": "ConnectionsTable"}
    assert variables["NOTIFICATIONS_TABLE"] == {"Ref": "NotificationsTable"}
    assert variables["WEBSOCKET_API_ID"] == {"Ref": "WebsocketAPI"}
    assert variables["FANOUT_QUEUE_URL"] == {"Ref": "FanoutQueue"}
    assert variables["JWT_SECRET_PARAMETER"] == {"Ref": "JwtSecretParameterName"}
    functions = resources_of(template, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for function in functions.values():
        assert function["Properties"]["Environment"]["Variables"]["STAGE"] == "prod"
        assert function["Properties"]["Runtime"] == "python3.13"
    assert 'JWT_SECRET"' not in json.dumps(template)


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


def test_alarms_and_throttling(template: dict[str, Any]) -> None:
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
