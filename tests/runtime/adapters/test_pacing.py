"""Pacer: evenly spaced calls on a fake monotonic clock."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from bounce_runtime.adapters.pacing import Pacer


class FakeClock:
    """A monotonic clock that only moves when something sleeps or the test advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def released_times(pacer: Pacer, clock: FakeClock, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        pacer.wait()
        times.append(clock.now)
    return times


def test_calls_are_spaced_by_the_interval() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock=clock, sleep=clock.sleep)
    times = released_times(pacer, clock, 5)
    assert times == pytest.approx([1000.0, 1000.25, 1000.5, 1000.75, 1001.0])
    assert clock.sleeps == pytest.approx([0.25] * 4)


def test_call_k_waits_until_start_plus_k_over_rate_when_work_takes_time() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(4):
        pacer.wait()
        times.append(clock.now)
        clock.now += 0.2  # the call itself takes 0.2 s; the pacer only waits for the rest
    assert times == pytest.approx([1000.0, 1000.5, 1001.0, 1001.5])
    assert clock.sleeps == pytest.approx([0.3, 0.3, 0.3])


def test_budget_holds_across_invocations_sharing_one_pacer() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 0.4  # a new invocation starts 0.4 s later with the same module-level pacer
    assert pacer.delay() == pytest.approx(0.6)
    assert pacer.wait() == pytest.approx(0.6)
    assert clock.now == pytest.approx(1001.0)


def test_no_burst_after_idle() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, clock=clock, sleep=clock.sleep)
    released_times(pacer, clock, 2)
    clock.now += 60.0  # idle for a minute: the schedule restarts, it does not bank 120 calls
    times = released_times(pacer, clock, 3)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert gaps == pytest.approx([0.5, 0.5])


def test_every_window_of_one_second_holds_at_most_rate_calls() -> None:
    clock = FakeClock()
    pacer = Pacer(3.0, clock=clock, sleep=clock.sleep)
    times = []
    for index in range(30):
        pacer.wait()
        times.append(clock.now)
        clock.now += 0.7 if index % 7 == 0 else 0.01
    for start in times:
        in_window = [t for t in times if start <= t < start + 1.0 - 1e-9]
        assert len(in_window) <= 3


def test_delay_takes_no_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    assert pacer.delay() == 0.0
    assert pacer.delay() == 0.0
    assert pacer.wait() == 0.0
    assert pacer.delay() == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf, math.nan])
def test_rejects_a_rate_that_is_not_positive_and_finite(rate: float) -> None:
    with pytest.raises(ValueError) as raised:
        Pacer(rate)
    assert str(raised.value) == f"rate_per_second must be a finite number > 0, got {rate!r}"
