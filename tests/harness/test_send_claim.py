"""Two Lambda instances process the same message at the same moment: one bounce, at every
interleaving.

Instance B runs its whole batch just before the n-th S3 or SES call of instance A, for every n
(before A's tag check, between the check and the claim, during SendBounce, between SendBounce and
the tag, after the tag). Then every record reported as failed is delivered again after the
visibility timeout, until none is left. SES must have sent exactly one bounce.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import BOUNCE_TAG_KEY, CLAIM_SUFFIX
from bounce_runtime.core.policy import default_policy
from bounce_runtime.processor import BatchProcessor
from support.events import BUCKET, MESSAGE_ID, OBJECT_KEY_PREFIX, notification, sqs_record
from support.sqs_sim import (
    CRASH,
    FakeClock,
    FakeS3,
    FakeSes,
    FakeSqsClient,
    Fault,
    FaultInjector,
    InvocationCrashed,
)

START = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)  # an hour after the event's receipt time
CLAIM_TTL_S = 60.0
VISIBILITY_TIMEOUT_S = 360.0
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111111111111/bounce-dlq"
KEY = OBJECT_KEY_PREFIX + MESSAGE_ID
# A's calls for one bounce: tag read, claim, SendBounce, tag write (with the tag set read first).
CALLS_PER_BOUNCE = 4


class CallCounter:
    """Counts an instance's S3 and SES calls; runs ``other`` once, before call number ``at``."""

    def __init__(self, at: int, other: Callable[[], None]) -> None:
        self.at = at
        self.calls = 0
        self._other: Callable[[], None] | None = other

    def before_call(self) -> None:
        self.calls += 1
        if self.calls == self.at and self._other is not None:
            other, self._other = self._other, None
            other()


class Counted:
    """A client whose every call first goes through ``counter.before_call``."""

    def __init__(self, client: Any, counter: CallCounter) -> None:
        self._client = client
        self._counter = counter

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self._counter.before_call()
            return method(**kwargs)

        return call


class World:
    """Shared S3, SES and dead-letter queue; each instance gets its own processor and pacer."""

    def __init__(self, faults: FaultInjector | None = None) -> None:
        self.clock = FakeClock()
        self.started = self.clock()
        self.faults = faults or FaultInjector(random.Random(1), {})
        self.s3 = FakeS3(self.clock, self.faults, wall_clock=self.now)
        self.ses = FakeSes(self.clock, self.faults, verified={"example.com"}, rate_per_second=1.0)
        self.dlq = FakeSqsClient(self.clock, self.faults)
        self.logs = io.StringIO()
        self.s3.put(BUCKET, KEY, b"From: sender@example.net\r\n\r\nHello\r\n")

    def now(self) -> datetime:
        return START + timedelta(seconds=self.clock() - self.started)

    def instance(self, s3: Any, ses: Any) -> Callable[[dict[str, Any]], bool]:
        """A Lambda instance; calling it processes one record, True when the record is done."""
        config = RuntimeConfig(
            bounce_sender="mailer-daemon@example.com",
            dead_letter_queue_url=DLQ_URL,
            policy=default_policy(),
            send_claim_ttl_seconds=CLAIM_TTL_S,
        )

        def process(record: dict[str, Any]) -> bool:
            deadline = self.clock() + CLAIM_TTL_S
            processor = BatchProcessor(
                config,
                mail_store=MailStore(s3),
                sender=BounceSender(
                    ses,
                    Pacer(1.0, clock=self.clock, sleep=self.clock.sleep),
                    sleep=self.clock.sleep,
                ),
                dead_letter=DeadLetterQueue(self.dlq, DLQ_URL),
                metrics=BatchMetrics("CdkSesBounce", "bounce", now=self.now, stream=self.logs),
                logger=JsonLogger(self.logs, now=self.now),
                now=self.now,
                remaining_ms=lambda: int((deadline - self.clock()) * 1000),
                sleep=self.clock.sleep,
            )
            return processor.process({"Records": [record]})["batchItemFailures"] == []

        return process

    def redeliver_until_done(
        self, pending: list[tuple[Callable[[dict[str, Any]], bool], dict[str, Any]]]
    ) -> int:
        """Deliver the failed records again after the visibility timeout; return the rounds."""
        rounds = 0
        while pending:
            rounds += 1
            assert rounds <= 3, f"records still failing after {rounds} redeliveries"
            self.clock.sleep(VISIBILITY_TIMEOUT_S)
            pending = [(run, record) for run, record in pending if not self._survives(run, record)]
        return rounds

    @staticmethod
    def _survives(run: Callable[[dict[str, Any]], bool], record: dict[str, Any]) -> bool:
        try:
            return run(record)
        except InvocationCrashed:
            return False


