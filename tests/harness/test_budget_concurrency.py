"""Many slot takers at once against one budget item on moto's DynamoDB server, through the real
botocore client: threads in this process and separate processes (fresh containers). However the
conditional writes interleave, no two granted slots are closer than the spacing, and a herd of
simultaneous takers on a healthy budget all get slots (contention never reads as an outage)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from bounce_runtime.adapters.send_budget import SendBudget
from bounce_runtime.contract import SEND_BUDGET_KEY_ATTRIBUTE, SEND_BUDGET_NEXT_FREE_ATTRIBUTE
from bounce_runtime.errors import SendBudgetUnavailable
from support.local_budget import create_budget_table, dynamodb_client, moto_server, take_slots

RATE = 50.0  # spacing 20 ms + margin 20 ms: many slots in little time


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """moto's server and one budget table on it: (endpoint URL, table name)."""
    with moto_server() as url:
        yield url, create_budget_table(url)


def next_free(endpoint: str, table: str, budget_id: str) -> float:
    item = dynamodb_client(endpoint).get_item(
        TableName=table, Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": budget_id}}, ConsistentRead=True
    )["Item"]
    return float(item[SEND_BUDGET_NEXT_FREE_ATTRIBUTE]["N"])


def assert_spaced(starts: list[float], spacing: float) -> None:
    """Every pair of slots at least one spacing apart (sorted neighbours are the closest pairs)."""
    ordered = sorted(starts)
    gaps = [b - a for a, b in pairwise(ordered)]
    assert min(gaps) >= spacing - 1e-6, f"closest slots {min(gaps):.6f} s apart"


def test_threads_never_get_slots_closer_than_the_spacing(
    server: tuple[str, str], harness_report: Any
) -> None:
    endpoint, table = server
    budget_id = "threads"
    threads, per_thread = 8, 6
    starts: list[float] = []
    lost_races: list[int] = []
    lock = threading.Lock()

    def taker() -> None:
        budget = SendBudget(
            dynamodb_client(endpoint),
            table_name=table,
            budget_id=budget_id,
            rate_per_second=RATE,
            max_attempts=64,
        )
        for _ in range(per_thread):
            slot = budget.take(latest_start_s=time.time() + 3600.0)
            assert slot is not None
            with lock:
                starts.append(slot.start_s)
                lost_races.append(slot.attempts - 1)

    workers = [threading.Thread(target=taker) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    spacing = SendBudget(
        dynamodb_client(endpoint), table_name=table, budget_id=budget_id, rate_per_second=RATE
    ).spacing_s
    assert len(starts) == threads * per_thread
    assert_spaced(starts, spacing)
    assert next_free(endpoint, table, budget_id) == pytest.approx(max(starts) + spacing, abs=1e-5)
    harness_report(
        f"budget, {threads} threads x {per_thread} slots: closest pair "
        f"{min(b - a for a, b in pairwise(sorted(starts))) * 1000:.2f} ms "
        f"(spacing {spacing * 1000:.0f} ms), lost races {sum(lost_races)}"
    )


@pytest.mark.parametrize("herd", [12, 24])
def test_a_herd_of_simultaneous_takers_all_get_slots_and_none_is_unavailable(
    server: tuple[str, str], harness_report: Any, herd: int
) -> None:
    """``herd`` fresh containers (no local state, the default attempt bound of 8) take a slot at
    the same instant, twice, first on an idle budget item and then on a busy one: with 0.3.0's
    `next_free <= slot` condition one racer won per round and the rest ran out of attempts
    (12 takers: 4 unavailable; 24: 16)."""
    endpoint, table = server
    budget_id = f"herd-{herd}"
    start = threading.Barrier(herd)
    starts: list[float] = []
    unavailable: list[str] = []
    writes: list[int] = []
    lock = threading.Lock()
    budgets = [
        SendBudget(
            dynamodb_client(endpoint), table_name=table, budget_id=budget_id, rate_per_second=RATE
        )
        for _ in range(herd)
    ]

    def taker(budget: SendBudget) -> None:
        for _ in range(2):
            start.wait()
            try:
                slot = budget.take(latest_start_s=time.time() + 60.0)
            except SendBudgetUnavailable as error:
                with lock:
                    unavailable.append(error.message)
                continue
            assert slot is not None
            with lock:
                starts.append(slot.start_s)
                writes.append(slot.attempts)

    workers = [threading.Thread(target=taker, args=(budget,)) for budget in budgets]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert unavailable == []
    assert len(starts) == 2 * herd
    assert_spaced(starts, budgets[0].spacing_s)
    harness_report(
        f"budget, herd of {herd} simultaneous takers x 2: unavailable {len(unavailable)}, "
        f"writes per take max {max(writes)}, closest pair "
        f"{min(b - a for a, b in pairwise(sorted(starts))) * 1000:.2f} ms"
    )


def test_processes_and_restarted_processes_share_one_schedule(server: tuple[str, str]) -> None:
    """Four processes take slots at once; then a fresh process (a replaced container, no local
    state) joins the same schedule after them instead of starting its own."""
    endpoint, table = server
    budget_id = "processes"
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    per_process = 8
    first = [
        context.Process(
            target=take_slots, args=(endpoint, table, budget_id, RATE, per_process, results)
        )
        for _ in range(4)
    ]
    for process in first:
        process.start()
    answers = [results.get(timeout=60) for _ in range(4 * per_process)]
    for process in first:
        process.join(timeout=30)
        assert process.exitcode == 0

    restarted = context.Process(
        target=take_slots, args=(endpoint, table, budget_id, RATE, 2, results)
    )
    restarted.start()
    later = [results.get(timeout=60) for _ in range(2)]
    restarted.join(timeout=30)
    assert restarted.exitcode == 0

    assert all(kind == "slot" for kind, *_ in answers + later), answers + later
    spacing = SendBudget(
        dynamodb_client(endpoint), table_name=table, budget_id=budget_id, rate_per_second=RATE
    ).spacing_s
    starts = [answer[1] for answer in answers]
    assert_spaced(starts + [answer[1] for answer in later], spacing)
    assert min(answer[1] for answer in later) >= max(starts) + spacing - 1e-6


def test_a_budget_with_a_missing_table_is_unavailable(server: tuple[str, str]) -> None:
    budget = SendBudget(
        dynamodb_client(server[0]), table_name="no-such-table", budget_id="x", rate_per_second=1.0
    )
    with pytest.raises(SendBudgetUnavailable, match="ResourceNotFoundException"):
        budget.take(latest_start_s=time.time() + 60.0)
