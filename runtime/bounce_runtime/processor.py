"""Runs one SQS batch: each record through the workflow, then the partial batch response."""

from __future__ import annotations

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
    REASON_DEADLINE,
    record_time_margin_seconds,
)
from bounce_runtime.errors import OutOfTime
from bounce_runtime.workflow import RecordWorkflow

if TYPE_CHECKING:
    from bounce_runtime.config import RuntimeConfig

BatchResponse = dict[str, list[dict[str, str]]]


class BatchProcessor:
    """Processes the records of one SQS event; every dependency is injected.

    No record starts with less than ``safety_margin_s`` of Lambda time left (by default
    ``contract.record_time_margin_seconds`` for the policy): it and the rest of the batch are
    reported in ``batchItemFailures`` for SQS to redeliver. Each record's path is
    ``workflow.RecordWorkflow``'s.
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
        self.config = config
        self._metrics = metrics
        self._log = logger
        self._remaining_ms = remaining_ms
        self._sender = sender
        self.workflow = RecordWorkflow(
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
                if not isinstance(record, Mapping):
                    finished = self.workflow.bad_record(record, sqs_id)
                else:
                    finished = self.workflow.run(record, sqs_id, seen_ses_ids)
                if not finished:
                    failed.append(sqs_id)
            except OutOfTime as stop:
                self._stop(records[index:], failed, str(stop))
                break
        self._metrics.flush()
        self._log.info("batch done", records=len(records), failed=len(failed))
        return {"batchItemFailures": [{"itemIdentifier": sqs_id} for sqs_id in failed]}

    def _stop(self, unprocessed: Sequence[object], failed: list[str], why: str) -> None:
        """Leave ``unprocessed`` for redelivery; those on their last receive are dead-lettered
        (``retries-exhausted:deadline``) while one dead-letter call still fits in the time left,
        rather than moved by SQS without a reason."""
        ids = []
        for record in unprocessed:
            sqs_id = _sqs_id(record)
            if not (
                isinstance(record, Mapping)
                and self._remaining_seconds() >= self.workflow.aws_call_bound_s
                and self.workflow.dead_letter_exhausted(record, sqs_id, None, REASON_DEADLINE, why)
            ):
                ids.append(sqs_id)
        failed.extend(ids)
        self._log.warning(
            "time is short: leaving the rest of the batch for redelivery",
            detail=why,
            unprocessed=len(ids),
            sqs_message_ids=ids,
        )

    def _remaining_seconds(self) -> float:
        return self._remaining_ms() / 1000.0


def _sqs_id(record: object) -> str:
    """The record's SQS messageId ("" when it has none or is not a JSON object)."""
    return str(record.get("messageId", "")) if isinstance(record, Mapping) else ""
