"""One SQS record's work: read, plan, claim, send, tag; every failure raised, never judged.

``RecordWorkflow`` does one record's work and raises; what a failure means (dead letter, back to
the queue, retries exhausted) is decided by ``processor.BatchProcessor``, which owns the failure
policy, the batch loop and the duplicates within a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from bounce_runtime.adapters.mail_store import bounce_tag_in
from bounce_runtime.adapters.ses_sender import SendResult
from bounce_runtime.contract import (
    DLQ_DETAIL_MAX_CHARS,
    METRIC_BOUNCES_SENT,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_RECIPIENTS_ACCEPTED,
    METRIC_RECIPIENTS_BOUNCED,
    METRIC_RECIPIENTS_SUPPRESSED,
    METRIC_SEND_BOUNCE_THROTTLED,
    METRIC_SEND_BUDGET_REPAIRED,
    METRIC_SEND_BUDGET_UNAVAILABLE,
    METRIC_SEND_SLOT_UNAVAILABLE,
    METRIC_SEND_SLOT_WAIT,
    METRIC_SETUP_NOTIFICATIONS,
    METRIC_TAGGING_FAILURES,
)
from bounce_runtime.core.decision import (
    SEND_BOUNCE_WINDOW,
    MessagePlan,
    needs_full_headers,
    plan_message,
)
from bounce_runtime.core.notification import ReceivedNotification, parse_notification_body
from bounce_runtime.core.ownership import mail_object_problem
from bounce_runtime.core.setup_notification import is_setup_notification
from bounce_runtime.dependencies import RecordDependencies
from bounce_runtime.errors import (
    FailedBeforeSend,
    ForeignMailObject,
    MailExpired,
    MalformedNotification,
    OutOfTime,
    PermanentError,
    SendBudgetUnavailable,
    SendClaimHeld,
    SendDeadlineExceeded,
    SendOutcomeUnknown,
    SendSlotUnavailable,
    TransientSendError,
)

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
    """Takes one record through its work; ``deps`` are shared with the batch processor.

    A record's work ends as: bounced (then tagged), accepted or suppressed, or skipped (already
    bounced). Anything else is raised: a ``PermanentError``, a ``RetryableError``, ``OutOfTime``
    or an unexpected error. Before sending, the record claims the message
    (``MailStore.claim_send``): only the delivery that wins the claim may send, so no bounce goes
    out twice.
    """

    def __init__(self, deps: RecordDependencies) -> None:
        self.deps = deps

    def read(self, record: Mapping[str, Any], sqs_id: str) -> ReceivedNotification | None:
        """The record's notification; None for SES's setup notification, acknowledged here
        (counted and logged once; its object is never read, claimed, tagged or bounced)."""
        body = record.get("body")
        if not isinstance(body, str):
            raise MalformedNotification(f"body: expected a string, got {type(body).__name__}")
        if is_setup_notification(body):
            self.deps.metrics.count(METRIC_SETUP_NOTIFICATIONS)
            self.deps.logger.info(
                "SES setup notification: acknowledged, not mail", sqs_message_id=sqs_id
            )
            return None
        return parse_notification_body(body)

    def handle(self, notification: ReceivedNotification, sqs_id: str) -> None:
        """Plan the message and act on the plan: bounce (claim, send, tag), accept or suppress."""
        self._check_mail_object(notification)
        ses_id = notification.mail.message_id
        action = notification.receipt.action
        policy = self.deps.config.policy
        object_size = (
            self.deps.mail_store.object_size(action.bucket_name, action.object_key)
            if policy.needs_object_size
            else None
        )
        headers = (
            self.deps.mail_store.read_headers(action.bucket_name, action.object_key)
            if needs_full_headers(notification, policy)
            else None
        )
        plan = plan_message(
            notification,
            policy,
            now=self.deps.now() + EXPIRY_MARGIN,
            object_size=object_size,
            headers=headers,
            owned=self.deps.config.owned_recipients,
        )
        tags: list[dict[str, str]] = []
        if plan.outcome in ("bounce", "expired"):
            tags = self.deps.mail_store.tags(action.bucket_name, action.object_key)
            earlier = bounce_tag_in(tags)
            if earlier is not None:
                self._skip_bounced(ses_id, sqs_id, earlier)
                return
        if plan.outcome == "expired":
            raise MailExpired(
                f"received at {notification.mail.timestamp.isoformat()}: more than 24 hours "
                "ago, past the SendBounce window",
            )
        request = self._request(plan)
        if request is None:
            self._finish(plan, ses_id, sqs_id, bounce_message_id=None)
            return
        needed = self.deps.aws_call_bound_s + self.deps.sender.min_send_seconds
        left = self.deps.remaining_seconds()
        if left < needed:
            raise OutOfTime(f"{left:.1f} s left: claiming and sending need {needed:.1f} s")
        window_closes = notification.mail.timestamp + SEND_BOUNCE_WINDOW
        if not self._claim(action.bucket_name, action.object_key, ses_id, sqs_id):
            return
        result = self._send_claimed(
            request,
            action.bucket_name,
            action.object_key,
            ses_id,
            window_seconds=lambda: (window_closes - self.deps.now()).total_seconds(),
        )
        self.deps.metrics.count(METRIC_BOUNCES_SENT)
        self.deps.metrics.count(METRIC_SEND_SLOT_WAIT, round(result.waited_s * 1000))
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
        config = self.deps.config
        if config.mail_bucket is None:  # not configured (local use only)
            return
        problem = mail_object_problem(
            notification, bucket=config.mail_bucket, prefix=config.object_key_prefix
        )
        if problem is not None:
            raise ForeignMailObject(problem)

    def _request(self, plan: MessagePlan) -> dict[str, Any] | None:
        """The SendBounce request of ``plan``, or None when it bounces no one. The request
        builder is imported here: a message that is accepted or suppressed never needs it."""
        if not plan.bounced:
            return None
        from bounce_runtime.core.dsn import build_send_bounce_request

        return build_send_bounce_request(plan, self.deps.config.sender_identity())

    def _skip_bounced(self, ses_id: str, sqs_id: str, bounce_message_id: str) -> None:
        self.deps.metrics.count(METRIC_DUPLICATES_SKIPPED)
        self.deps.logger.info(
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
        if self.deps.mail_store.claim_send(bucket, key, sqs_message_id=sqs_id, now=self.deps.now()):
            return True
        earlier = self.deps.mail_store.bounce_tag(bucket, key)
        if earlier is not None:
            self._skip_bounced(ses_id, sqs_id, earlier)
            return False
        claim = self.deps.mail_store.claim_age(bucket, key, now=self.deps.now())
        if claim is None:
            raise SendClaimHeld(f"the send claim of s3://{bucket}/{key} was just released")
        claimed_at, age_s = claim
        ttl_s = self.deps.config.send_claim_ttl_seconds
        if age_s < ttl_s:
            raise SendClaimHeld(
                f"another delivery claimed the send {age_s:.0f} s ago (claim TTL {ttl_s:.0f} s)"
            )
        raise SendOutcomeUnknown(
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
            return self.deps.sender.send(
                request,
                remaining_seconds=self.deps.remaining_seconds,
                window_seconds=window_seconds,
                on_throttle=lambda: self.deps.metrics.count(METRIC_SEND_BOUNCE_THROTTLED),
                on_budget_repair=lambda: self.deps.metrics.count(METRIC_SEND_BUDGET_REPAIRED),
            )
        except SendBudgetUnavailable:
            self.deps.metrics.count(METRIC_SEND_BUDGET_UNAVAILABLE)
            self._release(bucket, key, ses_id)
            raise
        except SendDeadlineExceeded as error:
            # The one place a sender's deadline is handled: no time (or no send budget slot) for
            # an attempt; nothing was sent, so the claim is released and the batch stops. No slot
            # in time for budget reasons is counted (and alarmed): the budget is saturated.
            if isinstance(error, SendSlotUnavailable):
                self.deps.metrics.count(METRIC_SEND_SLOT_UNAVAILABLE)
            self._release(bucket, key, ses_id)
            raise OutOfTime(str(error)) from error
        except TransientSendError:
            self._release(bucket, key, ses_id)
            raise
        except PermanentError as error:
            if error.reason != SendOutcomeUnknown.reason:  # else it may have gone out: kept
                self._release(bucket, key, ses_id)
            raise
        except Exception as error:  # the sender classifies every error of the call: SES unseen
            self._release(bucket, key, ses_id)
            raise FailedBeforeSend(
                f"{type(error).__name__} before SendBounce was called (the claim was released): "
                f"{error}",
            ) from error

    def _release(self, bucket: str, key: str, ses_id: str) -> None:
        """Delete the claim; if that fails it stays, and a redelivery is dead-lettered."""
        try:
            self.deps.mail_store.release_claim(bucket, key)
        except Exception as error:  # the claim stays: a redelivery ends in the dead-letter queue
            self.deps.logger.error(
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
                self.deps.mail_store.tag_bounced(bucket, key, bounce_message_id, tags)
                return
            except Exception as error:  # the bounce is out: nothing may send it again
                delay = TAG_RETRY_DELAY_S * attempt
                if (
                    attempt == TAG_ATTEMPTS
                    or self.deps.remaining_seconds() < delay + self.deps.aws_call_bound_s
                ):
                    self.deps.metrics.count(METRIC_TAGGING_FAILURES)
                    self.deps.logger.error(
                        "bounce sent but the object could not be tagged",
                        ses_message_id=ses_id,
                        bounce_message_id=bounce_message_id,
                        object=f"s3://{bucket}/{key}",
                        detail=str(error)[:DLQ_DETAIL_MAX_CHARS],
                    )
                    return
                self.deps.sleep(delay)

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
            self.deps.metrics.count(_RECIPIENT_METRICS[decision.action], reason=decision.reason)
            decisions.append(
                {
                    "recipient": decision.recipient,
                    "decision": decision.action,
                    "reason": decision.reason,
                }
            )
        self.deps.logger.info(
            f"message {plan.outcome}",
            ses_message_id=ses_id,
            sqs_message_id=sqs_id,
            outcome=plan.outcome,
            recipients=decisions,
            bounce_message_id=bounce_message_id,
            **fields,
        )
