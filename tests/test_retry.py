"""The service's one backoff (retry.py): `Backoff.call` makes an attempt again only for an
error the caller says is worth it, at most `attempts` times, never pausing past a deadline,
and always on full jitter under a doubling ceiling. Pauses and time are fakes: nothing
sleeps."""

from __future__ import annotations

import pytest

from chalicelib.retry import Backoff


class Clock:
    """A clock that only the pauses (and the code under test, when it says so) move on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises each of `errors` in turn, then returns "ok"; counts its calls."""

    def __init__(self, *errors: Exception, takes: float = 0.0, clock: Clock | None = None) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.takes = takes
        self.clock = clock

    def __call__(self) -> str:
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.takes
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def always(_: Exception) -> bool:
    return True


def backoff(clock: Clock, attempts: int = 4) -> Backoff:
    return Backoff(attempts=attempts, base=0.1, cap=0.3, sleep=clock.sleep)


def test_an_attempt_that_fails_then_succeeds_returns_its_value_after_capped_jittered_pauses() -> (
    None
):
    clock = Clock()
    attempt = Flaky(TimeoutError("1"), TimeoutError("2"), TimeoutError("3"))
    assert backoff(clock).call(attempt, retryable=always) == "ok"
    assert attempt.calls == 4
    # Before attempt n + 1 a pause in [0, min(cap, base * 2**n)]: 0.2, 0.3 (capped), 0.3.
    ceilings = [0.2, 0.3, 0.3]
    assert len(clock.sleeps) == 3
    assert all(0 <= pause <= ceiling for pause, ceiling in zip(clock.sleeps, ceilings, strict=True))


def test_the_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    clock = Clock()
    errors = [TimeoutError(str(n)) for n in range(10)]
    attempt = Flaky(*errors)
    with pytest.raises(TimeoutError) as raised:
        backoff(clock, attempts=3).call(attempt, retryable=always)
    assert raised.value is errors[2]
    assert attempt.calls == 3 and len(clock.sleeps) == 2


def test_an_error_the_caller_says_cannot_be_fixed_is_raised_at_once() -> None:
    clock = Clock()
    permanent = PermissionError("no access")
    attempt = Flaky(TimeoutError("slow"), permanent)
    with pytest.raises(PermissionError) as raised:
        backoff(clock).call(attempt, retryable=lambda exc: isinstance(exc, TimeoutError))
    assert raised.value is permanent
    assert attempt.calls == 2 and len(clock.sleeps) == 1


def test_no_pause_runs_past_the_deadline() -> None:
    clock = Clock()
    attempt = Flaky(*(TimeoutError(str(n)) for n in range(10)), takes=1.5, clock=clock)
    until = clock.now + 2.5
    ends: list[float] = []
    policy = Backoff(
        attempts=10,
        base=0.1,
        cap=0.3,
        sleep=lambda seconds: (ends.append(clock.now + seconds), clock.sleep(seconds)),
    )
    with pytest.raises(TimeoutError):
        policy.call(attempt, retryable=always, until=until, clock=clock)
    # The first attempt ends at +1.5 s, a pause fits; the second ends after +3 s, none does.
    assert attempt.calls == 2
    assert len(ends) == 1 and ends[0] <= until


def test_once_the_deadline_has_passed_no_pause_is_taken() -> None:
    clock = Clock()
    attempt = Flaky(TimeoutError("1"), TimeoutError("2"))
    with pytest.raises(TimeoutError):
        Backoff(attempts=5, base=1.0, cap=1.0, sleep=clock.sleep).call(
            attempt, retryable=always, until=clock.now - 0.001, clock=clock
        )
    assert attempt.calls == 1 and clock.sleeps == []


def test_without_a_deadline_only_the_attempts_bound_it() -> None:
    clock = Clock()
    attempt = Flaky(*(TimeoutError(str(n)) for n in range(5)), takes=1_000.0, clock=clock)
    assert backoff(clock, attempts=6).call(attempt, retryable=always) == "ok"
    assert attempt.calls == 6


def test_pause_waits_under_the_same_doubling_ceiling() -> None:
    clock = Clock()
    policy = backoff(clock)
    for attempt in range(1, 6):
        policy.pause(attempt)
    ceilings = [min(0.3, 0.1 * 2**n) for n in range(1, 6)]
    assert all(0 <= pause <= ceiling for pause, ceiling in zip(clock.sleeps, ceilings, strict=True))
    assert len(clock.sleeps) == 5
