"""A LocalStack's child stops when the process that started it dies without stopping it (a
crashed test run), instead of holding its ports and CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from devstack.runtime import PROJECT_ROOT
from tests.e2e.support import eventually

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
        eventually(lambda: not running(child), timeout=20)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
