"""A budget item no legitimate taker would write, against moto's DynamoDB server through the real
botocore client: a schedule hours ahead (a manipulated item, a host whose clock is hours ahead),
numbers that are not valid, and takers configured with another rate. The item is repaired
conditionally on its exact value and counted; warm containers recover at once; no two slots are
ever closer than the slower spacing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from bounce_runtime.adapters.send_budget import SendBudget
from bounce_runtime.contract import (
    SEND_BUDGET_KEY_ATTRIBUTE,
    SEND_BUDGET_MARGIN_ATTRIBUTE,
    SEND_BUDGET_MARGIN_S,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    SEND_BUDGET_RATE_ATTRIBUTE,
)
from support.local_budget import create_budget_table, dynamodb_client, moto_server

RATE = 50.0
HOURS = 3600.0


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    with moto_server() as url:
        yield url, create_budget_table(url)


def taker(
    server: tuple[str, str], budget_id: str, rate: float = RATE, **options: Any
) -> SendBudget:
    endpoint, table = server
    return SendBudget(
        dynamodb_client(endpoint),
        table_name=table,
        budget_id=budget_id,
        rate_per_second=rate,
        **options,
    )


def put_item(server: tuple[str, str], budget_id: str, **attributes: dict[str, str]) -> None:
    endpoint, table = server
    dynamodb_client(endpoint).put_item(
        TableName=table, Item={SEND_BUDGET_KEY_ATTRIBUTE: {"S": budget_id}, **attributes}
    )


def item(server: tuple[str, str], budget_id: str) -> dict[str, Any]:
    endpoint, table = server
    found: dict[str, Any] = dynamodb_client(endpoint).get_item(
        TableName=table, Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": budget_id}}, ConsistentRead=True
    )["Item"]
    return found


def number(value: float) -> dict[str, str]:
    return {"N": f"{value:.6f}"}


def test_a_schedule_hours_ahead_is_repaired_once_and_warm_containers_recover(
    server: tuple[str, str], harness_report: Any
) -> None:
    budget_id = "poisoned"
    warm = [taker(server, budget_id) for _ in range(3)]
    for budget in warm:  # warm containers: each has taken a slot and cached the schedule
        assert budget.take(latest_start_s=time.time() + 30.0) is not None
    # Someone writes a next_free 5 hours ahead, with the right rate and margin.
    poisoned_at = time.time() + 5 * HOURS
    put_item(
        server,
        budget_id,
        **{
            SEND_BUDGET_NEXT_FREE_ATTRIBUTE: number(poisoned_at),
            SEND_BUDGET_RATE_ATTRIBUTE: {"N": repr(RATE)},
            SEND_BUDGET_MARGIN_ATTRIBUTE: {"N": repr(SEND_BUDGET_MARGIN_S)},
        },
    )
    fresh = taker(server, budget_id)
    takers = [*warm, fresh]
    starts: list[float] = []
    barrier = threading.Barrier(len(takers))
    lock = threading.Lock()

    def take(budget: SendBudget) -> None:
        barrier.wait()
        slot = budget.take(latest_start_s=time.time() + 30.0)
        assert slot is not None  # no one finds "no slot in time" for hours
        with lock:
            starts.append(slot.start_s)

    threads = [threading.Thread(target=take, args=(budget,)) for budget in takers]
    now = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(starts) == len(takers)
    assert max(starts) < now + 5.0  # the schedule is back to now
    assert min(b - a for a, b in pairwise(sorted(starts))) >= fresh.spacing_s - 1e-6
    # Racing repairers: the rewrite is conditional on the exact poisoned value, so one wins.
    assert sum(budget.repairs for budget in takers) == 1
    assert float(item(server, budget_id)[SEND_BUDGET_NEXT_FREE_ATTRIBUTE]["N"]) < now + 5.0
    harness_report(
        f"budget, next_free 5 h ahead, {len(takers)} takers at once: repairs "
        f"{sum(b.repairs for b in takers)}, latest slot {max(starts) - now:.3f} s from now"
    )


def test_a_host_whose_clock_is_hours_ahead_does_not_stop_the_others(
    server: tuple[str, str],
) -> None:
    budget_id = "fast-clock"
    ahead = taker(server, budget_id, clock=lambda: time.time() + 3 * HOURS)
    assert ahead.take(latest_start_s=time.time() + 3 * HOURS + 30.0) is not None
    assert float(item(server, budget_id)[SEND_BUDGET_NEXT_FREE_ATTRIBUTE]["N"]) > time.time() + (
        2 * HOURS
    )

    honest = taker(server, budget_id)
    slot = honest.take(latest_start_s=time.time() + 30.0)

    assert slot is not None
    assert slot.start_s < time.time() + 1.0
    assert honest.repairs == 1


@pytest.mark.parametrize(
    "attributes",
    [
        {SEND_BUDGET_NEXT_FREE_ATTRIBUTE: {"S": "soon"}},  # not a number
        {  # a rate of 0 (division by zero for a naive taker)
            SEND_BUDGET_NEXT_FREE_ATTRIBUTE: number(time.time() + 1.0),
            SEND_BUDGET_RATE_ATTRIBUTE: {"N": "0"},
            SEND_BUDGET_MARGIN_ATTRIBUTE: {"N": "0.02"},
        },
        {  # a negative margin
            SEND_BUDGET_NEXT_FREE_ATTRIBUTE: number(time.time() + 1.0),
            SEND_BUDGET_RATE_ATTRIBUTE: {"N": "1"},
            SEND_BUDGET_MARGIN_ATTRIBUTE: {"N": "-5"},
        },
        {  # slots hours apart: no taker books that far ahead
            SEND_BUDGET_NEXT_FREE_ATTRIBUTE: number(time.time() + 1.0),
            SEND_BUDGET_RATE_ATTRIBUTE: {"N": "0.0001"},
            SEND_BUDGET_MARGIN_ATTRIBUTE: {"N": "0.02"},
        },
    ],
    ids=["next-not-a-number", "rate-zero", "margin-negative", "spacing-hours"],
)
def test_an_item_with_invalid_numbers_is_repaired_with_the_takers_spacing(
    server: tuple[str, str], attributes: dict[str, dict[str, str]]
) -> None:
    budget_id = f"invalid-{len(attributes)}-{sorted(attributes)[0]}-{id(attributes)}"
    put_item(server, budget_id, **attributes)
    budget = taker(server, budget_id)

    slot = budget.take(latest_start_s=time.time() + 30.0)

    assert slot is not None
    assert budget.repairs == 1
    repaired = item(server, budget_id)
    assert float(repaired[SEND_BUDGET_RATE_ATTRIBUTE]["N"]) == RATE
    assert float(repaired[SEND_BUDGET_MARGIN_ATTRIBUTE]["N"]) == SEND_BUDGET_MARGIN_S
    assert float(repaired[SEND_BUDGET_NEXT_FREE_ATTRIBUTE]["N"]) == pytest.approx(
        slot.start_s + budget.spacing_s, abs=1e-5
    )


@pytest.mark.parametrize("first", ["fast", "slow"])
def test_takers_with_another_rate_never_give_gaps_below_the_slower_spacing(
    server: tuple[str, str], first: str
) -> None:
    """A processor imported with rate 5x the budget's: whichever creates the item, every gap
    between two slots is at least the slower spacing (0.3.0 gave the faster one's 0.22 s)."""
    budget_id = f"rates-{first}"
    slow = taker(server, budget_id, rate=10.0)  # spacing 120 ms
    fast = taker(server, budget_id, rate=50.0)  # spacing 40 ms
    order = [fast, slow] if first == "fast" else [slow, fast]
    starts = []
    for turn in range(12):
        slot = order[turn % 2].take(latest_start_s=time.time() + 60.0)
        assert slot is not None
        starts.append(slot.start_s)

    gaps = [b - a for a, b in pairwise(sorted(starts))]
    assert min(gaps) >= slow.spacing_s - 1e-6
    assert fast.spacing_s == slow.spacing_s  # the fast taker adopted the item's spacing
    assert float(item(server, budget_id)[SEND_BUDGET_RATE_ATTRIBUTE]["N"]) == 10.0


def test_an_item_of_0_3_0_without_rate_keeps_its_schedule_and_gains_the_spacing(
    server: tuple[str, str],
) -> None:
    budget_id = "legacy"
    busy_until = time.time() + 2.0
    put_item(server, budget_id, **{SEND_BUDGET_NEXT_FREE_ATTRIBUTE: number(busy_until)})
    budget = taker(server, budget_id)

    slot = budget.take(latest_start_s=time.time() + 30.0)

    assert slot is not None
    assert slot.start_s == pytest.approx(busy_until, abs=1e-5)  # after the old schedule
    assert budget.repairs == 0
    assert float(item(server, budget_id)[SEND_BUDGET_RATE_ATTRIBUTE]["N"]) == RATE
