"""The tests' one wait: it returns the check's answer once it holds, and fails clearly when it
never does (sync and async alike)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import aeventually, eventually


def test_eventually_returns_the_first_truthy_answer_after_failed_checks() -> None:
    answers = iter([None, AssertionError("not yet"), 0, "ready", "later"])

    def check() -> object:
        answer = next(answers)
        if isinstance(answer, AssertionError):
            raise answer
        return answer

    assert eventually(check, interval=0) == "ready"
    assert next(answers) == "later"


def test_eventually_fails_with_what_it_waited_for_and_the_last_answer() -> None:
    with pytest.raises(
        AssertionError, match=r"timed out after 0.05 s waiting for the inbox; last: \[\]"
    ):
        eventually(lambda: [], "the inbox", timeout=0.05, interval=0.01)


def test_eventually_fails_with_the_last_assertion_as_its_cause() -> None:
    def check() -> None:
        raise AssertionError("3 != 4")

    with pytest.raises(AssertionError, match="3 != 4") as failed:
        eventually(check, "four", timeout=0.05, interval=0.01)
    assert isinstance(failed.value.__cause__, AssertionError)


def test_aeventually_awaits_coroutine_checks_and_accepts_plain_ones() -> None:
    counter = itertools.count()

    async def coroutine_check() -> int:
        return next(counter) >= 2 and 42

    async def scenario() -> tuple[int, bool]:
        return await aeventually(coroutine_check, interval=0), await aeventually(lambda: True)

    assert asyncio.run(scenario()) == (42, True)


def test_aeventually_fails_on_timeout_instead_of_returning() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="waiting for the marker; last: False"):
        asyncio.run(aeventually(never, "the marker", timeout=0.05, interval=0.01))
