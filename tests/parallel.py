"""How the suite runs in parallel: `make test` runs `pytest -n logical --dist loadgroup`
(pytest-xdist; by hand, give `-n` with `--dist loadgroup` too).

Each worker is its own process: its own moto, environment, stacks and browser, on free ports.
Two things are arranged across workers here:

- what runs where: a test file stays on one worker (its module fixtures are built once); the
  browser tests run together on one worker (one Chromium and one stack for them all, never two
  Chromiums competing for the CPU), and so do the end-to-end tests (their stacks) and the
  zip's (one moto server and one set of function processes);
- what is built once per run and shared (`built_once`): the packaged zip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# Folders whose tests run on one worker, in order, sharing package- and session-scoped stacks.
TOGETHER = ("tests/browser/", "tests/e2e/", "tests/lambda_runtime/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's xdist group (used by `--dist loadgroup`, harmless without xdist)."""
    for item in items:
        file = item.nodeid.split("::", 1)[0]
        group = next((folder for folder in TOGETHER if file.startswith(folder)), file)
        item.add_marker(pytest.mark.xdist_group(group))


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """`build(folder)`'s folder, built by the first worker that asks and shared by the others
    (the run's temporary folder is common to its workers; a lock makes the others wait)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    done = base / name
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            partial = base / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            build(partial).rename(done)
    return done
