"""Pacing at the SendBounce limit: a backlog drained by worker processes running the real handler.

Run 1 (the shared budget, strict SES): two processors (each its own bucket, queue, dead-letter
queue and policy) share one send budget, a DynamoDB item on moto's server reached by the real
botocore client (``AWS_ENDPOINT_URL_DYNAMODB``). `--workers` processes per processor stand in for
concurrent Lambda containers; each runs ``bounce_runtime.handler.handler`` on the container its
``build_container`` makes from the environment the construct sets (``SEND_BUDGET_TABLE``,
``SEND_BUDGET_ID``, ``SEND_RATE_PER_SECOND``), so the budget slot before every SendBounce attempt,
claims, tags, retries and dead letters are all the runtime's. Every container is replaced after
`--lifetime` seconds: the process exits between two batches and a new process (empty local state)
takes its place. The local SES is strict: a call
less than 1/rate after the previous accepted call is answered Throttling.

Run 2 (the old model): per-container pacing at rate/workers, no budget, against a token bucket of
`--workers` tokens (what the per-container Pacer can promise).

Slots are spaced 1/rate + SEND_BUDGET_MARGIN_S, the production margin (20 ms), unscaled: it is
a fixed time (clock difference between hosts, lateness a call may have), so the default rate is
2/s, the fastest at which that margin still leaves >= 0.95 of the limit (500 / 520 ms = 0.96).
At 10/s the same margin would cap the ratio at 0.83; scaling the margin down instead would test a
lateness tolerance (1 ms) that a loaded 2-core machine cannot keep.

    python bench/pacing.py [--messages 60] [--rate 2] [--workers 2] [--lifetime 8]
    python bench/pacing.py --only budget20      # run 1 at 1/s, 2 processors x 10 containers

Run 1 at 20 containers (`--only budget20`, also part of the default runs): the budget at the SES
limit (1/s) shared by 2 processors x 10 containers, replaced every 120 s, each invocation's batch
sized by the construct's rule for 20 containers (`contract.largest_fitting_batch`: 1 record in the
bench's 60 s timeout). It prints the slot-take p99 and how many records were handed back.

Targets (run 1): achieved rate / limit >= 0.95; 0 calls closer than 1/rate; 0 Throttling; 0 lost;
0 duplicates. Run 2 keeps the old targets (token-bucket violations, lost, duplicates).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import target, use_repo_paths

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

use_repo_paths()

SENDER = "mailer-daemon@example.com"
BOUNCED_DOMAIN = "retired.example.com"
FUNCTION_TIMEOUT_S = 60.0
VISIBILITY_TIMEOUT_S = 120
# Records per receive: --batch-size, else the largest batch the sizing rule lets the run's
# containers send within FUNCTION_TIMEOUT_S (contract.largest_fitting_batch), at most 3.
MAX_BATCH_SIZE = 3
BUDGET_ID = "bench-account-region"
# A worker's exit codes: the queue is drained, or the container's lifetime is over.
DRAINED, REPLACED = 0, 3
RAW_MAIL = (
    "From: Sender Name <sender@example.net>\r\nTo: {}\r\nSubject: hello\r\n"
    "Message-ID: <bench@mail.example.net>\r\n\r\nBody text.\r\n"
)
POLICY = {
    "version": 1,
    "rules": [
        {
            "name": "retired",
            "match": {"recipients": [BOUNCED_DOMAIN]},
            "action": {"type": "bounce", "bounce_type": "DoesNotExist"},
        }
    ],
    "default": {"type": "accept"},
}


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the handler uses."""

    function_name: str
    deadline: float
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Processor:
    """One processor's resources and the SES message ids of its backlog."""

    name: str
    environ: dict[str, str]
    queue_url: str
    queue_arn: str
    dlq_url: str
    ses_ids: list[str]


@dataclass(frozen=True)
class BudgetSettings:
    """The shared budget of run 1 (its margin and late tolerance are the runtime's own)."""

    table_name: str
    rate_per_second: float
    batch_size: int


def lambda_records(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> list[dict[str, Any]]:
    """SQS ReceiveMessage results as the records of a Lambda SQS event."""
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "eu-west-1",
        }
        for m in messages
    ]


