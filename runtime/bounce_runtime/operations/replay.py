"""Replay: chosen dead letters go back to the main queue, body unchanged.

Each is deleted from the dead-letter queue only after its send succeeded (at least once: a crash
between the two leaves a copy in both queues, and the runtime's send claim and bounce tag make
the second delivery send nothing).

``ses-outcome-unknown`` letters (SES may have sent their bounce) are replayed only when the
operator checked that no bounce went out, and never so that SES can get two SendBounce calls:

- the letter's mail object must be this processor's (its bucket, its prefix + the SES message id,
  from the function's configuration) before any S3 call is made for it;
- a mail object tagged with a bounce id, or gone, is refused;
- the send claim is deleted only when it is provably stale: older than the claim TTL on S3's
  clock (no delivery can still be sending under it), and by a conditional delete on the ETag read
  (``If-Match``), so a claim written since (by a delivery of another replay's copy) is never
  deleted; a replay whose delete fails that way re-queues nothing. No claim at all means nothing
  can be deleted: the copy is re-queued and the runtime's own claim lets one delivery send.

The SQS and S3 clients are injected (boto3 clients or fakes), and so are the clocks.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.s3_dates import answer_date
from bounce_runtime.contract import BOUNCE_TAG_KEY, CLAIM_SUFFIX, REASON_OUTCOME_UNKNOWN
from bounce_runtime.errors import ClaimChanged, OperationsError, ReplayFailed
from bounce_runtime.operations.dead_letter_scan import (
    REPLAY_WINDOW_MARGIN,
    DeadLetter,
    DeadLetterScan,
    SqsClient,
)
from bounce_runtime.operations.reason_classes import (
    OUTCOME_CHECKED_FLAG,
    REPLAY_IF_NO_BOUNCE_SENT,
    REPLAY_NO,
    iso,
    printable,
)
from bounce_runtime.operations.stack_lookup import ProcessorScope

# S3 answers a conditional delete whose object changed (412), vanished (404) or is being written
# at the same time (409): https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html
_CLAIM_CHANGED_CODES = frozenset(
    {"PreconditionFailed", "NoSuchKey", "NotFound", "404", "ConditionalRequestConflict"}
)
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


class S3Client(Protocol):
    """The S3 calls a replay of ``ses-outcome-unknown`` makes."""

    def get_object_tagging(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def head_object(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def delete_object(self, **kwargs: Any) -> Mapping[str, Any]: ...


def refusal(letter: DeadLetter, *, now: datetime, outcome_checked: bool) -> str | None:
    """Why replaying ``letter`` cannot help or is not allowed, or None when it may be replayed."""
    reason_class = letter.reason_class
    if reason_class is None:
        return (
            f"unknown reason {letter.reason!r}: this version of the tool cannot tell whether a "
            "replay is safe or helps"
        )
    if reason_class.replay == REPLAY_NO:
        return f"{reason_class.meaning}; replay cannot help"
    if letter.notification is None:
        return f"the body is not a notification the runtime can act on ({letter.body_problem})"
    if letter.ids_disagree:
        return (
            f"its ses-message-id attribute ({letter.attribute_ses_message_id}) names another "
            f"message than its body ({letter.notification.mail.message_id}): not replayed"
        )
    if letter.window_closing(now):
        return (
            f"received at {iso(letter.notification.mail.timestamp)}: its 24-hour "
            "SendBounce window has closed (or closes within "
            f"{int(REPLAY_WINDOW_MARGIN.total_seconds() // 60)} minutes); replay cannot help"
        )
    if reason_class.replay == REPLAY_IF_NO_BOUNCE_SENT and not outcome_checked:
        return (
            "SES may have sent this bounce: replaying could send a second one. Check that no "
            f"bounce went out, then pass {OUTCOME_CHECKED_FLAG}"
        )
    return None


@dataclass(frozen=True)
class ReplaySelection:
    """Which dead letters a replay takes: by reason (a group or a full reason) and SES message id
    (the body's). Both filters narrow the selection; an empty filter does not restrict."""

    reasons: frozenset[str] = frozenset()
    message_ids: frozenset[str] = frozenset()

    def matches(self, letter: DeadLetter) -> bool:
        by_reason = not self.reasons or bool({letter.reason, letter.reason_group} & self.reasons)
        by_id = not self.message_ids or letter.ses_message_id in self.message_ids
        return by_reason and by_id


@dataclass
class ReplayOutcome:
    """What one replay run did (or, in a dry run, would do)."""

    replayed: list[DeadLetter] = field(default_factory=list)
    duplicates: list[DeadLetter] = field(default_factory=list)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)  # chosen SES ids not in the queue

    def to_json(self, *, executed: bool) -> dict[str, Any]:
        """The outcome for scripts (ids and reasons as the letters carry them)."""
        return {
            "executed": executed,
            "replayed": [_letter_json(letter) for letter in self.replayed],
            "duplicates_deleted": [_letter_json(letter) for letter in self.duplicates],
            "refused": [_letter_json(letter) | {"why": why} for letter, why in self.refused],
            "not_found": self.not_found,
        }


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "ses_message_id": letter.ses_message_id,
        "sqs_message_id": letter.sqs_message_id,
        "reason": letter.reason,
    }


