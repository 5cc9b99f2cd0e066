"""CPU time per message of the runtime's pure work: parse + policy + SendBounce request building.

For policies of 1k, 10k and 100k recipient patterns (one bounce rule holding them, half exact
addresses and half domains, default accept), a set of notifications (a third in SNS envelopes,
half of the recipients matched, two recipients each) goes through
``parse_notification_body -> plan_message -> build_send_bounce_request ->
validate_send_bounce_request``. CPU time is ``time.process_time`` with the garbage collector
paused; the figure is the best of `--repeats` passes (after one warm-up pass), per message.

    python bench/overhead.py [--messages 2000] [--repeats 5]

Target: <= 0.5 ms per message, flat as the policy grows (100k within 1.5x of 1k).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from _common import policy_document, target, use_repo_paths

from bounce_runtime.core.decision import plan_message
from bounce_runtime.core.dsn import (
    SenderIdentity,
    build_send_bounce_request,
    validate_send_bounce_request,
)
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import BouncePolicy

PER_MESSAGE_TARGET_MS = 0.5
FLATNESS_TARGET = 1.5
SIZES = (1_000, 10_000, 100_000)
START = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


def bodies(count: int, size: int, rng: random.Random) -> list[str]:
    """SQS bodies: half of the recipients are in the policy, a third come in an SNS envelope."""
    from support.events import notification, sns_envelope

    timestamp = (START - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    result = []
    for index in range(count):
        n = rng.randrange(size)
        matched = (
            f"user{n}@retired{n % 97}.example.com" if n % 2 else f"someone@dept{n}.example.org"
        )
        unmatched = f"person{index}@example.net"
        body = notification(
            message_id=f"bench{index:08d}{'x' * 20}",
            timestamp=timestamp,
            recipients=[matched, unmatched] if index % 2 else [unmatched, f"x{index}@example.com"],
        )
        result.append(json.dumps(sns_envelope(body) if index % 3 == 0 else body))
    return result


def one_pass(sample: list[str], policy: BouncePolicy, sender: SenderIdentity) -> tuple[float, int]:
    """CPU seconds for the whole sample, and how many requests it built."""
    built = 0
    start = time.process_time()
    for body in sample:
        plan = plan_message(parse_notification_body(body), policy, now=START)
        request = build_send_bounce_request(plan, sender)
        if request is not None:
            validate_send_bounce_request(request)
            built += 1
    return time.process_time() - start, built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    use_repo_paths()
    sender = SenderIdentity("bounces@example.com", None, {})
    rng = random.Random(7)
    print(
        f"overhead (CPU per message, best of {args.repeats} passes over {args.messages} messages)"
    )
    loaded: dict[int, tuple[BouncePolicy, list[str], float]] = {}
    for size in SIZES:
        document = policy_document(size)
        start = time.process_time()
        policy = BouncePolicy.from_dict(document)
        load_seconds = time.process_time() - start
        loaded[size] = (policy, bodies(args.messages, size, rng), load_seconds)
    gc.collect()
    gc.disable()
    passes: dict[int, list[tuple[float, int]]] = {size: [] for size in SIZES}
    for policy, sample, _ in loaded.values():
        one_pass(sample, policy, sender)  # warm-up, not counted
    for _ in range(args.repeats):  # sizes interleaved, so machine noise hits them alike
        for size, (policy, sample, _) in loaded.items():
            passes[size].append(one_pass(sample, policy, sender))
    gc.enable()
    results: dict[int, float] = {}
    for size in SIZES:
        results[size] = min(seconds for seconds, _ in passes[size]) / args.messages * 1000
        print(
            f"  {size:>7,} patterns: {results[size]:.3f} ms/message"
            f" ({passes[size][0][1]} of {args.messages} bounced;"
            f" policy load {loaded[size][2] * 1000:.0f} ms)"
        )
    flatness = results[SIZES[-1]] / results[SIZES[0]]
    print(f"  100k / 1k: {flatness:.2f}x")
    target("per message (100k patterns)", results[SIZES[-1]], PER_MESSAGE_TARGET_MS, "ms")
    target("flatness 100k / 1k", flatness, FLATNESS_TARGET, "x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
