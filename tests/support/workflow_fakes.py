"""In-memory stand-ins for the workflow's adapters (mail store, sender, dead-letter queue) and a
Lambda clock set by hand, so a test can put a record at any edge: a claim lost, a release or a
tag that fails, a send that takes the time it is given, exactly N seconds left."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bounce_runtime.adapters.mail_store import ClaimAge
from bounce_runtime.adapters.ses_sender import RetryPolicy, SendResult
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import AFTER_SEND_RESERVE_S, BOUNCE_TAG_KEY
from bounce_runtime.core.policy import default_policy
from bounce_runtime.processor import BatchProcessor

NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)  # one hour after the events' receipt time
BOUNCE_SENDER = "mailer-daemon@example.com"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bounce-dlq"
CLAIM_TTL_S = 120.0


class LambdaClock:
    """The Lambda time left, set by the test; ``sleep`` spends it."""

    def __init__(self, remaining_s: float = 900.0) -> None:
        self.remaining_s = remaining_s
        self.sleeps: list[float] = []

    def remaining_seconds(self) -> float:
        return self.remaining_s

    def remaining_ms(self) -> int:
        return int(self.remaining_s * 1000)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.remaining_s -= seconds


class MailStore:
    """The mail object and its claim in memory; ``calls`` lists the operations in order.

    ``claim_free``: whether ``claim_send`` wins; ``claim_age_s``: the other delivery's claim
    (None: released); ``release_error`` / ``tag_errors``: raised by those calls (``tag_errors``
    one per call, in order); ``tags_error``: raised when the tag set is read."""

    def __init__(self) -> None:
        self.tag_set: list[dict[str, str]] = []
        self.claim_free = True
        self.claim_age_s: float | None = None
        self.release_error: Exception | None = None
        self.tag_errors: list[Exception] = []
        self.tags_error: Exception | None = None
        self.calls: list[str] = []

    def tags(self, bucket: str, key: str) -> list[dict[str, str]]:
        self.calls.append("tags")
        if self.tags_error is not None:
            raise self.tags_error
        return list(self.tag_set)

    def bounce_tag(self, bucket: str, key: str) -> str | None:
        self.calls.append("bounce_tag")
        return next((t["Value"] for t in self.tag_set if t["Key"] == BOUNCE_TAG_KEY), None)

    def claim_send(self, bucket: str, key: str, *, sqs_message_id: str, now: datetime) -> bool:
        self.calls.append("claim")
        return self.claim_free

    def claim_age(self, bucket: str, key: str, *, now: datetime) -> ClaimAge | None:
        self.calls.append("claim_age")
        if self.claim_age_s is None:
            return None
        return ClaimAge(now - timedelta(seconds=self.claim_age_s), self.claim_age_s)

    def release_claim(self, bucket: str, key: str) -> None:
        self.calls.append("release")
        if self.release_error is not None:
            raise self.release_error

    def tag_bounced(
        self, bucket: str, key: str, bounce_message_id: str, tags: list[dict[str, str]]
    ) -> None:
        self.calls.append("tag")
        if self.tag_errors:
            raise self.tag_errors.pop(0)
        self.tag_set = [*tags, {"Key": BOUNCE_TAG_KEY, "Value": bounce_message_id}]


class Sender:
    """Answers each send from ``outcomes`` (a SendResult is returned, an exception raised),
    leaving ``remaining_after_s`` of Lambda time when set (the send took the rest)."""

    def __init__(
        self,
        clock: LambdaClock,
        *outcomes: SendResult | Exception,
        attempt_timeout_s: float = 6.0,
        remaining_after_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.outcomes = list(outcomes) or [SendResult("bounce-1", 1, 0)]
        self.retry = RetryPolicy(attempt_timeout_s=attempt_timeout_s)
        self.after_send_reserve_s = AFTER_SEND_RESERVE_S
        self.remaining_after_s = remaining_after_s
        self.requests: list[dict[str, Any]] = []

    @property
    def min_send_seconds(self) -> float:
        return self.retry.attempt_timeout_s + self.after_send_reserve_s

    def send(self, request: dict[str, Any], **_: Any) -> SendResult:
        self.requests.append(request)
        if self.remaining_after_s is not None:
            self.clock.remaining_s = self.remaining_after_s
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class DeadLetters:
    """Keeps every dead letter sent; raises ``error`` instead when it is set."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.error: Exception | None = None

    def send(self, **letter: Any) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(letter)


class RecordRun:
    """``run(record, sqs_id, seen)``: True when the record is finished, False to redeliver it."""

    def __init__(self, processor: BatchProcessor) -> None:
        self.processor = processor
        self.run = processor.process_record


class Rig:
    """A RecordWorkflow (and a BatchProcessor on it) over the fakes, logs and metrics captured."""

    def __init__(self, clock: LambdaClock | None = None, **settings: Any) -> None:
        self.clock = clock or LambdaClock()
        self.store = MailStore()
        self.sender = Sender(self.clock)
        self.dead_letters = DeadLetters()
        self.logs, self.emf = io.StringIO(), io.StringIO()
        self.metrics = BatchMetrics("CdkSesBounce", "bounce-fn", now=lambda: NOW, stream=self.emf)
        self.logger = JsonLogger(self.logs, now=lambda: NOW)
        settings.setdefault("policy", default_policy())
        self.config = RuntimeConfig(
            bounce_sender=BOUNCE_SENDER,
            dead_letter_queue_url=DLQ_URL,
            send_claim_ttl_seconds=CLAIM_TTL_S,
            **settings,
        )

    def workflow(self, **options: Any) -> RecordRun:
        """One record's run through the workflow and the processor's failure policy (a record
        is judged by the batch processor; the workflow alone only raises)."""
        options.setdefault("safety_margin_s", 0.0)
        return RecordRun(self.processor(**options))

    def processor(self, **options: Any) -> BatchProcessor:
        return BatchProcessor(
            self.config, remaining_ms=self.clock.remaining_ms, **self._adapters(), **options
        )

    def _adapters(self) -> dict[str, Any]:
        return {
            "mail_store": self.store,
            "sender": self.sender,
            "dead_letter": self.dead_letters,
            "metrics": self.metrics,
            "logger": self.logger,
            "now": lambda: NOW,
            "sleep": self.clock.sleep,
        }

    def log_lines(self, message: str | None = None) -> list[dict[str, Any]]:
        """The log lines (those with ``message`` when given), without their timestamp."""
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines()]
        for line in lines:
            del line["timestamp"]
        return [line for line in lines if message is None or line["message"] == message]

    def totals(self) -> dict[str, int]:
        """The batch's non-zero metric totals (flushes the metrics)."""
        self.metrics.flush()
        document = json.loads(self.emf.getvalue().splitlines()[0])
        names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        return {name: document[name] for name in names if document[name]}
