"""The README's Python API, run as written against a started stack: the snippet is read from
README.md (so the docs cannot drift) and run by bash in a clean environment, in a folder laid
out like a checkout, where the stack wrote its `.devstack/env`. And stage `local` never
reaches real AWS: without the stack's settings the same call is refused with a clear error."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from devstack.runtime import PROJECT_ROOT
from devstack.server import APP_SETTINGS
from devstack.stack import LocalStack
from tests.e2e.support import connect, http, recv_json

CLEAN = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


def readme_snippet() -> str:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    [block] = [block for block in blocks if "from chalicelib import send_notification" in block]
    return block


def checkout(tmp_path: Path) -> Path:
    """A folder with what the snippet touches: .venv, chalicelib (links to this project)."""
    for name in (".venv", "chalicelib"):
        (tmp_path / name).symlink_to(PROJECT_ROOT / name)
    return tmp_path


def test_the_readme_snippet_sends_through_the_running_stack(tmp_path: Path) -> None:
    snippet = readme_snippet()
    assert "set -a" in snippet and ".devstack/env" in snippet
    root = checkout(tmp_path)
    env_file = root / ".devstack" / "env"
    with LocalStack(env={"DEVSTACK_ENV_FILE": str(env_file)}) as stack:
        assert env_file.is_file()
        settings = env_file.read_text()
        assert f"REST_URL={stack.rest_url}" in settings
        assert "AWS_ACCESS_KEY_ID=testing" in settings

        async def listen_and_run() -> dict[str, object]:
            async with connect(stack.ws_url) as socket:
                await socket.send(
                    '{"action": "register", "token": "%s"}' % stack.token("alice")  # noqa: UP031
                )
                assert (await recv_json(socket))["event"] == "registered"
                result = await asyncio.to_thread(
                    subprocess.run,
                    ["bash", "-e", "-c", snippet],
                    cwd=root,
                    env=CLEAN,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert result.returncode == 0, result.stdout + result.stderr
                return await recv_json(socket, timeout=30)

        pushed = asyncio.run(listen_and_run())
        notification = pushed["notification"]
        assert pushed["event"] == "notification"
        assert isinstance(notification, dict)
        assert notification["user_id"] == "alice"
        assert notification["data"]["case_id"] == "12345"
        listed = http("GET", f"{stack.rest_url}/api/notifications", token=stack.token("alice"))
        assert [item["id"] for item in listed.body["items"]] == [notification["id"]]
    assert not env_file.exists(), "a stopped stack leaves no settings pointing at it"


# Credentials that look real (without the guard the call would go to AWS; were a request sent,
# the proxy would fail it differently), and none at all: the error is the same clear one.
REAL_LOOKING = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_DEFAULT_REGION": "us-east-1",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}
NONE = {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@pytest.mark.parametrize("credentials", [REAL_LOOKING, NONE], ids=["real-looking", "none"])
def test_without_the_stacks_settings_stage_local_refuses_aws_with_one_clear_error(
    tmp_path: Path, credentials: dict[str, str]
) -> None:
    python_part = readme_snippet().split("<<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    root = checkout(tmp_path)
    result = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-"],
        input=python_part,
        cwd=root,
        env={**CLEAN, "AWS_EC2_METADATA_DISABLED": "true", **credentials},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ConfigurationError: Stage 'local' never calls AWS" in result.stderr
    assert "DYNAMODB_ENDPOINT is not set" in result.stderr
    assert ". .devstack/env" in result.stderr
    for symptom in ("ProxyConnectionError", "EndpointConnection", "NoCredentialsError"):
        assert symptom not in result.stderr


def test_the_env_file_carries_every_setting_the_app_reads() -> None:
    source = (PROJECT_ROOT / "chalicelib" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.get)?\(\s*"([A-Z_]+)"', source))
    read |= set(re.findall(r'(?:integer|_choice)\(\s*(?:env,\s*)?"([A-Z_]+)"', source))
    assert {"STAGE", "DYNAMODB_ENDPOINT", "WEBSOCKET_ENDPOINT", "FANOUT_QUEUE_URL"} <= read
    assert read - APP_SETTINGS == set()
