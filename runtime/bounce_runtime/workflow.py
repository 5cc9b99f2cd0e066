"""One SQS record, start to end: parse, plan, claim, send, tag, or dead-letter with a reason.

``RecordWorkflow.run`` says whether the record is finished (SQS may delete it) or must be
redelivered; it raises ``OutOfTime`` when the batch must stop. The batch loop is ``processor``'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore, bounce_tag_in
from bounce_runtime.adapters.ses_sender import BounceSender, SendResult
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.contract import (
    AWS_CALL_BOUND_S,
    DLQ_DETAIL_MAX_CHARS,
    METRIC_BOUNCES_SENT,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_MESSAGES_EXPIRED,
    METRIC_PERMANENT_FAILURES,
    METRIC_RECIPIENTS_ACCEPTED,
    METRIC_RECIPIENTS_BOUNCED,
    METRIC_RECIPIENTS_SUPPRESSED,
    METRIC_SEND_BOUNCE_THROTTLED,
    METRIC_SEND_BUDGET_UNAVAILABLE,
    METRIC_SEND_SLOT_WAIT,
    METRIC_TAGGING_FAILURES,
    REASON_EXPIRED,
    REASON_FAILED_BEFORE_SEND,
    REASON_FOREIGN_MAIL_OBJECT,
    REASON_MALFORMED_NOTIFICATION,
    REASON_OUTCOME_UNKNOWN,
    REASON_RETRIES_EXHAUSTED,
)
from bounce_runtime.core.decision import (
    SEND_BOUNCE_WINDOW,
    MessagePlan,
    needs_full_headers,
    plan_message,
)
from bounce_runtime.core.notification import ReceivedNotification, parse_notification_body
from bounce_runtime.core.ownership import mail_object_problem
from bounce_runtime.errors import (
    MalformedNotification,
    OutOfTime,
    PermanentError,
    ReasonedError,
    SendBudgetUnavailable,
    SendClaimHeld,
    SendDeadlineExceeded,
    TransientSendError,
)

if TYPE_CHECKING:
    from bounce_runtime.config import RuntimeConfig

# Plan as if this much later: a bounce is not started when SES's 24-hour window is about to close.
EXPIRY_MARGIN = timedelta(minutes=1)
TAG_ATTEMPTS = 3
TAG_RETRY_DELAY_S = 0.1
_RECIPIENT_METRICS = {
    "bounce": METRIC_RECIPIENTS_BOUNCED,
    "accept": METRIC_RECIPIENTS_ACCEPTED,
    "suppress": METRIC_RECIPIENTS_SUPPRESSED,
}


class RecordWorkflow:
    """Takes one record to its end; every dependency is injected.

    ``aws_call_bound_s`` is the longest one S3 or SQS call can take (the clients' timeouts and
    attempts): no record claims or retries tagging without time for its calls.

    A record ends as: bounced (then tagged), accepted or suppressed, skipped as a duplicate,
    dead-lettered with a reason, or left for SQS to redeliver. Before sending, the record claims
    the message (``MailStore.claim_send``): only the delivery that wins the claim may send, so no
    bounce goes out twice.
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
        remaining_seconds: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        aws_call_bound_s: float = AWS_CALL_BOUND_S,
    ) -> None:
        self.config = config
        self._mail_store = mail_store
        self._sender = sender
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._log = logger
        self._now = now
        self._remaining_seconds = remaining_seconds
        self._sleep = sleep
        self.aws_call_bound_s = aws_call_bound_s

    def run(self, record: Mapping[str, Any], sqs_id: str, seen_ses_ids: set[str]) -> bool:
        """True when the record is finished (SQS may delete it), False to have it redelivered.

        ``seen_ses_ids`` holds the SES message ids of the batch so far (a duplicate is skipped).
        """
        body = record.get("body")
        ses_id: str | None = None
        try:
            if not isinstance(body, str):
                raise MalformedNotification(f"body: expected a string, got {type(body).__name__}")
            notification = parse_notification_body(body)
            ses_id = notification.mail.message_id
            if ses_id in seen_ses_ids:
                self._metrics.count(METRIC_DUPLICATES_SKIPPED)
                self._log.info(
                    "duplicate in batch: skipped", ses_message_id=ses_id, sqs_message_id=sqs_id
                )
                return True
            seen_ses_ids.add(ses_id)
            self._handle(notification, sqs_id)
            return True
        except PermanentError as error:
            original = body if isinstance(body, str) and body else json.dumps(body)
            return self.dead_letter_record(original, sqs_id, ses_id, error.reason, error.message)
        except SendDeadlineExceeded as error:
            raise OutOfTime(str(error)) from error
        except OutOfTime:
            raise
        except Exception as error:  # transient, an AWS error or a bug: SQS redelivers the record
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
                self._log.error(what, **fields)
            else:  # unexpected: the traceback tells where
                self._log.exception(what, error, **fields)
            if last is None:
                return False
            return self._dead_letter_exhausted(record, last, sqs_id, ses_id, cause, str(error))

    def dead_letter_exhausted(
        self, record: Mapping[str, Any], sqs_id: str, ses_id: str | None, cause: str, error: str
    ) -> bool:
        """On the record's last receive, dead-letter it as ``retries-exhausted:<cause>``; True
        when sent, False when this is not its last receive or the send failed (SQS redrives)."""
        last = self.last_receive(record)
        if last is None:
            return False
        return self._dead_letter_exhausted(record, last, sqs_id, ses_id, cause, error)

    def _dead_letter_exhausted(
        self,
        record: Mapping[str, Any],
        last: tuple[int, int],
        sqs_id: str,
        ses_id: str | None,
        cause: str,
        error: str,
    ) -> bool:
        body = record.get("body")
        return self.dead_letter_record(
            body if isinstance(body, str) and body else json.dumps(body),
            sqs_id,
            ses_id,
            f"{REASON_RETRIES_EXHAUSTED}:{cause}",
            f"failed on receive {last[0]} of {last[1]} (the queue's maxReceiveCount); "
            f"last error: {error}",
        )

    def last_receive(self, record: Mapping[str, Any]) -> tuple[int, int] | None:
        """(receive count, maxReceiveCount) when this is the record's last receive before SQS
        would move it to the dead-letter queue without a reason, else None.

        SQS moves a message once its receive count exceeds maxReceiveCount, so the receive whose
        ``ApproximateReceiveCount`` reaches it is the last one the function sees. The count is
        approximate: read low, SQS moves the record without a reason (as without this check);
        read high, the record is dead-lettered a receive early, with its reason.
        """
        limit = self.config.max_receive_count
        if limit is None:
            return None
        attributes = record.get("attributes")
        raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
        if not (isinstance(raw, str) and raw.isascii() and raw.isdigit()):
            return None
        count = int(raw)
        return (count, limit) if count >= limit else None

    def bad_record(self, record: object, sqs_id: str) -> bool:
        """A record that is not a JSON object: dead-lettered when it has a body, else failed."""
        detail = f"SQS record: expected a JSON object, got {type(record).__name__}"
        if isinstance(record, str) and record:
            return self.dead_letter_record(
                record, sqs_id, None, REASON_MALFORMED_NOTIFICATION, detail
            )
        self._log.error(
            "record failed: not an SQS record",
            sqs_message_id=sqs_id,
            reason=REASON_MALFORMED_NOTIFICATION,
            detail=detail,
        )
        return False

    def _handle(self, notification: ReceivedNotification, sqs_id: str) -> None:
        self._check_mail_object(notification)
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
            owned=self.config.owned_recipients,
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
                REASON_EXPIRED,
                f"received at {notification.mail.timestamp.isoformat()}: more than 24 hours "
                "ago, past the SendBounce window",
            )
        request = self._request(plan)
        if request is None:
            self._finish(plan, ses_id, sqs_id, bounce_message_id=None)
            return
        needed = self.aws_call_bound_s + self._sender.min_send_seconds
        if self._remaining_seconds() < needed:
            raise OutOfTime(
                f"{self._remaining_seconds():.1f} s left: claiming and sending need {needed:.1f} s"
            )
        window_closes = notification.mail.timestamp + SEND_BOUNCE_WINDOW
        if not self._claim(action.bucket_name, action.object_key, ses_id, sqs_id):
            return
        result = self._send_claimed(
            request,
            action.bucket_name,
            action.object_key,
            ses_id,
            window_seconds=lambda: (window_closes - self._now()).total_seconds(),
        )
        self._metrics.count(METRIC_BOUNCES_SENT)
        self._metrics.count(METRIC_SEND_SLOT_WAIT, round(result.waited_s * 1000))
        self._tag(action.bucket_name, action.object_key, result.message_id, ses_id, tags)
        self._finish(
            plan,
            ses_id,
            sqs_id,
            bounce_message_id=result.message_id,
            attempts=result.attempts,
            throttles=result.throttles,
            waited_for_slots_s=round(result.waited_s, 3),
        )

    def _check_mail_object(self, notification: ReceivedNotification) -> None:
        """Before any S3 call: a notification naming a mail object that is not this
        processor's is dead-lettered (``foreign-mail-object``), never read and never retried."""
        if self.config.mail_bucket is None:  # not configured (local use only)
            return
        problem = mail_object_problem(
            notification, bucket=self.config.mail_bucket, prefix=self.config.object_key_prefix
        )
        if problem is not None:
            raise PermanentError(REASON_FOREIGN_MAIL_OBJECT, problem)

    def _request(self, plan: MessagePlan) -> dict[str, Any] | None:
        """The SendBounce request of ``plan``, or None when it bounces no one. The request
        builder is imported here: a message that is accepted or suppressed never needs it."""
        if not plan.bounced:
            return None
        from bounce_runtime.core.dsn import build_send_bounce_request

        return build_send_bounce_request(plan, self.config.sender_identity())

    def _skip_bounced(self, ses_id: str, sqs_id: str, bounce_message_id: str) -> None:
        self._metrics.count(METRIC_DUPLICATES_SKIPPED)
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
        claim = self._mail_store.claim_age(bucket, key, now=self._now())
        if claim is None:
            raise SendClaimHeld(f"the send claim of s3://{bucket}/{key} was just released")
        claimed_at, age_s = claim
        ttl_s = self.config.send_claim_ttl_seconds
        if age_s < ttl_s:
            raise SendClaimHeld(
                f"another delivery claimed the send {age_s:.0f} s ago (claim TTL {ttl_s:.0f} s)"
            )
        raise PermanentError(
            REASON_OUTCOME_UNKNOWN,
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
        """Send under the claim; release it when SES certainly did not send the bounce (an
        unreachable send budget is counted: nothing was sent, the record is redelivered)."""
        try:
            return self._sender.send(
                request,
                remaining_seconds=self._remaining_seconds,
                window_seconds=window_seconds,
                on_throttle=lambda: self._metrics.count(METRIC_SEND_BOUNCE_THROTTLED),
            )
        except TransientSendError as error:
            if isinstance(error, SendBudgetUnavailable):
                self._metrics.count(METRIC_SEND_BUDGET_UNAVAILABLE)
            self._release(bucket, key, ses_id)
            raise
        except PermanentError as error:
            if error.reason != REASON_OUTCOME_UNKNOWN:
                self._release(bucket, key, ses_id)
            raise
        except Exception as error:  # the sender classifies every error of the call: SES unseen
            self._release(bucket, key, ses_id)
            raise PermanentError(
                REASON_FAILED_BEFORE_SEND,
                f"{type(error).__name__} before SendBounce was called (the claim was released): "
                f"{error}",
            ) from error

    def _release(self, bucket: str, key: str, ses_id: str) -> None:
        """Delete the claim; if that fails it stays, and a redelivery is dead-lettered."""
        try:
            self._mail_store.release_claim(bucket, key)
        except Exception as error:  # the claim stays: a redelivery ends in the dead-letter queue
            self._log.error(
                "send claim not released: a redelivery will be dead-lettered",
                ses_message_id=ses_id,
                object=f"s3://{bucket}/{key}",
                detail=str(error)[:DLQ_DETAIL_MAX_CHARS],
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
                    self._metrics.count(METRIC_TAGGING_FAILURES)
                    self._log.error(
                        "bounce sent but the object could not be tagged",
                        ses_message_id=ses_id,
                        bounce_message_id=bounce_message_id,
                        object=f"s3://{bucket}/{key}",
                        detail=str(error)[:DLQ_DETAIL_MAX_CHARS],
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

    def dead_letter_record(
        self, body: str, sqs_id: str, ses_id: str | None, reason: str, detail: str
    ) -> bool:
        """Send the record's body to the dead-letter queue with ``reason``; True when sent,
        False (the record is redelivered and the dead letter tried again) when that failed."""
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
                detail=str(error)[:DLQ_DETAIL_MAX_CHARS],
            )
            return False
        self._metrics.count(METRIC_PERMANENT_FAILURES, reason=reason)
        if reason == REASON_EXPIRED:
            self._metrics.count(METRIC_MESSAGES_EXPIRED)
        self._log.warning(
            "dead-lettered",
            ses_message_id=ses_id,
            sqs_message_id=sqs_id,
            reason=reason,
            detail=detail[:DLQ_DETAIL_MAX_CHARS],
        )
        return True


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
