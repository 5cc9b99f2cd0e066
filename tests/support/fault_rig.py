"""Lambda containers on the sqs_sim fakes, and a small rig that drives one fault at a time.

A `Container` is what lives as long as a Lambda container (clients, the SendBounce pacer); a
killed invocation takes its container with it, and the next invocation starts a fresh one.
`concurrent_copy` runs a second invocation, in another container, on a copy of a message that is
being processed (what an ``INTERLEAVE`` fault stands for). `FaultRig` is the focused tests'
world: one queue, S3, SES and dead-letter queue on one fake clock, drained to the end.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.send_budget import SendBudget
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import (
    AFTER_SEND_RESERVE_S,
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    DLQ_ATTR_REASON,
)
from bounce_runtime.core.policy import default_policy
from bounce_runtime.processor import BatchProcessor
from support.events import BUCKET, OBJECT_KEY_PREFIX, notification
from support.fake_budget import BUDGET, TABLE, FakeBudgetTable
from support.sqs_sim import (
    FakeClock,
    FakeS3,
    FakeSes,
    FakeSqsClient,
    Fault,
    FaultInjector,
    InvocationCrashed,
    SqsSimulator,
)

REDRIVEN = "max-receives-exceeded"  # what the rig reports for a message SQS moved to its DLQ
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111111111111/bounce-dlq"
MAIL = b"From: sender@example.net\r\nTo: recipient@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


@dataclass
class Container:
    """What lives as long as a Lambda container: its clients and its SendBounce pacer."""

    mail_store: MailStore
    sender: BounceSender
    dead_letter: DeadLetterQueue


def build_container(
    clock: FakeClock,
    s3: FakeS3,
    ses: FakeSes,
    dlq: FakeSqsClient,
    *,
    rate_per_second: float,
    rng: random.Random,
    after_send_reserve_s: float = AFTER_SEND_RESERVE_S,
    budget_table: FakeBudgetTable | None = None,
) -> Container:
    """A fresh container: new clients' state and a pacer that has never sent; with
    `budget_table`, it takes its slots from that shared budget, as the handler does."""
    budget = (
        None
        if budget_table is None
        else SendBudget(
            budget_table,
            table_name=TABLE,
            budget_id=BUDGET,
            rate_per_second=rate_per_second,
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(rng.random()),
        )
    )
    return Container(
        MailStore(s3),
        BounceSender(
            ses,
            Pacer(rate_per_second, clock=clock, sleep=clock.sleep),
            sleep=clock.sleep,
            rng=rng,
            after_send_reserve_s=after_send_reserve_s,
            budget=budget,
        ),
        DeadLetterQueue(dlq, DLQ_URL),
    )


def concurrent_copy(
    sqs: SqsSimulator, sqs_ids: Iterable[str], invoke: Callable[[list[dict[str, Any]]], Any]
) -> bool:
    """Deliver a copy of the first of `sqs_ids` still in the queue to `invoke` (another
    invocation) now, and apply its answer; False when none is left to copy."""
    record = next(filter(None, map(sqs.deliver_now, sqs_ids)), None)
    if record is None:
        return False
    try:
        response = invoke([record])
    except InvocationCrashed:
        sqs.fail()
    else:
        sqs.complete([record], response)
    return True


class FaultRig:
    """One queue, S3, SES and dead-letter queue on one fake clock; containers come and go.

    ``faults`` maps operations to their faults (use ``limit`` to fire a fault a set number of
    times). ``s3_skew_s`` puts S3's clock ahead (positive) or behind the function's. The claim
    TTL is the function timeout, ``invocation_s``.
    """

    def __init__(
        self,
        faults: Mapping[str, Sequence[Fault]] | None = None,
        *,
        s3_skew_s: float = 0.0,
        invocation_s: float = 60.0,
        visibility_timeout_s: float = 180.0,
        max_receives: int = 5,
        rate_per_second: float = 1.0,
        mail_time: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        shared_budget: bool = True,
    ) -> None:
        self.clock = FakeClock()
        # The account's send budget, shared by every container (None: per-container pacing).
        self.budget_table = FakeBudgetTable() if shared_budget else None
        self.started = self.clock()
        self.start_time = mail_time + timedelta(hours=1)
        self.faults = FaultInjector(random.Random(7), faults or {}, clock=self.clock)
        self.faults.interleave = self._interleave
        self.sqs = SqsSimulator(
            self.clock,
            random.Random(7),
            visibility_timeout=visibility_timeout_s,
            max_receive_count=max_receives,
        )
        self.s3 = FakeS3(self.clock, self.faults, wall_clock=self.now)
        self.s3.skew_s = s3_skew_s
        self.ses = FakeSes(
            self.clock, self.faults, verified={"example.com"}, rate_per_second=rate_per_second
        )
        self.dlq = FakeSqsClient(self.clock, self.faults)
        self.invocation_s = invocation_s
        self.rate_per_second = rate_per_second
        self.config = RuntimeConfig(
            bounce_sender="mailer-daemon@example.com",
            dead_letter_queue_url=DLQ_URL,
            policy=default_policy(),
            send_rate_per_second=rate_per_second,
            send_claim_ttl_seconds=invocation_s,
        )
        self.logs = io.StringIO()
        self.containers: dict[str, Container] = {}
        self.containers_built = 0
        self.kills = 0
        self._sqs_ids: dict[str, list[str]] = {}
        self._nested = False

    def now(self) -> datetime:
        """The function's wall clock."""
        return self.start_time + timedelta(seconds=self.clock() - self.started)

    def message(self, ses_id: str, *, copies: int = 1, **fields: Any) -> list[str]:
        """Store the mail object of `ses_id` and enqueue `copies` notifications of it."""
        key = OBJECT_KEY_PREFIX + ses_id
        self.s3.put(BUCKET, key, MAIL)
        body = json.dumps(notification(message_id=ses_id, object_key=key, **fields))
        ids = [self.sqs.send(body) for _ in range(copies)]
        self._sqs_ids[ses_id] = ids
        return ids

    def container(self, slot: str = "first") -> Container:
        """`slot`'s container, built afresh when it has none (first use or after a kill)."""
        if slot not in self.containers:
            self.containers_built += 1
            self.containers[slot] = build_container(
                self.clock,
                self.s3,
                self.ses,
                self.dlq,
                rate_per_second=self.rate_per_second,
                rng=random.Random(self.containers_built),
                budget_table=self.budget_table,
            )
        return self.containers[slot]

    def invoke(self, records: list[dict[str, Any]], slot: str = "first") -> Any:
        """One invocation in `slot`'s container; a killed invocation takes the container."""
        container = self.container(slot)
        deadline = self.clock() + self.invocation_s
        processor = BatchProcessor(
            self.config,
            mail_store=container.mail_store,
            sender=container.sender,
            dead_letter=container.dead_letter,
            metrics=BatchMetrics("CdkSesBounce", "bounce", now=self.now, stream=self.logs),
            logger=JsonLogger(self.logs, now=self.now),
            now=self.now,
            remaining_ms=lambda: int((deadline - self.clock()) * 1000),
            sleep=self.clock.sleep,
        )
        try:
            return processor.process({"Records": records})
        except InvocationCrashed:
            self.kills += 1
            del self.containers[slot]
            raise

    def drain(self, batch_size: int = 10) -> None:
        """Deliver until the queue is empty (redeliveries after the visibility timeout)."""
        self.sqs.drain(self.invoke, batch_size=batch_size, max_invocations=100)

    def _interleave(self, subject: str) -> None:
        if self._nested:
            return
        ses_id = subject.removeprefix(OBJECT_KEY_PREFIX).removesuffix(CLAIM_SUFFIX)
        self._nested = True
        try:
            concurrent_copy(
                self.sqs, self._sqs_ids[ses_id], lambda records: self.invoke(records, "second")
            )
        finally:
            self._nested = False

    # What happened -------------------------------------------------------------------------

    def sent(self, ses_id: str) -> int:
        """How many bounces SES actually sent for `ses_id`."""
        return sum(1 for b in self.ses.sent if b.request["OriginalMessageId"] == ses_id)

    def dead_letters(self) -> list[str]:
        """The reason of every dead letter: the runtime's, then SQS's redrives."""
        reasons = [letter.attributes[DLQ_ATTR_REASON] for letter in self.dlq.sent]
        return reasons + [REDRIVEN for _ in self.sqs.redriven]

    def tag(self, ses_id: str) -> str | None:
        """The bounce tag on `ses_id`'s mail object."""
        tags = self.s3.objects[(BUCKET, OBJECT_KEY_PREFIX + ses_id)].tags
        return tags.get(BOUNCE_TAG_KEY)

    def claimed(self, ses_id: str) -> bool:
        """Whether `ses_id`'s send claim is still in S3."""
        return (BUCKET, OBJECT_KEY_PREFIX + ses_id + CLAIM_SUFFIX) in self.s3.objects

    def log_reasons(self, message: str) -> list[str]:
        """The ``reason`` of every log line with this message."""
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines()]
        return [str(line.get("reason")) for line in lines if line.get("message") == message]