def copies() -> tuple[dict[str, Any], dict[str, Any]]:
    """Two SQS deliveries of one message (an SNS or SQS duplicate)."""
    body = notification()
    return sqs_record(body, message_id="sqs-a"), sqs_record(body, message_id="sqs-b")


@pytest.mark.parametrize("b_runs_before_call", range(1, CALLS_PER_BOUNCE + 2))
def test_two_instances_on_one_message_send_one_bounce(b_runs_before_call: int) -> None:
    world = World()
    record_a, record_b = copies()
    instance_b = world.instance(world.s3, world.ses)
    b_done: list[bool] = []
    counter = CallCounter(b_runs_before_call, lambda: b_done.append(instance_b(record_b)))
    instance_a = world.instance(Counted(world.s3, counter), Counted(world.ses, counter))

    a_done = instance_a(record_a)
    if not b_done:  # B runs after all of A's calls
        b_done.append(instance_b(record_b))
    runs = ((instance_a, record_a, a_done), (instance_b, record_b, b_done[0]))
    pending = [(run, record) for run, record, done in runs if not done]
    world.redeliver_until_done(pending)

    assert [bounce.request["OriginalMessageId"] for bounce in world.ses.sent] == [MESSAGE_ID]
    assert world.s3.objects[(BUCKET, KEY)].tags == {BOUNCE_TAG_KEY: world.ses.sent[0].message_id}
    assert world.dlq.sent == []
    # While A was between its claim and its tag, B found the claim and waited for a redelivery.
    assert b_done == [b_runs_before_call not in (3, 4)]


def test_a_crash_between_send_and_tag_never_sends_twice() -> None:
    world = World(FaultInjector(random.Random(1), {"PutObjectTagging": (Fault(CRASH, 0, 1.0),)}))
    record_a, record_b = copies()
    instance_a = world.instance(world.s3, world.ses)
    instance_b = world.instance(world.s3, world.ses)
    with pytest.raises(InvocationCrashed):
        instance_a(record_a)
    assert not instance_b(record_b)  # the claim is fresh: A may still be running
    world.redeliver_until_done([(instance_a, record_a), (instance_b, record_b)])

    assert len(world.ses.sent) == 1
    assert (BUCKET, KEY + CLAIM_SUFFIX) in world.s3.objects
    assert sorted(
        (d.attributes["sqs-message-id"], d.attributes["reason"]) for d in world.dlq.sent
    ) == [
        ("sqs-a", "ses-outcome-unknown"),
        ("sqs-b", "ses-outcome-unknown"),
    ]


def test_a_claim_given_back_after_a_refusal_lets_a_redelivery_send() -> None:
    world = World()
    record_a, record_b = copies()
    instance_a = world.instance(world.s3, world.ses)
    world.faults.faults = {"SendBounce": (Fault("Throttling", 400, 1.0),)}
    assert not instance_a(record_a)  # throttled on every attempt: the claim is released
    assert (BUCKET, KEY + CLAIM_SUFFIX) not in world.s3.objects
    world.faults.faults = {}
    assert world.instance(world.s3, world.ses)(record_b)
    assert len(world.ses.sent) == 1