@dataclass(frozen=True)
class StaleClaim:
    """A send claim older than the claim TTL, and the ETag its conditional delete must match."""

    key: str
    etag: str
    age_s: float


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block ends, so a send is followed by its delete."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


class Replayer:
    """Moves chosen dead letters back to the main queue, body unchanged.

    Per selected dead letter, in the order the scan receives them: a copy of a letter already
    replayed in this run (the same body) is deleted, and another letter of the same message (SES
    message id, bucket and key) with a different body is refused;
    a refused one (``refusal``, and for ``ses-outcome-unknown`` the checks of the module
    docstring, which need ``scope``) stays; else (``execute``) it is sent to the main queue at
    ``pacer``'s rate and then deleted from the dead-letter queue. Without ``execute`` nothing is
    changed: the run reports what it would do. Every ``report`` line is made printable.
    """

    def __init__(
        self,
        scan: DeadLetterScan,
        sqs: SqsClient,
        queue_url: str,
        *,
        execute: bool,
        outcome_checked: bool,
        pacer: Pacer,
        now: Callable[[], datetime],
        s3: Callable[[], S3Client],
        report: Callable[[str], None],
        scope: ProcessorScope | None = None,
    ) -> None:
        self._scan = scan
        self._sqs = sqs
        self.queue_url = queue_url
        self.execute = execute
        self.outcome_checked = outcome_checked
        self._pacer = pacer
        self._now = now
        self._s3_factory = s3
        self._s3: S3Client | None = None
        self._report_line = report
        self.scope = scope

    def _report(self, line: str) -> None:
        self._report_line(printable(line))

    def run(self, selection: ReplaySelection) -> ReplayOutcome:
        outcome = ReplayOutcome()
        replayed: dict[tuple[str, str, str], str] = {}  # message -> the body replayed
        seen: set[str | None] = set()
        for letter in self._scan:
            seen.add(letter.ses_message_id)
            if not selection.matches(letter):
                continue
            try:
                self._one(letter, replayed, outcome)
            except ReplayFailed:
                raise
            except Exception as error:
                raise ReplayFailed(
                    printable(f"{letter.describe()}: {error}; it stays in the dead-letter queue"),
                    outcome,
                ) from error
            self._scan.keep_alive()
        outcome.not_found = sorted(selection.message_ids - seen)
        return outcome

    def _one(
        self, letter: DeadLetter, replayed: dict[tuple[str, str, str], str], outcome: ReplayOutcome
    ) -> None:
        verb = "" if self.execute else "would "
        why = refusal(letter, now=self._now(), outcome_checked=self.outcome_checked)
        identity = _identity(letter)
        if why is None and identity in replayed and replayed[identity] != letter.body:
            why = (
                "another dead letter of this message, with a different body, was replayed in "
                "this run: this one is neither replayed nor deleted"
            )
        elif why is None and identity in replayed:
            if self.execute:
                self._scan.delete(letter)
            outcome.duplicates.append(letter)
            self._report(f"{verb}delete duplicate {letter.describe()}: replayed once already")
            return
        claim: StaleClaim | None = None
        unknown = letter.reason_group == REASON_OUTCOME_UNKNOWN
        if why is None and unknown:
            why, claim = self._outcome_unknown_check(letter)
        if why is not None:
            self._refuse(letter, why, outcome)
            return
        if self.execute:
            self._pacer.wait()
            self._scan.keep_alive()
            if not self._scan.holds(letter):
                raise OperationsError("the hold on it ran out before its send; nothing was sent")
            with _uninterrupted():
                if claim is not None:
                    try:
                        self._delete_claim(letter, claim)
                    except ClaimChanged as changed:
                        self._refuse(letter, str(changed), outcome)
                        return
                self._send_then_delete(letter, outcome)
        elif claim is not None:
            self._report(f"would delete the stale send claim {self._claim_url(letter, claim)}")
        assert identity is not None  # a letter not refused has a readable body
        replayed[identity] = letter.body
        outcome.replayed.append(letter)
        self._report(f"{verb}replay {letter.describe()}")

    def _refuse(self, letter: DeadLetter, why: str, outcome: ReplayOutcome) -> None:
        outcome.refused.append((letter, why))
        self._report(f"refused {letter.describe()}: {why}")

    def _send_then_delete(self, letter: DeadLetter, outcome: ReplayOutcome) -> None:
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=letter.body)
        try:
            self._scan.delete(letter)
        except Exception as error:
            outcome.replayed.append(letter)
            raise ReplayFailed(
                printable(
                    f"{letter.describe()} was sent to the main queue but could not be deleted "
                    f"from the dead-letter queue ({error}). It is in both queues; the runtime "
                    "sends its bounce at most once (send claim and bounce tag)"
                ),
                outcome,
            ) from error

    # ses-outcome-unknown -----------------------------------------------------------------------

    def _client(self) -> S3Client:
        if self._s3 is None:
            self._s3 = self._s3_factory()
        return self._s3

    def _outcome_unknown_check(self, letter: DeadLetter) -> tuple[str | None, StaleClaim | None]:
        """(why it is refused, None) or (None, the stale claim to delete, or None if none)."""
        assert letter.notification is not None and letter.mail_object is not None
        bucket, key = letter.mail_object
        ses_id = letter.notification.mail.message_id
        if self.scope is None:
            return (
                "the processor's function is not known (--function-name, or --stack and "
                "--processor): its mail bucket and prefix cannot be checked, so no S3 call is "
                "made for it",
                None,
            )
        if not self.scope.owns(bucket, key, ses_id):
            return (
                f"it names s3://{bucket}/{key}, which is not this processor's mail object "
                f"(s3://{self.scope.mail_bucket}/{self.scope.object_key_prefix}{ses_id}): "
                "nothing is read or deleted for it",
                None,
            )
        s3 = self._client()
        try:
            tags = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or []
        except Exception as error:
            if _error_code(error) in _MISSING_CODES:
                return f"s3://{bucket}/{key} is gone: no bounce can be sent for it", None
            raise
        for tag in tags:
            if tag.get("Key") == BOUNCE_TAG_KEY:
                return (
                    f"s3://{bucket}/{key} is tagged {BOUNCE_TAG_KEY}={tag.get('Value')}: the "
                    "bounce was sent; nothing to replay",
                    None,
                )
        return self._stale_claim(s3, bucket, key + CLAIM_SUFFIX)

    def _stale_claim(
        self, s3: S3Client, bucket: str, claim_key: str
    ) -> tuple[str | None, StaleClaim | None]:
        """The claim's age on S3's clock (the HeadObject answer's ``Date`` minus its
        ``LastModified``; the local clock only when S3 sends no ``Date``)."""
        assert self.scope is not None
        try:
            head = s3.head_object(Bucket=bucket, Key=claim_key)
        except Exception as error:
            if _error_code(error) in _MISSING_CODES:
                self._report(
                    f"s3://{bucket}/{claim_key} does not exist: nothing to delete; the runtime "
                    "claims the send before it sends"
                )
                return None, None
            raise
        age_s = ((answer_date(head) or self._now()) - head["LastModified"]).total_seconds()
        ttl_s = self.scope.claim_ttl_s
        if age_s < ttl_s:
            return (
                f"its send claim s3://{bucket}/{claim_key} was written {age_s:.0f} s ago, within "
                f"the claim TTL of {ttl_s:.0f} s: a delivery may still be sending, so the claim "
                "is kept and the dead letter stays",
                None,
            )
        return None, StaleClaim(key=claim_key, etag=str(head["ETag"]), age_s=age_s)

    def _delete_claim(self, letter: DeadLetter, claim: StaleClaim) -> None:
        assert letter.mail_object is not None
        bucket = letter.mail_object[0]
        try:
            self._client().delete_object(Bucket=bucket, Key=claim.key, IfMatch=claim.etag)
        except Exception as error:
            if _error_code(error) in _CLAIM_CHANGED_CODES:
                raise ClaimChanged(
                    f"its send claim s3://{bucket}/{claim.key} changed or went away since it "
                    f"was read (S3 {_error_code(error)}): another replay or delivery is acting "
                    "on this message, so nothing was sent and the dead letter stays"
                ) from error
            raise
        self._report(
            f"deleted the stale send claim {self._claim_url(letter, claim)} "
            f"({claim.age_s:.0f} s old)"
        )

    @staticmethod
    def _claim_url(letter: DeadLetter, claim: StaleClaim) -> str:
        assert letter.mail_object is not None
        return f"s3://{letter.mail_object[0]}/{claim.key}"


def _identity(letter: DeadLetter) -> tuple[str, str, str] | None:
    """The SES message id, bucket and key the body names: copies of one message share them."""
    if letter.notification is None or letter.mail_object is None:
        return None
    return (letter.notification.mail.message_id, *letter.mail_object)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return ""
    return str((response.get("Error") or {}).get("Code", ""))
