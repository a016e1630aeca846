"""The OpenAPI 3.1 document of the REST API (chalicelib/contract.py, rendered by
devstack/openapi.py): committed, served by the
local stack, and the checks no one here wrote: schemathesis, run from the document against
a local stack, finds no 5xx and no response that departs from the document."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import app as lambda_app
from chalicelib.rest import Access
from devstack.openapi import DOCUMENT, build_document, render
from devstack.stack import LocalStack
from tests.e2e.support import http

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,"
CHECKS += "response_schema_conformance"


def test_the_committed_document_is_the_generated_one() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(build_document()), (
        "openapi.json is outdated: run `.venv/bin/python -m devstack openapi` and commit it"
    )


def test_the_document_describes_every_route_of_the_app() -> None:
    document = build_document()
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    local = {
        (spec.method, spec.path) for spec in lambda_app.api.routes if spec.access is Access.LOCAL
    }
    declared = {(method, path) for path, entry in lambda_app.app.routes.items() for method in entry}
    assert local and not local & described
    assert described == declared - local
    bodies = {
        spec.path
        for spec in lambda_app.api.routes
        if spec.body is not None and spec.access is not Access.LOCAL
    }
    for path in bodies:
        [operation] = [op for op in document["paths"][path].values() if "requestBody" in op]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Admin principals are not rate limited; the limit is raised for the user-route pass.
    with LocalStack(env={"RATE_LIMIT_PER_MINUTE": "1000000"}) as stack:
        yield stack


def test_the_local_stack_serves_the_document(stack: LocalStack) -> None:
    reply = http("GET", f"{stack.rest_url}/openapi.json")
    assert reply.status == 200
    assert reply.body == json.loads(DOCUMENT.read_text(encoding="utf-8"))


# An erasure answers at once and finishes in the background, holding off sends to the user
# meanwhile with the documented 503: erasures are fuzzed in a pass of their own, so no generated
# send races a generated erasure and every 5xx left is a bug.
ERASURE = ("--include-name", "DELETE /api/users/{user_id}")
PASSES = {
    "admin": (True, ("--exclude-name", ERASURE[1])),
    "admin-erasure": (True, ERASURE),
    "user": (False, ()),
}


@pytest.mark.parametrize("name", list(PASSES))
def test_schemathesis_finds_no_5xx_and_no_departure_from_the_document(
    stack: LocalStack, name: str, tmp_path: Path
) -> None:
    admin, selection = PASSES[name]
    token = stack.token("schemathesis-admin" if admin else "schemathesis-user", admin=admin)
    command = [
        str(SCHEMATHESIS),
        "run",
        str(DOCUMENT),
        "--url",
        stack.rest_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "15",
        "--seed",
        "20261126",
        *selection,
        # One worker: requests in a pass run one after another.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    # Run from a temporary folder: schemathesis keeps a cache in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "passed" in result.stdout


def test_the_case_notices_csv_is_documented_and_served_as_text_csv(stack: LocalStack) -> None:
    operation = json.loads(DOCUMENT.read_text(encoding="utf-8"))["paths"][
        "/api/cases/{case_id}/notices"
    ]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    admin = stack.token("csv-admin", admin=True)
    reply = http(
        "GET",
        f"{stack.rest_url}/api/cases/c-csv/notices",
        token=admin,
        headers={"Accept": "text/csv"},
    )
    assert reply.status == 200
    assert reply.headers["Content-Type"].split(";")[0] == "text/csv"
    assert reply.body.startswith("notification_id,user_id,type,")


def test_every_operation_has_a_known_tag_and_its_bodies_have_valid_examples() -> None:
    from pydantic import TypeAdapter

    from chalicelib import bodies, contract, models

    document = build_document()
    tags = [tag["name"] for tag in document["tags"]]
    examples = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            [tag] = operation["tags"]
            assert tag in tags, (method, path)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                name = body["schema"]["$ref"].rsplit("/", 1)[1].removesuffix("Input")
                models.parse(getattr(bodies, name), body["example"])
                examples += 1
            for response in operation["responses"].values():
                reply = response.get("content", {}).get("application/json", {})
                if "example" in reply:
                    name = reply["schema"]["$ref"].rsplit("/", 1)[1]
                    TypeAdapter(contract.REPLY_MODELS[name]).validate_python(reply["example"])
                    examples += 1
    assert examples >= 30


def test_the_document_carries_no_route_for_tests_only() -> None:
    assert not [path for path in build_document()["paths"] if path.startswith("/api/test/")]
