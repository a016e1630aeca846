"""A LocalStack's child stops when the process that started it dies without stopping it (a
crashed test run), instead of holding its ports and CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings
from devstack.runtime import PROJECT_ROOT
from devstack.stack import STACK_SETTINGS
from tests.waiting import eventually

CRASHING_PARENT = """
import os
from devstack.stack import LocalStack
stack = LocalStack().start()
print(stack._process.pid, flush=True)
os._exit(0)  # no stop(), no atexit: as a crash
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_an_orphaned_stack_stops() -> None:
    parent = subprocess.run(
        [sys.executable, "-c", CRASHING_PARENT],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    child = int(parent.stdout.split()[-1])
    try:
        eventually(lambda: not running(child), "the orphaned stack to stop", timeout=20)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


class _ReadNames(dict[str, str]):
    """An empty environment that records the names read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.names.add(key)
        return default


def test_no_app_setting_leaks_from_the_callers_environment_into_a_stack() -> None:
    # A caller's SES_ENDPOINT, FANOUT_THRESHOLD or RECEIPTS_TABLE would point the stack's app
    # away from its own moto services and tables; the region alone is the caller's to choose.
    environment = _ReadNames()
    Settings.from_env(environment)
    assert environment.names - STACK_SETTINGS == {"AWS_REGION", "AWS_DEFAULT_REGION"}
