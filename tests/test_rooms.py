"""Every module of chalicelib lives in one room, and does only what its room does.

- edge: parses the wire (frames, bodies, query strings, headers, Lambda event shapes) and
  answers it; never talks to AWS (no SDK, no store, no DynamoDB request).
- domain: decides what the contract decides (who may, what changes state, mutes, quiet hours,
  escalation, receipts); is handed its stores and clients, parses nothing, builds no key or
  DynamoDB request and talks to AWS only through them.
- aws: talks to AWS and the other services outside (DynamoDB, @connections, SES, SNS, SQS,
  EventBridge, SSM, push services); parses no request.
- shared: what every room uses (errors, settings, the retry policy, logs and metrics, the
  wire's plain rules).
- root: the composition root and the package's Python API.

The rules are read from the source with `ast`, like tests/test_import_graph.py: every import
that runs (at the top of a file or inside a function; those under `if TYPE_CHECKING:` are type
hints only). A module that breaks a rule, or a new module without a room, fails the test; the
few known exceptions are listed with why, and the test fails when one of them is gone too (then
delete its entry).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_import_graph import ROOT, modules, runtime_imports

EDGE, DOMAIN, AWS, SHARED, ROOT_ROOM = "edge", "domain", "aws", "shared", "root"

ROOMS: dict[str, str] = {
    "chalicelib": ROOT_ROOM,
    "chalicelib.wiring": ROOT_ROOM,
    # edges
    "chalicelib.rest": EDGE,
    "chalicelib.websocket": EDGE,
    "chalicelib.events": EDGE,
    "chalicelib.worker": EDGE,
    "chalicelib.models": EDGE,
    "chalicelib.bodies": EDGE,
    "chalicelib.contract": EDGE,
    "chalicelib.protocol": EDGE,
    "chalicelib.examples": EDGE,
    "chalicelib.auth": EDGE,
    # domain
    "chalicelib.notifications": DOMAIN,
    "chalicelib.delivery": DOMAIN,
    "chalicelib.sessions": DOMAIN,
    "chalicelib.ratelimit": DOMAIN,
    "chalicelib.accounts": DOMAIN,
    "chalicelib.receipts": DOMAIN,
    "chalicelib.rights": DOMAIN,
    "chalicelib.escalation": DOMAIN,
    "chalicelib.sweep": DOMAIN,
    "chalicelib.webpush": DOMAIN,
    "chalicelib.immigration": DOMAIN,
    "chalicelib.fanout": DOMAIN,
    "chalicelib.i18n": DOMAIN,
    # aws and the other services outside
    "chalicelib.messaging": AWS,
    "chalicelib.publisher": AWS,
    "chalicelib.pushservice": AWS,
    "chalicelib.secrets": AWS,
    "chalicelib.token_keys": AWS,
    "chalicelib.jobs": AWS,
    "chalicelib.ssrf": AWS,
    "chalicelib.storage": AWS,
    "chalicelib.storage.dynamo": AWS,
    "chalicelib.storage.keys": AWS,
    "chalicelib.storage.connections": AWS,
    "chalicelib.storage.inbox": AWS,
    "chalicelib.storage.directory": AWS,
    "chalicelib.storage.limits": AWS,
    "chalicelib.storage.receipts": AWS,
    "chalicelib.storage.escalations": AWS,
    "chalicelib.storage.profiles": AWS,
    "chalicelib.storage.subscriptions": AWS,
    "chalicelib.storage.erasures": AWS,
    "chalicelib.storage.cases": AWS,
    "chalicelib.storage.claims": AWS,
    # shared
    "chalicelib.errors": SHARED,
    "chalicelib.retry": SHARED,
    "chalicelib.settings": SHARED,
    "chalicelib.telemetry": SHARED,
    "chalicelib.wire": SHARED,
}

AWS_SDK = ("botocore", "boto3", "s3transfer", "mypy_boto3")
NETWORK = ("http.client", "socket", "ssl", "urllib.request")
WIRE_LIBRARIES = ("pydantic", "chalice")
# The modules of the wire's models and rules, which other rooms may use in part.
WIRE_MODULES = ("chalicelib.models", "chalicelib.protocol", "chalicelib.wire")
# What parses the wire in those modules (the models themselves are built by the edges).
WIRE_PARSERS = frozenset({"parse", "check_json", "validation_message", "page_event", "page_cut"})
# The wire modules whose parts only an edge may use.
EDGE_MODULES = frozenset(
    {"chalicelib.rest", "chalicelib.websocket", "chalicelib.contract", "chalicelib.examples"}
)
# What the aws room may take from chalicelib.models: the values it stores (domain objects
# that the wire also carries), never a request, frame or event.
STORED_VALUES = frozenset(
    {"Notification", "NotificationContent", "Preferences", "Contact"}
    | {"compact_json", "iso_timestamp", "from_b64url", "STATE_FIELDS", "MAX_DATA_DEPTH"}
)
# What an edge may read of the aws room: a value its answer depends on, no call.
EDGE_READS = frozenset({("chalicelib.messaging", "Outcome")})
# The words of a DynamoDB request: built only where DynamoDB is spoken to.
DYNAMODB_WORDS = frozenset(
    {"TableName", "KeyConditionExpression", "UpdateExpression", "ConditionExpression"}
)

# Known exceptions: (module, rule broken) -> why it stands for now.
KNOWN: dict[tuple[str, str], str] = {
    ("chalicelib.storage.inbox", "imports pydantic"): (
        "re-validates the stored items it reads (ValidationError): not the wire but the `doc` it "
        "wrote itself, read back; a corrupt or older item is skipped, logged, never handed out"
    ),
    ("chalicelib.storage.inbox", "imports chalicelib.models.check_json"): (
        "the same check of a stored item's `data` before it is handed out"
    ),
}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(
        module == p or module.startswith(f"{p}.") or module.startswith(f"{p}_") for p in prefixes
    )


def _calls(tree: ast.AST, names: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Attribute):
                dotted = function.attr
                if isinstance(function.value, ast.Name):
                    dotted = f"{function.value.id}.{function.attr}"
                found |= {dotted, function.attr} & names
    return found


def violations(name: str, room: str, tree: ast.AST, rooms: dict[str, str]) -> set[str]:
    """The rules of its room that module `name` breaks."""
    broken: set[str] = set()
    for module, imported in runtime_imports(tree):
        target = f"{module}.{imported}" if imported and f"{module}.{imported}" in rooms else module
        if room in (EDGE, DOMAIN) and _under(module, AWS_SDK + NETWORK):
            broken.add(f"imports {module}")
        if room in (AWS, DOMAIN) and _under(module, WIRE_LIBRARIES):
            broken.add(f"imports {module}")
        if room in (AWS, DOMAIN) and target in EDGE_MODULES:
            broken.add(f"imports {target}")
        if room == EDGE and rooms.get(target) == AWS and (module, imported) not in EDGE_READS:
            broken.add(f"imports {target}")
        if module in WIRE_MODULES and imported is not None:
            if room == DOMAIN and imported in WIRE_PARSERS:
                broken.add(f"imports {module}.{imported}")
            if room == AWS and imported not in STORED_VALUES:
                broken.add(f"imports {module}.{imported}")
        if room == DOMAIN and target in ("chalicelib.storage.dynamo", "chalicelib.storage.keys"):
            broken.add(f"imports {target}")
    if room == DOMAIN:
        parsers = {"json.loads", "model_validate", "model_validate_json"}
        broken |= {f"calls {call}" for call in _calls(tree, parsers)}
    if room in (EDGE, DOMAIN):
        words = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in DYNAMODB_WORDS
        }
        broken |= {f"builds a DynamoDB request ({word})" for word in words}
    return broken


def all_violations(root: Path, package: str, rooms: dict[str, str]) -> dict[tuple[str, str], str]:
    found = {}
    for name, path in modules(root, package).items():
        tree = ast.parse(path.read_text())
        for rule in violations(name, rooms[name], tree, rooms):
            found[(name, rule)] = str(path.relative_to(root))
    return found


def test_every_module_has_a_room() -> None:
    assert set(modules(ROOT, "chalicelib")) == set(ROOMS)


def test_every_module_keeps_to_its_room() -> None:
    found = all_violations(ROOT, "chalicelib", ROOMS)
    assert sorted(set(found) - set(KNOWN)) == []
    assert sorted(set(KNOWN) - set(found)) == [], "no longer broken: delete from KNOWN"


def _room_of(text: str, room: str) -> set[str]:
    tree = ast.parse(text)
    rooms = {**ROOMS, "pkg": room}
    return violations("pkg", room, tree, rooms)


@pytest.mark.parametrize(
    ("room", "text", "broken"),
    [
        (EDGE, "from botocore.exceptions import ClientError\n", {"imports botocore.exceptions"}),
        (EDGE, "def f():\n    import boto3\n", {"imports boto3"}),
        (EDGE, "import mypy_boto3_sqs\n", {"imports mypy_boto3_sqs"}),
        (
            EDGE,
            "from chalicelib.storage.inbox import Inbox\n",
            {"imports chalicelib.storage.inbox"},
        ),
        (EDGE, "from chalicelib.messaging import Sender\n", {"imports chalicelib.messaging"}),
        (EDGE, "from chalicelib.messaging import Outcome\n", set()),
        (EDGE, "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import boto3\n", set()),
        (AWS, "from pydantic import BaseModel\n", {"imports pydantic"}),
        (AWS, "from chalicelib.models import SeenFrame\n", {"imports chalicelib.models.SeenFrame"}),
        (AWS, "from chalicelib.models import Notification\n", set()),
        (
            AWS,
            "from chalicelib.protocol import NotificationEvent\n",
            {"imports chalicelib.protocol.NotificationEvent"},
        ),
        (
            DOMAIN,
            "from chalicelib.protocol import page_event\n",
            {"imports chalicelib.protocol.page_event"},
        ),
        (AWS, "from chalicelib.rest import Reply\n", {"imports chalicelib.rest"}),
        (DOMAIN, "import socket\n", {"imports socket"}),
        (
            DOMAIN,
            "from chalicelib.storage.dynamo import carrying\n",
            {"imports chalicelib.storage.dynamo"},
        ),
        (DOMAIN, "from chalicelib.models import parse\n", {"imports chalicelib.models.parse"}),
        (
            DOMAIN,
            "from chalicelib.storage.keys import user_pk\n",
            {"imports chalicelib.storage.keys"},
        ),
        (DOMAIN, "import json\njson.loads('1')\n", {"calls json.loads"}),
        (DOMAIN, "x = {'TableName': 't'}\n", {"builds a DynamoDB request (TableName)"}),
        (
            EDGE,
            "x = {'UpdateExpression': 'SET a = :a'}\n",
            {"builds a DynamoDB request (UpdateExpression)"},
        ),
        (DOMAIN, "Job.model_validate_json(body)\n", {"calls model_validate_json"}),
        (
            DOMAIN,
            "from chalicelib.storage.limits import Limits\n"
            "from chalicelib.models import Notification\n",
            set(),
        ),
    ],
)
def test_the_rules_see_what_they_forbid(room: str, text: str, broken: set[str]) -> None:
    assert _room_of(text, room) == broken
