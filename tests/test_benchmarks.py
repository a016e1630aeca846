"""Every benchmark runs: `python -m benchmarks --smoke NAME` (what `make bench` runs, in a tiny
configuration), so a benchmark broken by a refactor fails CI instead of rotting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.__main__ import ORDER, modules
from devstack.runtime import PROJECT_ROOT


def test_every_benchmark_module_is_found() -> None:
    assert set(ORDER) <= set(modules())


@pytest.mark.parametrize("name", modules())
def test_benchmark_runs_in_a_tiny_configuration(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert result.stdout.strip(), "a benchmark prints its figures"
