"""Runs one SQS batch and owns the failure policy (the batch processor decides, the record's
workflow only raises, as in Powertools' batch utility).

What a record's failure means:

- a ``PermanentError``: dead-lettered at once with its reason;
- ``OutOfTime``: the record and the rest of the batch go back to the queue (those on their last
  receive are dead-lettered as ``retries-exhausted:deadline`` while a dead-letter call fits);
- anything else (a ``RetryableError``, an AWS error, a bug) on the record's last receive
  (``MAX_RECEIVE_COUNT``): dead-lettered as ``retries-exhausted:<cause>``;
- else: a batch item failure, for SQS to redeliver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.contract import (
    AWS_CALL_BOUND_S,
    DLQ_DETAIL_MAX_CHARS,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_MESSAGES_EXPIRED,
    METRIC_PERMANENT_FAILURES,
    REASON_DEADLINE,
    REASON_EXPIRED,
    REASON_MALFORMED_NOTIFICATION,
    REASON_RETRIES_EXHAUSTED,
    record_time_margin_seconds,
)
from bounce_runtime.dependencies import RecordDependencies
from bounce_runtime.errors import OutOfTime, PermanentError, ReasonedError
from bounce_runtime.workflow import RecordWorkflow

if TYPE_CHECKING:
    from bounce_runtime.config import RuntimeConfig

BatchResponse = dict[str, list[dict[str, str]]]


class BatchProcessor:
    """Processes the records of one SQS event; every dependency is injected (once, into the
    ``RecordDependencies`` it shares with its ``RecordWorkflow``).

    No record starts with less than ``safety_margin_s`` of Lambda time left (by default
    ``contract.record_time_margin_seconds`` for the policy): it and the rest of the batch are
    reported in ``batchItemFailures`` for SQS to redeliver.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        mail_store: MailStore,
        sender: BounceSender,
        dead_letter: DeadLetterQueue,
        metrics: BatchMetrics,
        logger: JsonLogger,
        now: Callable[[], datetime],
        remaining_ms: Callable[[], int],
        sleep: Callable[[float], None] = time.sleep,
        safety_margin_s: float | None = None,
        aws_call_bound_s: float = AWS_CALL_BOUND_S,
    ) -> None:
        self._remaining_ms = remaining_ms
        self._sender = sender  # read by tests/harness/test_runtime_bounds.py (its pacer)
        self.deps = RecordDependencies(
            config,
            mail_store=mail_store,
            sender=sender,
            dead_letter=dead_letter,
            metrics=metrics,
            logger=logger,
            now=now,
            remaining_seconds=self._remaining_seconds,
            sleep=sleep,
            aws_call_bound_s=aws_call_bound_s,
        )
        self.workflow = RecordWorkflow(self.deps)
        self.safety_margin_s = (
            safety_margin_s
            if safety_margin_s is not None
            else record_time_margin_seconds(
                needs_object_size=config.policy.needs_object_size,
                reads_headers=config.policy.guards.reads_headers,
                call_bound_s=aws_call_bound_s,
                send_attempt_s=sender.retry.attempt_timeout_s,
            )
        )

    def process(self, event: Mapping[str, Any]) -> BatchResponse:
        """Process every record; never raises for a record-level problem."""
        records = event.get("Records")
        if not isinstance(records, list):
            raise ValueError(f"event has no Records list (got keys {sorted(event)}): not SQS")
        failed: list[str] = []
        seen_ses_ids: set[str] = set()
        for index, record in enumerate(records):
            sqs_id = _sqs_id(record)
            try:
                if self._remaining_seconds() < self.safety_margin_s:
                    raise OutOfTime(
                        f"{self._remaining_seconds():.1f} s left, margin {self.safety_margin_s} s"
                    )
                if not self.process_record(record, sqs_id, seen_ses_ids):
                    failed.append(sqs_id)
            except OutOfTime as stop:
                self._stop(records[index:], failed, str(stop))
                break
        self.deps.metrics.flush()
        self.deps.logger.info("batch done", records=len(records), failed=len(failed))
        return {"batchItemFailures": [{"itemIdentifier": sqs_id} for sqs_id in failed]}

    def process_record(self, record: object, sqs_id: str, seen_ses_ids: set[str]) -> bool:
        """One record through the workflow, then the failure policy: True when it is finished
        (SQS may delete it), False to have it redelivered; raises ``OutOfTime`` when the batch
        must stop. ``seen_ses_ids``: the batch's SES message ids so far (a duplicate is skipped).
        """
        if not isinstance(record, Mapping):
            return self._bad_record(record, sqs_id)
        ses_id: str | None = None
        try:
            notification = self.workflow.read(record, sqs_id)
            if notification is None:  # SES's setup notification: acknowledged, not mail
                return True
            ses_id = notification.mail.message_id
            if ses_id in seen_ses_ids:
                self.deps.metrics.count(METRIC_DUPLICATES_SKIPPED)
                self.deps.logger.info(
                    "duplicate in batch: skipped", ses_message_id=ses_id, sqs_message_id=sqs_id
                )
                return True
            seen_ses_ids.add(ses_id)
            self.workflow.handle(notification, sqs_id)
            return True
        except OutOfTime:
            raise
        except PermanentError as error:
            return self.dead_letter(_body_text(record), sqs_id, ses_id, error.reason, error.message)
        except Exception as error:  # retryable, an AWS error or a bug: SQS redelivers the record
            return self._failed(record, sqs_id, ses_id, error)

    def _failed(
        self, record: Mapping[str, Any], sqs_id: str, ses_id: str | None, error: Exception
    ) -> bool:
        """Log the failure; dead-letter it as ``retries-exhausted:<cause>`` on the record's last
        receive, else leave it for redelivery (False)."""
        cause = failure_cause(error)
        fields = {
            "ses_message_id": ses_id,
            "sqs_message_id": sqs_id,
            "reason": cause,
            "detail": str(error)[:DLQ_DETAIL_MAX_CHARS],
        }
        last = self.last_receive(record)
        what = (
            "record failed on its last receive: dead-lettering it"
            if last
            else "record failed: left for redelivery"
        )
        if isinstance(error, ReasonedError):  # classified: the reason says it all
            self.deps.logger.error(what, **fields)
        else:  # unexpected: the traceback tells where
            self.deps.logger.exception(what, error, **fields)
        if last is None:
            return False
        return self._dead_letter_exhausted(record, last, sqs_id, ses_id, cause, str(error))

    def last_receive(self, record: Mapping[str, Any]) -> tuple[int, int] | None:
        """(receive count, maxReceiveCount) when this is the record's last receive before SQS
        would move it to the dead-letter queue without a reason, else None.

        SQS moves a message once its receive count exceeds maxReceiveCount, so the receive whose
        ``ApproximateReceiveCount`` reaches it is the last one the function sees. The count is
        approximate: read low, SQS moves the record without a reason (as without this check);
        read high, the record is dead-lettered a receive early, with its reason.
        """
        limit = self.deps.config.max_receive_count
        if limit is None:
            return None
        attributes = record.get("attributes")
        raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
        if not (isinstance(raw, str) and raw.isascii() and raw.isdigit()):
            return None
        count = int(raw)
        return (count, limit) if count >= limit else None

    def _dead_letter_exhausted(
        self,
        record: Mapping[str, Any],
        last: tuple[int, int],
        sqs_id: str,
        ses_id: str | None,
        cause: str,
        error: str,
    ) -> bool:
        return self.dead_letter(
            _body_text(record),
            sqs_id,
            ses_id,
            f"{REASON_RETRIES_EXHAUSTED}:{cause}",
            f"failed on receive {last[0]} of {last[1]} (the queue's maxReceiveCount); "
            f"last error: {error}",
        )

    def _bad_record(self, record: object, sqs_id: str) -> bool:
        """A record that is not a JSON object: dead-lettered when it has a body, else failed."""
        detail = f"SQS record: expected a JSON object, got {type(record).__name__}"
        if isinstance(record, str) and record:
            return self.dead_letter(record, sqs_id, None, REASON_MALFORMED_NOTIFICATION, detail)
        self.deps.logger.error(
            "record failed: not an SQS record",
            sqs_message_id=sqs_id,
            reason=REASON_MALFORMED_NOTIFICATION,
            detail=detail,
        )
        return False

    def dead_letter(
        self, body: str, sqs_id: str, ses_id: str | None, reason: str, detail: str
    ) -> bool:
        """Send the record's body to the dead-letter queue with ``reason``; True when sent,
        False (the record is redelivered and the dead letter tried again) when that failed."""
        try:
            self.deps.dead_letter.send(
                body=body,
                reason=reason,
                detail=detail,
                sqs_message_id=sqs_id,
                ses_message_id=ses_id,
            )
        except Exception as error:  # SQS redelivers the record; the dead letter is tried again
            self.deps.logger.error(
                "dead-letter send failed: left for redelivery",
                ses_message_id=ses_id,
                sqs_message_id=sqs_id,
                reason=reason,
                detail=str(error)[:DLQ_DETAIL_MAX_CHARS],
            )
            return False
        self.deps.metrics.count(METRIC_PERMANENT_FAILURES, reason=reason)
        if reason == REASON_EXPIRED:
            self.deps.metrics.count(METRIC_MESSAGES_EXPIRED)
        self.deps.logger.warning(
            "dead-lettered",
            ses_message_id=ses_id,
            sqs_message_id=sqs_id,
            reason=reason,
            detail=detail[:DLQ_DETAIL_MAX_CHARS],
        )
        return True

    def _stop(self, unprocessed: Sequence[object], failed: list[str], why: str) -> None:
        """Leave ``unprocessed`` for redelivery; those on their last receive are dead-lettered
        (``retries-exhausted:deadline``) while one dead-letter call still fits in the time left,
        rather than moved by SQS without a reason."""
        ids = []
        for record in unprocessed:
            sqs_id = _sqs_id(record)
            last = self.last_receive(record) if isinstance(record, Mapping) else None
            if not (
                isinstance(record, Mapping)
                and last is not None
                and self._remaining_seconds() >= self.deps.aws_call_bound_s
                and self._dead_letter_exhausted(record, last, sqs_id, None, REASON_DEADLINE, why)
            ):
                ids.append(sqs_id)
        failed.extend(ids)
        self.deps.logger.warning(
            "time is short: leaving the rest of the batch for redelivery",
            detail=why,
            unprocessed=len(ids),
            sqs_message_ids=ids,
        )

    def _remaining_seconds(self) -> float:
        return self._remaining_ms() / 1000.0


def failure_cause(error: BaseException) -> str:
    """A short token for why a record failed: a classified error's reason, an AWS error's code
    (``AccessDenied``, ``SlowDown``), else the exception's type name; ASCII letters, digits,
    ``.``, ``_``, ``-`` and ``:``, at most 64 characters (it becomes a metric dimension)."""
    import re

    if isinstance(error, ReasonedError):
        cause = error.reason
    else:
        response = getattr(error, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, Mapping) else None
        cause = code if isinstance(code, str) and code else type(error).__name__
    return re.sub(r"[^A-Za-z0-9._:-]", "_", cause, flags=re.ASCII)[:64] or "unknown"


def _body_text(record: Mapping[str, Any]) -> str:
    """The record's body as the dead letter carries it: as is, or as JSON text when it is not a
    non-empty string (SQS refuses an empty message body)."""
    body = record.get("body")
    return body if isinstance(body, str) and body else json.dumps(body)


def _sqs_id(record: object) -> str:
    """The record's SQS messageId ("" when it has none or is not a JSON object)."""
    return str(record.get("messageId", "")) if isinstance(record, Mapping) else ""
