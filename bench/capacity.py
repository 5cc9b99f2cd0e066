"""Capacity of one send budget: a simulated day of arrivals, the backlog, and what expires.

One budget (one account and region) sends a bounce every 1/rate + SEND_BUDGET_MARGIN_S seconds
while anything waits. SendBounce refuses mail older than 24 hours (SEND_BOUNCE_WINDOW_S), and the
runtime starts no attempt less than SEND_WINDOW_MARGIN_S before that window closes: such a
message is dead-lettered as expired. The queue is served oldest first (SQS standard queues are
only roughly ordered, so real ages spread a little wider).

Each scenario is a steady load (bounces a day, spread evenly, every day) plus a wave: a burst of
messages arriving within one hour on the first day (mail to a retired domain, a list that still
sends to it). Simulated in 10-second steps over a week, so a backlog is followed to its end.

    python bench/capacity.py [--rate 1.0]

Prints, per scenario: peak backlog, the oldest message's age when sent (or dropped), how many
expire in the week, and when the wave's backlog is gone (hours after the wave began). No
target: the figures feed the README's capacity table.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from dataclasses import dataclass

from _common import use_repo_paths

use_repo_paths()

from bounce_runtime.contract import (  # noqa: E402 (after the path set-up)
    SEND_BOUNCE_WINDOW_S,
    SEND_BUDGET_MARGIN_S,
    SEND_WINDOW_MARGIN_S,
)

DAY_S = 24 * 3600
SIMULATED_S = 7 * DAY_S
STEP_S = 10
WAVE_START_S = 9 * 3600  # the wave arrives between 09:00 and 10:00
WAVE_LENGTH_S = 3600


@dataclass(frozen=True)
class Scenario:
    """Bounces a day arriving evenly, plus a wave of ``wave`` bounces within one hour."""

    steady_per_day: int
    wave: int


@dataclass(frozen=True)
class Result:
    """What one budget made of a scenario."""

    arrived: int
    sent: int
    expired: int
    peak_backlog: int
    oldest_age_s: float
    drained_at_s: float | None


def arrivals(scenario: Scenario, second: int) -> float:
    """Messages arriving in the step that starts at ``second`` (fractional: a fluid rate)."""
    count = scenario.steady_per_day / DAY_S * STEP_S
    if WAVE_START_S <= second < WAVE_START_S + WAVE_LENGTH_S:
        count += scenario.wave / WAVE_LENGTH_S * STEP_S
    return count


def simulate(scenario: Scenario, rate_per_second: float) -> Result:
    """Serve the queue oldest first at the budget's spacing; drop what can no longer be sent."""
    spacing_s = 1.0 / rate_per_second + SEND_BUDGET_MARGIN_S
    last_start_age_s = SEND_BOUNCE_WINDOW_S - SEND_WINDOW_MARGIN_S
    queue: deque[list[float]] = deque()  # [arrival second, messages left] oldest first
    backlog = arrived = sent = expired = 0.0
    credit = 0.0  # sends the budget can make this second (fractional spacing carries over)
    peak = oldest = 0.0
    drained_at: float | None = None
    for second in range(0, SIMULATED_S, STEP_S):
        incoming = arrivals(scenario, second)
        if incoming:
            queue.append([float(second), incoming])
            arrived += incoming
            backlog += incoming
        while queue and second - queue[0][0] > last_start_age_s:
            expired += queue[0][1]
            backlog -= queue[0][1]
            oldest = max(oldest, second - queue[0][0])
            queue.popleft()
        credit = credit + STEP_S / spacing_s if queue else 0.0
        while queue and credit >= 1e-9:
            head = queue[0]
            take = min(head[1], credit)
            head[1] -= take
            credit -= take
            sent += take
            backlog -= take
            oldest = max(oldest, second - head[0])
            if head[1] <= 1e-9:
                queue.popleft()
        if not queue:
            credit = 0.0  # an idle budget banks nothing: no burst after idle time
        if backlog > peak:
            peak, drained_at = backlog, None
        if second > WAVE_START_S and drained_at is None and backlog < 1.0:
            drained_at = float(second)
    return Result(
        arrived=round(arrived),
        sent=round(sent),
        expired=round(expired),
        peak_backlog=round(peak),
        oldest_age_s=oldest,
        drained_at_s=drained_at,
    )


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1.0, help="the budget's calls per second")
    args = parser.parse_args()

    spacing_s = 1.0 / args.rate + SEND_BUDGET_MARGIN_S
    per_day = DAY_S / spacing_s
    print(
        f"capacity of one budget at {args.rate:g}/s (spacing {spacing_s * 1000:.0f} ms): "
        f"{per_day:,.0f} bounces a day at most; SendBounce window {hours(SEND_BOUNCE_WINDOW_S)}"
        f" (no attempt in its last {SEND_WINDOW_MARGIN_S:g} s)"
    )
    scenarios = [
        Scenario(steady, wave)
        for steady in (10_000, 40_000, 70_000, 80_000)
        for wave in (0, 20_000, 60_000)
    ] + [Scenario(80_000, 100_000), Scenario(90_000, 0)]
    print(
        f"  {'steady/day':>10} {'wave (1 h)':>10} {'peak backlog':>12} {'oldest age':>10} "
        f"{'expired/week':>12} {'backlog gone':>12}"
    )
    for scenario in scenarios:
        result = simulate(scenario, args.rate)
        if result.peak_backlog < 1:
            gone = "-"
        elif result.drained_at_s is None:
            gone = "never"
        else:
            gone = f"+{hours(result.drained_at_s - WAVE_START_S)}"
        print(
            f"  {scenario.steady_per_day:>10,} {scenario.wave:>10,} {result.peak_backlog:>12,} "
            f"{hours(result.oldest_age_s):>10} {result.expired:>12,} {gone:>12}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