def queue_is_empty(sqs: Any, queue_url: str) -> bool:
    """No message visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def drain(
    queue_url: str,
    queue_arn: str,
    name: str,
    handle: Callable[[dict[str, Any], LambdaContext], Mapping[str, Any]],
    lifetime_s: float,
    batch_size: int,
    handed_back: list[int] | None = None,
) -> int:
    """Receive -> handler -> delete until the queue is drained (DRAINED) or the container's
    lifetime is over (REPLACED, checked between batches). ``handed_back`` gets the number of
    records each batch returned in ``batchItemFailures``."""
    import boto3

    sqs = boto3.client("sqs")
    born = time.monotonic()
    idle_since: float | None = None
    while True:
        if time.monotonic() - born > lifetime_s:
            return REPLACED
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            VisibilityTimeout=VISIBILITY_TIMEOUT_S,
            AttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 1.0 and queue_is_empty(sqs, queue_url):
                return DRAINED
            time.sleep(0.05)
            continue
        idle_since = None
        records = lambda_records(messages, queue_arn)
        context = LambdaContext(name, time.monotonic() + FUNCTION_TIMEOUT_S)
        response = handle({"Records": records}, context)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        if handed_back is not None:
            handed_back.append(len(failed))
        done: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records)
            if r["messageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)


def budget_worker(
    environ: dict[str, str],
    processor: Processor,
    name: str,
    log: str,
    stats: str,
    lifetime_s: float,
    settings: BudgetSettings,
) -> None:
    """One container of run 1: the real handler, its container built from the environment the
    construct sets (the budget's table, item and rate), so the sender takes a budget slot before
    every SendBounce attempt. The budget's ``acquire`` is observed (slot starts, take times)."""
    os.environ.update(environ)
    os.environ.update(
        {
            "SEND_BUDGET_TABLE": settings.table_name,
            "SEND_BUDGET_ID": BUDGET_ID,
            "SEND_RATE_PER_SECOND": repr(settings.rate_per_second),
        }
    )
    sys.stdout = open(log, "a", encoding="utf-8")  # noqa: SIM115 (closed when the process ends)
    from bounce_runtime import handler as lambda_handler

    container = lambda_handler.build_container(os.environ)
    budget = container.sender.budget
    assert budget is not None, "SEND_BUDGET_TABLE is set: the container must use the budget"
    take_seconds: list[float] = []
    slot_starts: list[float] = []
    acquire = budget.acquire

    def observed_acquire(*, latest_start_s: float) -> Any:
        slot = acquire(latest_start_s=latest_start_s)
        if slot is not None:
            take_seconds.append(slot.take_seconds)
            slot_starts.append(slot.start_s)
        return slot

    budget.acquire = observed_acquire  # type: ignore[method-assign]
    lambda_handler._container = container
    handed_back: list[int] = []
    code = drain(
        processor.queue_url,
        processor.queue_arn,
        name,
        lambda_handler.handler,
        lifetime_s,
        settings.batch_size,
        handed_back,
    )
    Path(stats).write_text(
        json.dumps(
            {
                "take_seconds": take_seconds,
                "slot_starts": slot_starts,
                "missed_slots": budget.missed_slots,
                "handed_back": sum(handed_back),
                "repairs": budget.repairs,
            }
        ),
        encoding="utf-8",
    )
    sys.stdout.flush()
    os._exit(code)


def pacer_worker(environ: dict[str, str], processor: Processor, name: str, log: str) -> None:
    """One container of run 2: the real handler with its own per-container Pacer."""
    os.environ.update(environ)
    sys.stdout = open(log, "a", encoding="utf-8")  # noqa: SIM115 (closed when the process ends)
    from bounce_runtime.handler import handler

    sys.stdout.flush()
    os._exit(
        drain(processor.queue_url, processor.queue_arn, name, handler, float("inf"), MAX_BATCH_SIZE)
    )


def make_processor(
    name: str, messages: int, base_environ: dict[str, str], scratch: Path, first_index: int
) -> Processor:
    """A bucket, queue and dead-letter queue with ``messages`` stored mails and notifications."""
    import boto3

    from support.events import notification

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    bucket = f"bench-mail-{name}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    dlq_url = sqs.create_queue(QueueName=f"bench-dlq-{name}")["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=f"bench-queue-{name}",
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy_path = scratch / f"policy-{name}.json"
    policy_path.write_text(json.dumps(POLICY), encoding="utf-8")
    environ = {
        **base_environ,
        "BOUNCE_POLICY_FILE": str(policy_path),
        "DEAD_LETTER_QUEUE_URL": dlq_url,
        "AWS_LAMBDA_FUNCTION_NAME": f"bench-bounce-{name}",
    }
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ses_ids: list[str] = []
    for index in range(first_index, first_index + messages):
        ses_id = f"bench{index:06d}{'x' * 20}"
        key = f"incoming/{ses_id}"
        recipient = f"user{index}@{BOUNCED_DOMAIN}"
        s3.put_object(Bucket=bucket, Key=key, Body=RAW_MAIL.format(recipient).encode())
        body = notification(
            message_id=ses_id,
            timestamp=timestamp,
            recipients=[recipient],
            bucket=bucket,
            object_key=key,
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
        ses_ids.append(ses_id)
    return Processor(name, environ, queue_url, queue_arn, dlq_url, ses_ids)


def drain_ids(sqs: Any, queue_url: str) -> set[str]:
    """The SES message ids of the messages on the dead-letter queue."""
    ids: set[str] = set()
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            attribute = message.get("MessageAttributes", {}).get("ses-message-id", {})
            ids.add(attribute.get("StringValue", message["MessageId"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass(frozen=True)
class Outcome:
    """What SES saw and where every message ended."""

    calls: list[Any]
    attempts: list[Any]
    dead_letters: set[str]
    ses_ids: list[str]
    worker_failures: list[int]
    restarts: int
    stats: list[dict[str, Any]]
    handler_errors: Counter[str]

    def bounced(self) -> Counter[str]:
        return Counter(c.params["OriginalMessageId"] for c in self.calls)

    def lost(self) -> int:
        bounced = self.bounced()
        return sum(1 for i in self.ses_ids if i not in bounced and i not in self.dead_letters)

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.bounced().values())

    def achieved(self) -> tuple[float, float]:
        """Accepted calls per second over the span from the first to the last, and the span."""
        times = sorted(c.time for c in self.calls)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return ((len(times) - 1) / span if span > 0 else 0.0), span


def run(args: argparse.Namespace, *, strict: bool) -> Outcome:
    """Drain two processors' backlogs through `--workers` containers each."""
    import boto3

    from support.local_budget import create_budget_table, moto_server
    from support.local_ses import LocalSes

    context = multiprocessing.get_context("spawn")
    burst = 1 if strict else args.workers * 2
    per_processor = args.messages // 2
    with (
        moto_server(own_process=True) as moto_url,
        moto_server(own_process=True) as dynamodb_url,
        LocalSes(
            rate_per_second=args.rate, burst=burst, strict=strict, verified={"example.com"}
        ) as ses,
        tempfile.TemporaryDirectory() as scratch_dir,
    ):
        scratch = Path(scratch_dir)
        base_environ = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL_SES": ses.endpoint_url,
            "AWS_ENDPOINT_URL_S3": moto_url,
            "AWS_ENDPOINT_URL_SQS": moto_url,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
            "BOUNCE_SENDER": SENDER,
            "RECIPIENT_IDENTITY_ARNS": "{}",
            # Run 2: each container paces itself at its share, as the construct used to set it.
            "SEND_RATE_PER_SECOND": str(args.rate / (2 * args.workers)),
        }
        os.environ.update(base_environ)
        processors = [
            make_processor(name, per_processor, base_environ, scratch, n * per_processor)
            for n, name in enumerate(("first", "second"))
        ]
        settings = BudgetSettings(create_budget_table(dynamodb_url), args.rate, args.batch_size)

        incarnations = Counter[str]()
        logs: list[Path] = []
        stats: list[Path] = []

        def start(processor: Processor, slot: int) -> Any:
            name = f"{processor.name}-{slot}"
            incarnations[name] += 1
            log = scratch / f"{name}.log"
            logs.append(log)
            if strict:
                stat = scratch / f"{name}-{incarnations[name]}.json"
                stats.append(stat)
                worker_args: tuple[Any, ...] = (
                    processor.environ,
                    processor,
                    name,
                    str(log),
                    str(stat),
                    args.lifetime,
                    settings,
                )
                process = context.Process(target=budget_worker, args=worker_args)
            else:
                process = context.Process(
                    target=pacer_worker, args=(processor.environ, processor, name, str(log))
                )
            process.start()
            return process

        running = {
            (p.name, slot): (p, start(p, slot)) for p in processors for slot in range(args.workers)
        }
        failures: list[int] = []
        restarts = 0
        last_progress = time.monotonic()
        while running:
            time.sleep(0.02)
            if args.verbose and time.monotonic() - last_progress > 1.0:
                last_progress = time.monotonic()
                print(
                    f"    {len(ses.calls)} accepted, {ses.throttled} throttled, "
                    f"{restarts} replaced, running {sorted(running)}",
                    file=sys.stderr,
                )
            for key, (processor, process) in list(running.items()):
                if process.exitcode is None:
                    continue
                del running[key]
                if process.exitcode == REPLACED:
                    restarts += 1
                    running[key] = (processor, start(processor, key[1]))
                elif process.exitcode != DRAINED:
                    failures.append(process.exitcode)
        sqs = boto3.client("sqs")
        dead_letters = set().union(*(drain_ids(sqs, p.dlq_url) for p in processors))
        errors = Counter(
            f"{line_data['message']} ({line_data.get('reason', 'no reason')})"
            for log in set(logs)
            for line in log.read_text(encoding="utf-8").splitlines()
            if line.startswith("{")
            for line_data in [json.loads(line)]
            if line_data.get("level") == "ERROR"
        )
        return Outcome(
            calls=list(ses.calls),
            attempts=list(ses.attempts),
            dead_letters=dead_letters,
            ses_ids=[i for p in processors for i in p.ses_ids],
            worker_failures=failures,
            restarts=restarts,
            stats=[json.loads(s.read_text(encoding="utf-8")) for s in stats if s.exists()],
            handler_errors=errors,
        )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report_budget_run(args: argparse.Namespace, outcome: Outcome, margin_s: float) -> None:
    from support.local_ses import count_close_calls

    achieved, span = outcome.achieved()
    ratio = achieved / args.rate
    close = count_close_calls(
        [a.time for a in outcome.attempts if a.error_code in ("", "Throttling")], args.rate
    )
    throttled = sum(1 for a in outcome.attempts if a.error_code == "Throttling")
    takes = [t for s in outcome.stats for t in s["take_seconds"]]
    missed = sum(s["missed_slots"] for s in outcome.stats)
    handed_back = sum(s.get("handed_back", 0) for s in outcome.stats)
    spacing_ms = (1.0 / args.rate + margin_s) * 1000
    print(
        f"pacing, run 1: shared budget, strict SES ({args.messages} messages, 2 processors x "
        f"{args.workers} containers, limit {args.rate:g}/s, spacing {spacing_ms:.1f} ms, "
        f"containers replaced every {args.lifetime:g} s, batch size {args.batch_size}, function "
        f"timeout {FUNCTION_TIMEOUT_S:g} s)"
    )
    print(f"  SendBounce accepted: {len(outcome.calls)} in {span:.2f} s")
    print(f"  achieved rate: {achieved:.3f}/s; ratio to limit: {ratio:.3f}")
    print(f"  calls closer than 1/rate to the previous one: {close}")
    print(f"  Throttling answers: {throttled}")
    print(
        f"  dead-lettered: {len(outcome.dead_letters)}; lost: {outcome.lost()}; "
        f"duplicate bounces: {outcome.duplicates()}"
    )
    print(f"  containers replaced: {outcome.restarts}; slots given up (reached late): {missed}")
    print(f"  records handed back to the queue (batchItemFailures): {handed_back}")
    if takes:
        print(
            f"  time to take a slot (DynamoDB round trips, local): median "
            f"{statistics.median(takes) * 1000:.1f} ms, p99 {percentile(takes, 0.99) * 1000:.1f}"
            f" ms over {len(takes)} takes"
        )
    delays = arrival_delays(outcome)
    if delays:
        print(
            f"  slot start -> SES arrival: median {statistics.median(delays) * 1000:.1f} ms, "
            f"p99 {percentile(delays, 0.99) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
            f"(the margin allows {margin_s * 1000:.0f} ms between two calls' delays)"
        )
    report_problems(outcome)
    target("achieved / limit", ratio, 0.95, "", at_least=True)
    target("calls closer than 1/rate", close, 0, "")
    target("Throttling answers", throttled, 0, "")
    target("lost", outcome.lost(), 0, "")
    target("duplicates", outcome.duplicates(), 0, "")


def arrival_delays(outcome: Outcome) -> list[float]:
    """For each SES attempt, seconds from the latest slot start before it to its arrival."""
    import bisect

    starts = sorted(t for s in outcome.stats for t in s.get("slot_starts", []))
    delays = []
    for attempt in outcome.attempts:
        index = bisect.bisect_right(starts, attempt.wall_time) - 1
        if index >= 0:
            delays.append(attempt.wall_time - starts[index])
    return delays


def report_pacer_run(args: argparse.Namespace, outcome: Outcome) -> None:
    from support.local_ses import count_close_calls, count_rate_violations

    achieved, span = outcome.achieved()
    burst = args.workers * 2
    rated = [a.time for a in outcome.attempts if a.error_code in ("", "Throttling")]
    violations = count_rate_violations(rated, args.rate, burst)
    close = count_close_calls([c.time for c in outcome.calls], args.rate)
    print(
        f"pacing, run 2: per-container pacing, token bucket ({args.messages} messages, "
        f"{2 * args.workers} containers at {args.rate / (2 * args.workers):g}/s each, limit "
        f"{args.rate:g}/s, burst {burst})"
    )
    print(f"  SendBounce accepted: {len(outcome.calls)} in {span:.2f} s")
    print(f"  achieved rate: {achieved:.3f}/s; ratio to limit: {achieved / args.rate:.3f}")
    print(f"  violations (token bucket {args.rate:g}/s, burst {burst}): {violations}")
    print(f"  accepted calls closer than 1/rate (what strict SES would throttle): {close}")
    print(
        f"  dead-lettered: {len(outcome.dead_letters)}; lost: {outcome.lost()}; "
        f"duplicate bounces: {outcome.duplicates()}"
    )
    report_problems(outcome)
    target("token-bucket violations", violations, 0, "")
    target("lost (per-container pacing)", outcome.lost(), 0, "")
    target("duplicates (per-container pacing)", outcome.duplicates(), 0, "")


def report_problems(outcome: Outcome) -> None:
    if outcome.handler_errors:
        print(f"  handler errors logged: {dict(outcome.handler_errors)}")
    if outcome.worker_failures:
        print(f"  worker exit codes: {outcome.worker_failures}")


class S3Slots:
    """For comparison only: the same slot rule on one S3 object with conditional PutObject
    (If-Match on the ETag last seen, If-None-Match: * for the first). S3 returns no body on 412,
    so a lost race costs a GetObject before the next try."""

    def __init__(self, s3: Any, bucket: str, key: str, spacing_s: float) -> None:
        self.s3, self.bucket, self.key, self.spacing_s = s3, bucket, key, spacing_s
        self.etag: str | None = None
        self.next_free: float | None = None

    def take(self) -> float:
        from botocore.exceptions import ClientError

        for _ in range(64):
            slot = max(time.time() + 0.01, self.next_free or 0.0)
            condition = {"IfMatch": self.etag} if self.etag else {"IfNoneMatch": "*"}
            try:
                answer = self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=f"{slot + self.spacing_s:.6f}".encode(),
                    **condition,
                )
            except ClientError as error:
                if error.response["Error"]["Code"] not in (
                    "PreconditionFailed",
                    "ConditionalRequestConflict",
                ):
                    raise
                current = self.s3.get_object(Bucket=self.bucket, Key=self.key)
                self.etag = current["ETag"]
                self.next_free = float(current["Body"].read())
                continue
            self.etag, self.next_free = answer["ETag"], slot + self.spacing_s
            return slot
        raise RuntimeError("S3 slot: 64 lost races")


def timed_takes(take: Callable[[], Any], takes: int, timings: list[float]) -> None:
    """Take ``takes`` slots, appending the seconds each took (list.append is atomic)."""
    for _ in range(takes):
        started = time.perf_counter()
        take()
        timings.append(time.perf_counter() - started)


def compare_stores(takers: int, takes: int) -> None:
    """Median and p99 time to take a slot from DynamoDB and from S3, alone and contended."""
    import threading

    import boto3

    from bounce_runtime.adapters.send_budget import SendBudget
    from support.local_budget import CREDENTIALS, REGION, create_budget_table, dynamodb_client
    from support.local_budget import moto_server as local_moto

    spacing_s = 0.001  # slots are only taken, never waited for: the store's latency alone
    with local_moto(own_process=True) as url:
        table = create_budget_table(url)
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=url, **CREDENTIALS)
        s3.create_bucket(Bucket="budget", CreateBucketConfiguration={"LocationConstraint": REGION})

        def dynamodb_taker(budget_id: str) -> Callable[[], Any]:
            budget = SendBudget(
                dynamodb_client(url),
                table_name=table,
                budget_id=budget_id,
                rate_per_second=1000.0,
                margin_s=0.0,
                late_tolerance_s=0.0,
                max_attempts=64,
            )
            return lambda: budget.take(latest_start_s=time.time() + 3600)

        def s3_taker(key: str) -> Callable[[], Any]:
            client = boto3.client("s3", region_name=REGION, endpoint_url=url, **CREDENTIALS)
            return S3Slots(client, "budget", key, spacing_s).take

        for store, make in (("DynamoDB UpdateItem", dynamodb_taker), ("S3 PutObject", s3_taker)):
            for parallel in (1, takers):
                key = f"{store[:2]}-{parallel}"
                timings: list[float] = []
                make(key)()  # warm-up: creates the item or object
                threads = [
                    threading.Thread(target=timed_takes, args=(make(key), takes, timings))
                    for _ in range(parallel)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                print(
                    f"  {store:<20} {parallel} taker(s): median "
                    f"{statistics.median(timings) * 1000:.1f} ms, p99 "
                    f"{percentile(timings, 0.99) * 1000:.1f} ms over {len(timings)} takes"
                )


def with_batch_size(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with ``batch_size`` set: as given, else the sizing rule's largest batch for the
    run's containers (both processors') at most MAX_BATCH_SIZE, as the construct would warn."""
    from bounce_runtime.contract import largest_fitting_batch, record_time_margin_seconds

    if args.batch_size:
        return args
    fitting = largest_fitting_batch(
        containers=2 * args.workers,
        rate_per_second=args.rate,
        record_margin_s=record_time_margin_seconds(needs_object_size=False, reads_headers=True),
        timeout_s=FUNCTION_TIMEOUT_S,
    )
    return argparse.Namespace(**{**vars(args), "batch_size": max(1, min(MAX_BATCH_SIZE, fitting))})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=60, help="backlog size (both queues)")
    parser.add_argument("--rate", type=float, default=2.0, help="SendBounce limit, calls/s")
    parser.add_argument("--workers", type=int, default=2, help="containers per processor")
    parser.add_argument(
        "--lifetime", type=float, default=8.0, help="seconds before a container is replaced"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="records per receive (default: the sizing rule's largest fitting batch, at most 3)",
    )
    parser.add_argument("--verbose", action="store_true", help="progress on stderr")
    parser.add_argument(
        "--only",
        choices=("budget", "budget20", "pacer", "stores"),
        help="one run (default: budget, budget20 and pacer); budget20: run 1 at 1/s with 2 "
        "processors x 10 containers; stores: DynamoDB vs S3 slot latency",
    )
    args = parser.parse_args()
    print(f"  load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.only == "stores":
        print("slot stores on moto's server, relative local figures (not AWS latencies)")
        compare_stores(takers=4, takes=25)
        return 0

    from bounce_runtime.contract import SEND_BUDGET_MARGIN_S

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    failed = False
    if args.only in (None, "budget"):
        sized = with_batch_size(args)
        outcome = run(sized, strict=True)
        report_budget_run(sized, outcome, SEND_BUDGET_MARGIN_S)
        failed |= bool(outcome.worker_failures)
    if args.only in (None, "budget20"):
        at_limit = argparse.Namespace(
            **{**vars(args), "rate": 1.0, "workers": 10, "lifetime": 120.0}
        )
        if args.only is None:
            at_limit.messages = 60
        sized = with_batch_size(at_limit)
        outcome = run(sized, strict=True)
        report_budget_run(sized, outcome, SEND_BUDGET_MARGIN_S)
        failed |= bool(outcome.worker_failures)
    if args.only in (None, "pacer"):
        args.batch_size = args.batch_size or MAX_BATCH_SIZE
        outcome = run(args, strict=False)
        report_pacer_run(args, outcome)
        failed |= bool(outcome.worker_failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
