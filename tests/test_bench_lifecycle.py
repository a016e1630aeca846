"""benchmarks/lifecycle.py runs end to end in its tiny form and prints every row."""

from __future__ import annotations

import pytest

from benchmarks import lifecycle


def test_lifecycle_benchmark_prints_every_event(capsys: pytest.CaptureFixture[str]) -> None:
    lifecycle.main(tiny=True)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert names[:2] == ["send, no live session", "send + push to 2 sessions"]
    assert "erase a user with 50 notifications" in names
    send_row = rows[2]
    assert "TransactWriteItems 1" in send_row and "PutItem 1" in send_row
