"""The project's own docs stand alone and say what the code does: no reference to documents
outside the repository, links that resolve, the receipt verification of docs/receipts.md run
as written against a real receipt, and facts the READMEs state checked against their source."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.wiring import Service
from tests.conftest import ADMIN, token

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "web" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT_SUFFIXES = {".py", ".md", ".js", ".mjs", ".cjs", ".ts", ".html", ".css", ".json", ".toml"}
# A contract file's name, its section sign and the folder it lives in (spelled so that this line
# does not match itself).
OUTSIDE = re.compile("|".join(("DESI" + "GN", "\u00a7", r"\.\./" + "shared")))


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    paths = [ROOT / name for name in listed]
    return [path for path in paths if path.suffix in TEXT_SUFFIXES and path.is_file()]


def test_nothing_refers_to_documents_outside_the_repository() -> None:
    files = tracked_text_files()
    assert len(files) > 100
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        if path.name != "package-lock.json"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    for link in relative:
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name}: {link}"
        if anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(heading) for heading in headings}, f"{doc.name}: {link}"


def test_the_docs_cover_the_project() -> None:
    names = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert {"protocol.md", "rest.md", "receipts.md", "escalation.md"} <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("protocol.md", "rest.md", "receipts.md", "escalation.md"):
        assert f"(docs/{name})" in readme


def receipts_verifier() -> Any:
    text = (ROOT / "docs" / "receipts.md").read_text(encoding="utf-8")
    [code] = [
        block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/receipts.md", "exec"), namespace)
    return namespace["verify"]


def test_the_documented_verification_accepts_a_real_receipt_and_rejects_tampering(
    http: Any, service: Service
) -> None:
    verify = receipts_verifier()
    body = {
        "user_id": "alice",
        "message": {"en": "Bring your passport", "es": "Traiga su pasaporte ñ"},
        "data": {"case_id": "12345", "nested": {"b": 1, "a": [1, 2]}},
        "requires_confirmation": True,
    }
    sent = http.post("/api/notifications", body=json.dumps(body), headers=ADMIN).json_body
    notification = sent["notification"]
    user = {"Authorization": f"Bearer {token('alice')}", "Content-Type": "application/json"}
    http.post(f"/api/notifications/{notification['id']}/confirm", headers=user)
    receipt = http.get(f"/api/notifications/{notification['id']}/receipt", headers=ADMIN).json_body
    assert [entry["type"] for entry in receipt["entries"]] == ["stored", "read", "confirmed"]
    assert receipt["verified"] is True
    assert verify(receipt, notification) is True
    assert verify(receipt) is True
    assert verify(receipt, {**notification, "message": "Bring your visa"}) is False
    tampered = json.loads(json.dumps(receipt))
    tampered["entries"][1]["at"] = "2020-01-01T00:00:00.000Z"
    assert verify(tampered) is False
    dropped = {**receipt, "entries": [receipt["entries"][0], receipt["entries"][2]]}
    assert verify(dropped) is False


def test_the_readmes_agree_on_the_deployed_rest_base_url() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage = config["stages"]["prod"]["api_gateway_stage"]
    urls = [
        url
        for doc in DOCS
        for url in re.findall(r"https://\w+\.execute-api\.[\w-]+\.amazonaws\.com/?[\w-]*",
                              doc.read_text(encoding="utf-8"))
    ]  # fmt: skip
    assert len(urls) >= 3
    assert all(url.endswith(f".amazonaws.com/{stage}") for url in urls), urls


def test_the_teardown_names_every_retained_table() -> None:
    resources = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]
    retained = [
        name
        for name, resource in resources.items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
        and resource.get("DeletionPolicy") == "Retain"
    ]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    teardown = readme[readme.index("**Tear down**") :].split("\n\n", 1)[0]
    words = {2: "two", 3: "three", 4: "four"}
    assert f"the {words[len(retained)]} tables" in teardown
    for table in retained:
        assert f"<{table}Name>" in teardown, table
