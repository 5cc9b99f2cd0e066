"""Runs one SQS batch: plan, claim, send, tag, dead-letter; returns the partial batch response."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bounce_runtime.config import RuntimeConfig
from bounce_runtime.dead_letter import DeadLetterQueue
from bounce_runtime.decision import (
    SEND_BOUNCE_WINDOW,
    MessagePlan,
    needs_full_headers,
    plan_message,
)
from bounce_runtime.dsn import build_send_bounce_request
from bounce_runtime.errors import MalformedNotification, PermanentError
from bounce_runtime.mail_store import MailStore, bounce_tag_in
from bounce_runtime.notification import ReceivedNotification, parse_notification_body
from bounce_runtime.observability import BatchMetrics, JsonLogger
from bounce_runtime.ses_sender import (
    AWS_CALL_BOUND_S,
    OUTCOME_UNKNOWN,
    BounceSender,
    SendDeadlineExceeded,
    SendResult,
    TransientSendError,
)

# Stop taking new records when less than this is left, or less than the record's S3 calls before
# the send (each bounded by AWS_CALL_BOUND_S) plus one SendBounce attempt, if longer.
MIN_SAFETY_MARGIN_S = 5.0
# Plan as if this much later: a bounce is not started when SES's 24-hour window is about to close.
EXPIRY_MARGIN = timedelta(minutes=1)
TAG_ATTEMPTS = 3
TAG_RETRY_DELAY_S = 0.1
_RECIPIENT_METRICS = {
    "bounce": "RecipientsBounced",
    "accept": "RecipientsAccepted",
    "suppress": "RecipientsSuppressed",
}

BatchResponse = dict[str, list[dict[str, str]]]


class _OutOfTime(Exception):
    """Raised inside a record when the batch must stop; the record and the rest are retried."""


class SendClaimHeld(Exception):
    """Another delivery of the message holds its send claim and may still be sending: the record
    is left for redelivery, by when that delivery has tagged the object or died."""

    reason = "send-claim-held"


class BatchProcessor:
    """Processes the records of one SQS event; every dependency is injected.

    ``aws_call_bound_s`` is the longest one S3 or SQS call can take (the clients' timeouts and
    attempts): no record starts, claims or retries tagging without time for its calls.

    A record ends as: bounced (then tagged), accepted or suppressed, skipped as a duplicate,
    dead-lettered with a reason, or reported in ``batchItemFailures`` for SQS to redeliver.
    Before sending, the record claims the message (``MailStore.claim_send``): only the delivery
    that wins the claim may send, so no bounce goes out twice.
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
        self._identity = config.sender_identity()
        self._mail_store = mail_store
        self._sender = sender
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._log = logger
        self._now = now
        self._remaining_ms = remaining_ms
        self._sleep = sleep
        self.aws_call_bound_s = aws_call_bound_s
        self.safety_margin_s = (
            safety_margin_s
            if safety_margin_s is not None
            else max(
                MIN_SAFETY_MARGIN_S,
                self._pre_send_calls() * aws_call_bound_s + sender.retry.attempt_timeout_s,
            )
        )

    def _pre_send_calls(self) -> int:
        """The most S3 calls a record makes before SendBounce: HeadObject when the policy
        matches on size, GetObject when a guard reads headers, GetObjectTagging, the claim."""
        policy = self.config.policy
        return int(policy.needs_object_size) + int(policy.guards.reads_headers) + 2

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
                    raise _OutOfTime(
                        f"{self._remaining_seconds():.1f} s left, margin {self.safety_margin_s} s"
                    )
                if not isinstance(record, Mapping):
                    if not self._bad_record(record, sqs_id):
                        failed.append(sqs_id)
                elif not self._process_record(record, sqs_id, seen_ses_ids):
                    failed.append(sqs_id)
            except _OutOfTime as stop:
                self._stop(records[index:], failed, str(stop))
                break
        self._metrics.flush()
        self._log.info("batch done", records=len(records), failed=len(failed))
        return {"batchItemFailures": [{"itemIdentifier": sqs_id} for sqs_id in failed]}

    def _bad_record(self, record: object, sqs_id: str) -> bool:
        """A record that is not a JSON object: dead-lettered when it has a body, else failed."""
        detail = f"SQS record: expected a JSON object, got {type(record).__name__}"
        if isinstance(record, str) and record:
            return self._dead_letter_record(record, sqs_id, None, "malformed-notification", detail)
        self._log.error(
            "record failed: not an SQS record",
            sqs_message_id=sqs_id,
            reason="malformed-notification",
            detail=detail,
        )
        return False

    def _stop(self, unprocessed: Sequence[object], failed: list[str], why: str) -> None:
        ids = [_sqs_id(record) for record in unprocessed]
        failed.extend(ids)
        self._log.warning(
            "time is short: leaving the rest of the batch for redelivery",
            detail=why,
            unprocessed=len(ids),
            sqs_message_ids=ids,
        )

    def _remaining_seconds(self) -> float:
        return self._remaining_ms() / 1000.0

    def _process_record(
        self, record: Mapping[str, Any], sqs_id: str, seen_ses_ids: set[str]
    ) -> bool:
        """True when the record is finished (SQS may delete it), False to have it redelivered."""
        body = record.get("body")
        ses_id: str | None = None
        try:
            if not isinstance(body, str):
                raise MalformedNotification(f"body: expected a string, got {type(body).__name__}")
            notification = parse_notification_body(body)
            ses_id = notification.mail.message_id
            if ses_id in seen_ses_ids:
                self._metrics.count("DuplicatesSkipped")
                self._log.info(
                    "duplicate in batch: skipped", ses_message_id=ses_id, sqs_message_id=sqs_id
                )
                return True
            seen_ses_ids.add(ses_id)
            self._handle(notification, body, sqs_id)
            return True
        except PermanentError as error:
            original = body if isinstance(body, str) and body else json.dumps(body)
            return self._dead_letter_record(original, sqs_id, ses_id, error.reason, error.message)
        except SendDeadlineExceeded as error:
            raise _OutOfTime(str(error)) from error
        except _OutOfTime:
            raise
        except Exception as error:  # transient or unexpected: SQS redelivers the record
            self._log.error(
                "record failed: left for redelivery",
                ses_message_id=ses_id,
                sqs_message_id=sqs_id,
                reason=getattr(error, "reason", type(error).__name__),
                detail=str(error)[:1000],
            )
            return False

    def _handle(self, notification: ReceivedNotification, body: str, sqs_id: str) -> None:
        ses_id = notification.mail.message_id
        action = notification.receipt.action
        policy = self.config.policy
        object_size = (
            self._mail_store.object_size(action.bucket_name, action.object_key)
            if policy.needs_object_size
            else None
        )
        headers = (
            self._mail_store.read_headers(action.bucket_name, action.object_key)
            if needs_full_headers(notification, policy)
            else None
        )
        plan = plan_message(
            notification,
            policy,
            now=self._now() + EXPIRY_MARGIN,
            object_size=object_size,
            headers=headers,
        )
        tags: list[dict[str, str]] = []
        if plan.outcome in ("bounce", "expired"):
            tags = self._mail_store.tags(action.bucket_name, action.object_key)
            earlier = bounce_tag_in(tags)
            if earlier is not None:
                self._skip_bounced(ses_id, sqs_id, earlier)
                return
        if plan.outcome == "expired":
            raise PermanentError(
                "expired",
                f"received at {notification.mail.timestamp.isoformat()}: more than 24 hours "
                "ago, past the SendBounce window",
            )
        request = build_send_bounce_request(plan, self._identity)
        if request is None:
            self._finish(plan, ses_id, sqs_id, bounce_message_id=None)
            return
        needed = self.aws_call_bound_s + self._sender.min_send_seconds
        if self._remaining_seconds() < needed:
            raise _OutOfTime(
                f"{self._remaining_seconds():.1f} s left: claiming and sending need {needed:.1f} s"
            )
        if not self._claim(action.bucket_name, action.object_key, ses_id, sqs_id):
            return
        window_closes = notification.mail.timestamp + SEND_BOUNCE_WINDOW
        result = self._send_claimed(
            request,
            action.bucket_name,
            action.object_key,
            ses_id,
            window_seconds=lambda: (window_closes - self._now()).total_seconds(),
        )
        self._metrics.count("BouncesSent")
        self._tag(action.bucket_name, action.object_key, result.message_id, ses_id, tags)
        self._finish(
            plan,
            ses_id,
            sqs_id,
            bounce_message_id=result.message_id,
            attempts=result.attempts,
            throttles=result.throttles,
        )

    def _skip_bounced(self, ses_id: str, sqs_id: str, bounce_message_id: str) -> None:
        self._metrics.count("DuplicatesSkipped")
        self._log.info(
            "already bounced: skipped",
            ses_message_id=ses_id,
            sqs_message_id=sqs_id,
            bounce_message_id=bounce_message_id,
        )

    def _claim(self, bucket: str, key: str, ses_id: str, sqs_id: str) -> bool:
        """Claim the message's send; False when another delivery has bounced it meanwhile.

        Raises ``SendClaimHeld`` while another delivery's claim is younger than the claim TTL
        (it may still be sending), and ``PermanentError`` (``ses-outcome-unknown``) for an older
        claim whose object was never tagged: that delivery stopped after claiming (or could not
        tag, or release the claim), so the bounce may or may not have gone out: never resent.
        """
        if self._mail_store.claim_send(bucket, key, sqs_message_id=sqs_id, now=self._now()):
            return True
        earlier = self._mail_store.bounce_tag(bucket, key)
        if earlier is not None:
            self._skip_bounced(ses_id, sqs_id, earlier)
            return False
        claimed_at = self._mail_store.claimed_at(bucket, key)
        if claimed_at is None:
            raise SendClaimHeld(f"the send claim of s3://{bucket}/{key} was just released")
        age_s = (self._now() - claimed_at).total_seconds()
        ttl_s = self.config.send_claim_ttl_seconds
        if age_s < ttl_s:
            raise SendClaimHeld(
                f"another delivery claimed the send {age_s:.0f} s ago (claim TTL {ttl_s:.0f} s)"
            )
        raise PermanentError(
            OUTCOME_UNKNOWN,
            f"the send was claimed at {claimed_at.isoformat()} ({age_s:.0f} s ago, claim TTL "
            f"{ttl_s:.0f} s) but s3://{bucket}/{key} was never tagged: the delivery that claimed "
            "it stopped, could not tag, or could not release the claim; the bounce may have gone "
            "out",
        )

    def _send_claimed(
        self,
        request: Mapping[str, Any],
        bucket: str,
        key: str,
        ses_id: str,
        *,
        window_seconds: Callable[[], float],
    ) -> SendResult:
        """Send under the claim; release it when SES certainly did not send the bounce."""
        try:
            return self._sender.send(
                request,
                remaining_seconds=self._remaining_seconds,
                window_seconds=window_seconds,
                on_throttle=lambda: self._metrics.count("SendBounceThrottled"),
            )
        except TransientSendError:
            self._release(bucket, key, ses_id)
            raise
        except PermanentError as error:
            if error.reason != OUTCOME_UNKNOWN:
                self._release(bucket, key, ses_id)
            raise

    def _release(self, bucket: str, key: str, ses_id: str) -> None:
        """Delete the claim; if that fails it stays, and a redelivery is dead-lettered."""
        try:
            self._mail_store.release_claim(bucket, key)
        except Exception as error:  # the claim stays: a redelivery ends in the dead-letter queue
            self._log.error(
                "send claim not released: a redelivery will be dead-lettered",
                ses_message_id=ses_id,
                object=f"s3://{bucket}/{key}",
                detail=str(error)[:1000],
            )

    def _tag(
        self,
        bucket: str,
        key: str,
        bounce_message_id: str,
        ses_id: str,
        tags: list[dict[str, str]],
    ) -> None:
        """Tag the object (merging ``tags``, its tag set read before the send); a failure is
        logged and counted, never a reason to send again. A retry starts only if it can finish
        before the Lambda timeout."""
        for attempt in range(1, TAG_ATTEMPTS + 1):
            try:
                self._mail_store.tag_bounced(bucket, key, bounce_message_id, tags)
                return
            except Exception as error:  # the bounce is out: nothing may send it again
                delay = TAG_RETRY_DELAY_S * attempt
                if (
                    attempt == TAG_ATTEMPTS
                    or self._remaining_seconds() < delay + self.aws_call_bound_s
                ):
                    self._metrics.count("TaggingFailures")
                    self._log.error(
                        "bounce sent but the object could not be tagged",
                        ses_message_id=ses_id,
                        bounce_message_id=bounce_message_id,
                        object=f"s3://{bucket}/{key}",
                        detail=str(error)[:1000],
                    )
                    return
                self._sleep(delay)

    def _finish(
        self,
        plan: MessagePlan,
        ses_id: str,
        sqs_id: str,
        *,
        bounce_message_id: str | None,
        **fields: Any,
    ) -> None:
        decisions = []
        for decision in plan.decisions:
            self._metrics.count(_RECIPIENT_METRICS[decision.action], reason=decision.reason)
            decisions.append(
                {
                    "recipient": decision.recipient,
                    "decision": decision.action,
                    "reason": decision.reason,
                }
            )
        self._log.info(
            f"message {plan.outcome}",
            ses_message_id=ses_id,
            sqs_message_id=sqs_id,
            outcome=plan.outcome,
            recipients=decisions,
            bounce_message_id=bounce_message_id,
            **fields,
        )

    def _dead_letter_record(
        self, body: str, sqs_id: str, ses_id: str | None, reason: str, detail: str
    ) -> bool:
        try:
            self._dead_letter.send(
                body=body,
                reason=reason,
                detail=detail,
                sqs_message_id=sqs_id,
                ses_message_id=ses_id,
            )
        except Exception as error:  # SQS redelivers the record; the dead letter is tried again
            self._log.error(
                "dead-letter send failed: left for redelivery",
                ses_message_id=ses_id,
                sqs_message_id=sqs_id,
                reason=reason,
                detail=str(error)[:1000],
            )
            return False
        self._metrics.count("PermanentFailures", reason=reason)
        if reason == "expired":
            self._metrics.count("MessagesExpired")
        self._log.warning(
            "dead-lettered",
            ses_message_id=ses_id,
            sqs_message_id=sqs_id,
            reason=reason,
            detail=detail[:1000],
        )
        return True


def _sqs_id(record: object) -> str:
    """The record's SQS messageId ("" when it has none or is not a JSON object)."""
    return str(record.get("messageId", "")) if isinstance(record, Mapping) else ""
