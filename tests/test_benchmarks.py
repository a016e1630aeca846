"""Every benchmark runs: `python -m benchmarks --smoke NAME` (what `make bench` runs, in a tiny
configuration), so a benchmark broken by a refactor fails CI instead of rotting.

Each runs once, in its own interpreter, on the package the suite builds once (`lambda_package`,
handed over in $BENCH_PACKAGE); what its output must hold is checked here on that one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.__main__ import ORDER, modules
from benchmarks.coldstart import FUNCTIONS
from benchmarks.package import PREBUILT
from devstack.runtime import PROJECT_ROOT


def lifecycle_rows(out: str) -> None:
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert names[:2] == ["send, no live session", "send + push to 2 sessions"]
    assert "erase a user with 50 notifications" in names
    send_row = rows[2]
    # The send, then the `pushed` entry moving the tail its item holds: no read.
    assert "TransactWriteItems 2" in send_row and "PutItem" not in send_row


def aws_model_tables(out: str) -> None:
    assert "sequential baseline" in out
    assert "B=1" in out and "B=10" in out
    assert "one job at a time" in out
    assert "cost per million single-user sends" in out
    assert "today's main" in out and "with index writes" in out


def volume_rows(out: str) -> None:
    assert "Per-user volume" in out
    rows = {line.split()[1] for line in out.splitlines() if line.startswith("   GET ")}
    assert {"/api/me/export", "/api/notifications", "/api/users/{user_id}/erasure"} <= rows


def coldstart_ratios(out: str) -> None:
    for variant in ("boto3call", *FUNCTIONS, "nopyc", "rs256"):
        assert f"ratio {variant} / boto3 at " in out


def webpush_figures(out: str) -> None:
    for channel in ("push", "email", "sms"):
        assert f"| {channel} | " in out
    for variant in ("cryptography", "pywebpush"):
        assert f"ratio {variant} / app " in out


def webclient_baseline(out: str) -> None:
    assert "v1 baseline" in out and "up front" in out


def events_figures(out: str) -> None:
    assert "events per notification lifecycle: 6" in out
    assert "baseline, send -> push frame" in out and "receipt entry -> webhook (local): p50" in out
    assert "EventBridge events (5 per notice)" in out
    assert "fixed monthly cost of an idle stack" in out and "per 1,000 clients" in out


# What a benchmark's tiny run must print beyond "something".
EXPECTED: dict[str, Callable[[str], None]] = {
    "lifecycle": lifecycle_rows,
    "aws_model": aws_model_tables,
    "coldstart": coldstart_ratios,
    "webclient_size": webclient_baseline,
    "events": events_figures,
    "volume": volume_rows,
    "webpush": webpush_figures,
}


def test_every_benchmark_module_is_found() -> None:
    assert set(ORDER) <= set(modules())
    assert set(EXPECTED) <= set(modules())


@pytest.mark.parametrize("name", modules())
def test_benchmark_runs_in_a_tiny_configuration(name: str, lambda_package: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, PREBUILT: str(lambda_package)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert result.stdout.strip(), "a benchmark prints its figures"
    EXPECTED.get(name, lambda out: None)(result.stdout)
