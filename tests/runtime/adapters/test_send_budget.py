"""SendBudget on a fake clock against an in-memory budget item with DynamoDB's write semantics.

The real conditional expression is exercised against moto's DynamoDB server by the harness tests
(tests/harness/test_budget_*.py); here the point is the taker's logic, step by step in time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from itertools import combinations
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st

from bounce_runtime.adapters.send_budget import SendBudget, Slot
from bounce_runtime.contract import (
    REASON_SEND_BUDGET_UNAVAILABLE,
    SEND_BUDGET_LATE_TOLERANCE_S,
    SEND_BUDGET_LEAD_S,
    SEND_BUDGET_MARGIN_S,
    SEND_BUDGET_MAX_ATTEMPTS,
    SEND_BUDGET_RETRY_MAX_DELAY_S,
)
from bounce_runtime.errors import SendBudgetUnavailable
from support.fake_budget import BUDGET, START, TABLE, FakeBudgetTable, FakeClock, client_error


def budget(
    table: FakeBudgetTable, clock: FakeClock, rate: float = 1.0, **options: Any
) -> SendBudget:
    return SendBudget(
        table,
        table_name=TABLE,
        budget_id=BUDGET,
        rate_per_second=rate,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        **options,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> FakeBudgetTable:
    return FakeBudgetTable(clock)


SPACING = 1.0 + SEND_BUDGET_MARGIN_S
FAR = START + 3600.0


def test_first_slot_of_an_idle_budget_starts_after_the_lead(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    slot = budget(table, clock).take(latest_start_s=FAR)

    assert slot is not None
    assert slot.start_s == pytest.approx(START + SEND_BUDGET_LEAD_S)
    assert slot.attempts == 1
    assert float(table.items[BUDGET]) == pytest.approx(slot.start_s + SPACING)


def test_one_taker_gets_slots_one_spacing_apart_and_sleeps_until_each(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    taker = budget(table, clock, rate=2.0)
    starts = []
    for _ in range(4):
        slot = taker.acquire(latest_start_s=FAR)
        assert slot is not None
        assert clock.now == pytest.approx(slot.start_s)  # slept exactly until the slot
        starts.append(slot.start_s)

    spacing = 0.5 + SEND_BUDGET_MARGIN_S
    assert starts == pytest.approx([START + SEND_BUDGET_LEAD_S + k * spacing for k in range(4)])
    # The first take finds no item (a failed increment, then the item's creation); every later
    # take is one write.
    assert table.update_calls == 5


def test_a_restarted_taker_waits_for_the_shared_schedule(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    old_container = budget(table, clock)
    taken = [old_container.take(latest_start_s=FAR) for _ in range(3)]
    last = taken[-1]
    assert last is not None

    # The container is replaced 0.2 s later: the new one has no local state at all.
    clock.now += 0.2
    new_container = budget(table, clock)
    assert new_container.delay() == 0.0  # it knows nothing yet
    slot = new_container.acquire(latest_start_s=FAR)

    assert slot is not None
    assert slot.start_s == pytest.approx(last.start_s + SPACING)
    assert slot.attempts == 1  # one increment: no local state is needed, none is trusted
    assert clock.now == pytest.approx(slot.start_s)


@pytest.mark.parametrize("latest_offset", [-5.0, 0.0, SEND_BUDGET_LEAD_S / 2])
def test_latest_start_in_the_past_or_too_near_takes_nothing_and_writes_nothing(
    table: FakeBudgetTable, clock: FakeClock, latest_offset: float
) -> None:
    assert budget(table, clock).take(latest_start_s=START + latest_offset) is None
    assert table.update_calls == 0
    assert table.items == {}


def test_a_slot_beyond_latest_start_learned_from_a_lost_race_is_not_taken(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    busy = budget(table, clock)
    for _ in range(5):
        busy.take(latest_start_s=FAR)
    schedule = dict(table.items)
    granted = list(table.granted)

    newcomer = budget(table, clock)
    # Its guess (now) may start in time; the real next slot (5 spacings out) may not.
    assert newcomer.take(latest_start_s=START + 2.0) is None

    assert table.items == schedule
    assert table.granted == granted
    assert newcomer.delay() == pytest.approx(float(schedule[BUDGET]) - START)
    assert clock.sleeps == []  # it learned the schedule and gave up without waiting


def test_failed_condition_without_the_item_reads_it_consistently(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    budget(table, clock).take(latest_start_s=FAR)
    table.return_item = False

    slot = budget(table, clock).take(latest_start_s=FAR)

    assert slot is not None
    assert table.get_calls == 1
    assert slot.start_s == pytest.approx(START + SEND_BUDGET_LEAD_S + SPACING)


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("InternalServerError"),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
    ],
    ids=[
        "ProvisionedThroughputExceeded",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "EndpointConnectionError",
        "ReadTimeoutError",
    ],
)
def test_unreachable_or_throttled_budget_raises_after_bounded_attempts_and_takes_nothing(
    table: FakeBudgetTable, clock: FakeClock, error: Exception
) -> None:
    table.errors = [error] * SEND_BUDGET_MAX_ATTEMPTS

    with pytest.raises(SendBudgetUnavailable) as caught:
        budget(table, clock).take(latest_start_s=FAR)

    assert caught.value.reason == REASON_SEND_BUDGET_UNAVAILABLE
    assert f"{SEND_BUDGET_MAX_ATTEMPTS} attempts" in caught.value.message
    assert table.update_calls == SEND_BUDGET_MAX_ATTEMPTS
    assert table.items == {}
    assert len(clock.sleeps) == SEND_BUDGET_MAX_ATTEMPTS - 1
    assert all(0 <= s <= SEND_BUDGET_RETRY_MAX_DELAY_S for s in clock.sleeps)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_misconfigured_budget_raises_at_once(
    table: FakeBudgetTable, clock: FakeClock, code: str
) -> None:
    table.errors = [client_error(code)]

    with pytest.raises(SendBudgetUnavailable, match=code):
        budget(table, clock).take(latest_start_s=FAR)
    assert table.update_calls == 1
    assert clock.sleeps == []


def test_a_passing_error_is_retried_with_jitter_and_the_slot_taken(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    table.errors = [client_error("ThrottlingException"), client_error("InternalServerError")]

    slot = budget(table, clock).take(latest_start_s=FAR)

    assert slot is not None
    assert slot.attempts == 3
    assert len(clock.sleeps) == 2
    assert slot.take_seconds == pytest.approx(sum(clock.sleeps), abs=1e-6)


def test_every_attempt_losing_a_race_means_unavailable(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    class AlwaysRacing(FakeBudgetTable):
        """Another taker moves next_free just before each of our writes."""

        def update_item(self, **request: Any) -> Mapping[str, Any]:
            self.items[BUDGET] = self.items.get(BUDGET, Decimal(START)) + Decimal(SPACING)
            return super().update_item(**request)

    racing = AlwaysRacing(clock)
    with pytest.raises(SendBudgetUnavailable, match="32 writes brought no slot"):
        budget(racing, clock).take(latest_start_s=FAR)
    assert racing.granted == []


def test_a_slot_reached_late_is_moved_to_now_when_no_one_took_the_next(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    taker = budget(table, clock)
    # The write answers after lead + late tolerance: the first slot is already too late.
    write_s = SEND_BUDGET_LEAD_S + SEND_BUDGET_LATE_TOLERANCE_S + 0.005
    table.write_seconds = write_s

    slot = taker.acquire(latest_start_s=FAR)

    assert slot is not None
    assert (taker.missed_slots, taker.rebooked_slots) == (1, 1)
    assert float(table.granted[0][1]) == pytest.approx(START + SEND_BUDGET_LEAD_S)
    # Moved to the time of the late answer plus twice the write's round trip (the adapted
    # lead), not one interval later: a late wake-up costs a write, not a second.
    assert slot.start_s == pytest.approx(START + write_s + 2 * write_s)
    assert float(table.items[BUDGET]) == pytest.approx(slot.start_s + SPACING)
    assert clock.now == pytest.approx(slot.start_s)
    assert not taker.is_late(slot)


def test_a_late_slot_whose_next_was_taken_is_given_up_for_the_next_free_one(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    class PausedHost(FakeClock):
        """The taker's host pauses 50 ms in its first sleep; another container takes the next
        slot meanwhile."""

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            if len(self.sleeps) == 1:
                other.take(latest_start_s=FAR)
                self.now += 0.050

    clock = PausedHost()
    table = FakeBudgetTable(clock)
    other = budget(table, clock)
    taker = budget(table, clock)

    slot = taker.acquire(latest_start_s=FAR)

    assert slot is not None
    assert (taker.missed_slots, taker.rebooked_slots) == (1, 0)
    first, others, third = (float(granted) for _, granted in table.granted)
    assert others == pytest.approx(first + SPACING)
    assert slot.start_s == pytest.approx(third) == pytest.approx(others + SPACING)
    assert table.moved == []


def test_slots_always_reached_late_mean_unavailable(table: FakeBudgetTable) -> None:
    class OversleepingClock(FakeClock):
        """A starved host: every sleep ends 30 ms late, past the late tolerance."""

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds + 0.030)

    clock = OversleepingClock()
    table = FakeBudgetTable(clock)
    taker = budget(table, clock)

    with pytest.raises(SendBudgetUnavailable, match="too late"):
        taker.acquire(latest_start_s=FAR)
    assert taker.missed_slots == SEND_BUDGET_MAX_ATTEMPTS
    # One slot taken, then moved each time it was reached late; none of them used.
    assert len(table.granted) == 1
    assert len(table.moved) == SEND_BUDGET_MAX_ATTEMPTS - 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_per_second": 0.0}, "rate_per_second must be a finite number > 0, got 0.0"),
        ({"rate_per_second": float("nan")}, "rate_per_second must be a finite number > 0"),
        ({"late_tolerance_s": 1.0}, "late_tolerance_s must be between 0 and margin_s"),
        ({"max_attempts": 0}, "max_attempts must be >= 1, got 0"),
    ],
)
def test_bad_settings_are_refused(
    table: FakeBudgetTable, clock: FakeClock, options: dict[str, Any], message: str
) -> None:
    settings = {"rate_per_second": 1.0, **options}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SendBudget(table, table_name=TABLE, budget_id=BUDGET, **settings)


@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3), st.floats(0.0, 1.5), st.floats(0.0, 0.03)),
        min_size=1,
        max_size=40,
    )
)
def test_interleaved_takers_never_get_slots_closer_than_the_spacing(
    steps: list[tuple[int, float, float]],
) -> None:
    """Four containers take slots in any order, with any idle time and write latency."""
    clock = FakeClock()
    table = FakeBudgetTable(clock)
    takers = [budget(table, clock) for _ in range(4)]
    slots: list[Slot] = []
    for who, idle_s, write_s in steps:
        clock.now += idle_s
        table.write_seconds = write_s
        slot = takers[who].take(latest_start_s=clock.now + 3600.0)
        assert slot is not None
        slots.append(slot)

    starts = sorted(s.start_s for s in slots)
    assert all(b - a >= SPACING - 1e-6 for a, b in combinations(starts, 2))
    assert len(table.granted) == len(slots)


def test_after_a_slow_write_an_idle_slot_starts_two_round_trips_ahead(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    taker = budget(table, clock)
    table.write_seconds = 0.040  # four times the configured lead
    first = taker.acquire(latest_start_s=FAR)  # reached late: given up, the next one used
    assert first is not None
    assert taker.missed_slots == 1

    clock.now += 10.0  # the budget is idle again
    second = taker.take(latest_start_s=FAR)
    assert second is not None
    assert second.start_s - (clock.now - 0.040) == pytest.approx(2 * 0.040)
    assert not taker.is_late(second)


def test_a_busy_schedule_is_one_write_per_take_whatever_the_container_last_saw(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    """The increment needs no local state: a container whose cached next_free is stale (others
    took slots since) still gets the next slot at its first write."""
    first, second = budget(table, clock), budget(table, clock)
    assert first.take(latest_start_s=FAR) is not None
    for _ in range(5):
        assert second.take(latest_start_s=FAR) is not None
    calls = table.update_calls

    slot = first.take(latest_start_s=FAR)

    assert slot is not None
    assert slot.attempts == 1
    assert table.update_calls == calls + 1
    assert slot.start_s == pytest.approx(START + SEND_BUDGET_LEAD_S + 6 * SPACING)


def test_a_schedule_beyond_the_horizon_is_repaired_once_on_its_exact_value(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    warm = budget(table, clock)
    assert warm.take(latest_start_s=FAR) is not None
    table.items[BUDGET] = Decimal(str(START + 5 * 3600.0))  # poisoned, rate and margin intact
    clock.now += 1.0

    slot = warm.take(latest_start_s=clock.now + 30.0)

    assert slot is not None
    assert slot.start_s == pytest.approx(clock.now + SEND_BUDGET_LEAD_S)
    assert warm.repairs == 1
    assert float(table.items[BUDGET]) == pytest.approx(slot.start_s + SPACING)


def test_a_schedule_within_the_horizon_is_honoured_not_repaired(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    """Up to SEND_BUDGET_MAX_AHEAD_S (900 s) ahead a schedule may be legitimate: no slot in
    time, nothing written."""
    budget(table, clock).take(latest_start_s=FAR)
    table.items[BUDGET] = Decimal(str(START + 900.0))
    calls = table.update_calls
    taker = budget(table, clock)

    assert taker.take(latest_start_s=START + 30.0) is None
    assert taker.repairs == 0
    assert table.update_calls == calls + 1  # the increment, refused by its condition
    assert table.items[BUDGET] == Decimal(str(START + 900.0))


def test_a_taker_with_a_faster_rate_adopts_the_items_slower_spacing(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    slow = budget(table, clock, rate=1.0)
    assert slow.take(latest_start_s=FAR) is not None
    fast = budget(table, clock, rate=5.0)

    slot = fast.take(latest_start_s=FAR)

    assert slot is not None
    assert fast.spacing_s == pytest.approx(SPACING)
    assert fast.spacing_adoptions == 1
    assert [float(s) for _, s in table.granted] == pytest.approx(
        [START + SEND_BUDGET_LEAD_S, START + SEND_BUDGET_LEAD_S + SPACING]
    )


def test_a_taker_with_a_slower_rate_widens_the_item_one_of_its_spacings_after_the_last(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    fast = budget(table, clock, rate=5.0)
    last = fast.take(latest_start_s=FAR)
    assert last is not None
    slow = budget(table, clock, rate=1.0)

    slot = slow.take(latest_start_s=FAR)
    after = fast.take(latest_start_s=FAR)

    assert slot is not None and after is not None
    assert slot.start_s - last.start_s == pytest.approx(SPACING)  # not 0.22 s
    assert after.start_s - slot.start_s == pytest.approx(SPACING)
    assert slow.spacing_widenings == 1
    assert table.spacings[BUDGET] == ("1.0", repr(SEND_BUDGET_MARGIN_S))


@pytest.mark.parametrize(
    ("rate", "margin"), [("0", "0.02"), ("-1", "0.02"), ("1", "-0.5"), ("1", "7"), ("1e-9", "0")]
)
def test_an_item_with_an_invalid_rate_or_margin_is_repaired_with_the_takers_own(
    table: FakeBudgetTable, clock: FakeClock, rate: str, margin: str
) -> None:
    table.items[BUDGET] = Decimal(str(START + 1.0))
    table.spacings[BUDGET] = (rate, margin)
    taker = budget(table, clock)

    slot = taker.take(latest_start_s=FAR)

    assert slot is not None
    assert taker.repairs == 1
    assert taker.spacing_s == pytest.approx(SPACING)
    assert table.spacings[BUDGET] == ("1.0", repr(SEND_BUDGET_MARGIN_S))


def test_after_a_repair_the_next_taker_continues_the_repaired_schedule(
    table: FakeBudgetTable, clock: FakeClock
) -> None:
    """(Racing repairers, whose rewrites are conditional on the poisoned value, are run at once
    against moto in tests/harness/test_budget_item_repair.py: one repair.)"""
    budget(table, clock).take(latest_start_s=FAR)
    table.items[BUDGET] = Decimal(str(START + 10 * 3600.0))
    first, second = budget(table, clock), budget(table, clock)

    a = first.take(latest_start_s=START + 30.0)
    b = second.take(latest_start_s=START + 30.0)

    assert a is not None and b is not None
    assert (first.repairs, second.repairs) == (1, 0)
    assert b.start_s - a.start_s == pytest.approx(SPACING)
