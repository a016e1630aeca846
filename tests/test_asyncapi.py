"""The AsyncAPI 3.0 document of the WebSocket API (asyncapi.json): generated from the contract
and the models the WebSocket edge uses, committed, served by the local stack, and validated by
the AsyncAPI initiative's own parser (npm @asyncapi/parser, run by node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib import models, protocol
from chalicelib.errors import ServiceError
from chalicelib.websocket import WebSocketApi
from devstack.asyncapi import DOCUMENT, build_document, render
from devstack.runtime import PROJECT_ROOT
from devstack.stack import LocalStack
from tests.e2e.support import http

CHECKER = PROJECT_ROOT / "devstack" / "asyncapi_check.cjs"
NODE = shutil.which("node")
PARSER = PROJECT_ROOT / "web" / "node_modules" / "@asyncapi" / "parser"


def parse_with_asyncapi_parser(path: Path) -> tuple[int, list[dict[str, Any]]]:
    if NODE is None or not PARSER.is_dir():
        pytest.fail("node and @asyncapi/parser are needed: run `npm ci --prefix web`")
    result = subprocess.run(
        [NODE, str(CHECKER), str(path)], capture_output=True, text=True, timeout=120
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, lines


def test_the_committed_document_is_the_generated_one() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(build_document()), (
        "asyncapi.json is outdated: run `.venv/bin/python -m devstack asyncapi` and commit it"
    )


def test_the_asyncapi_parser_finds_no_error_and_every_action_and_event() -> None:
    code, lines = parse_with_asyncapi_parser(DOCUMENT)
    problems = [line for line in lines if line.get("severity") in (0, 1)]
    assert code == 0 and problems == [], lines
    [summary] = [line["summary"] for line in lines if "summary" in line]
    assert summary["version"] == "3.0.0"
    assert set(summary["operations"]) == set(protocol.WS_ACTIONS) | {
        f"push_{event}" for event in protocol.WS_PUSHES
    }
    assert "ErrorEvent" in summary["messages"] and "RegisterFrame" in summary["messages"]


def test_the_parser_rejects_a_broken_document(tmp_path: Path) -> None:
    broken = build_document()
    del broken["components"]["schemas"]["RegisterFrame"]
    broken["operations"]["register"]["action"] = "publish"  # AsyncAPI 2's word, not 3's
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(broken))
    code, lines = parse_with_asyncapi_parser(path)
    assert code == 1
    assert [line for line in lines if line.get("severity") == 0]


def test_the_actions_are_the_websocket_edges_own() -> None:
    edge = WebSocketApi(lambda: None)  # type: ignore[arg-type, return-value]
    table = {action: model for action, (model, _) in edge._actions.items()}
    assert {action: spec.frame for action, spec in protocol.WS_ACTIONS.items()} == table


def test_every_error_code_a_client_can_receive_is_listed() -> None:
    schema = build_document()["components"]["schemas"]["ErrorEvent"]
    codes = set(schema["properties"]["code"]["enum"])
    assert codes >= {"invalid_json", "unknown_action", "validation_error", "unauthorized"}
    assert codes >= {"forbidden", "not_found", "rate_limited", "payload_too_large"}
    assert "internal_error" in codes and "gone" not in codes
    assert ServiceError.code in codes


def test_every_example_is_valid_for_its_model() -> None:
    document = build_document()
    messages = document["channels"]["notifications"]["messages"]
    checked = 0
    for name, message in messages.items():
        model = getattr(protocol, name)
        for example in message.get("examples", []):
            if name.endswith("Frame"):
                models.parse(model, example["payload"])
            else:
                assert model.model_validate(example["payload"]).to_wire()
            checked += 1
    assert checked == len(messages)
    register = messages["RegisterFrame"]["examples"][0]["payload"]
    assert register["locale"] == "es-ES"
    properties = document["components"]["schemas"]["RegisteredEvent"]["properties"]
    assert "locale" in properties


def test_the_local_stack_serves_the_document() -> None:
    with LocalStack() as stack:
        reply = http("GET", f"{stack.rest_url}/asyncapi.json")
    assert reply.status == 200
    assert reply.body == json.loads(DOCUMENT.read_text(encoding="utf-8"))
