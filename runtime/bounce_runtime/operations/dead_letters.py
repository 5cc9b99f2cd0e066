"""Dead-letter triage and replay for a BounceProcessor's queues.

``DeadLetterScan`` reads the dead-letter queue without consuming it: each message it receives stays
hidden (a short visibility timeout, extended while the scan runs), so one scan sees every message
once, and is made visible again when the scan ends. If the process dies, the messages reappear by
themselves when their timeout runs out. ``summarize`` groups what a scan saw by reason;
``Replayer`` sends chosen dead letters back to the main queue and deletes each from the dead-letter
queue only after its send succeeded (at least once: a crash between the two leaves a copy in both
queues, and the runtime's send claim and bounce tag make the second delivery harmless).

The SQS, S3 and CloudFormation clients are injected (boto3 clients or fakes), and so are the clocks.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Protocol

from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.contract import (
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    DEAD_LETTER_QUEUE_CONSTRUCT_ID,
    DLQ_ATTR_DETAIL,
    DLQ_ATTR_REASON,
    DLQ_ATTR_SES_MESSAGE_ID,
    QUEUE_CONSTRUCT_ID,
    REASON_EXPIRED,
    REASON_FAILED_BEFORE_SEND,
    REASON_FOREIGN_MAIL_OBJECT,
    REASON_INVALID_CONFIG,
    REASON_INVALID_REQUEST,
    REASON_MAIL_OBJECT_MISSING,
    REASON_MALFORMED_NOTIFICATION,
    REASON_OUTCOME_UNKNOWN,
    REASON_RETRIES_EXHAUSTED,
    REASON_SES_REJECTED,
    SEND_BOUNCE_WINDOW_S,
)
from bounce_runtime.core.notification import ReceivedNotification, parse_notification_body
from bounce_runtime.errors import OperationsError, ReplayFailed

# The reason a scan gives a message that carries no reason attribute: SQS itself moved it from
# the main queue after maxReceiveCount failed receives (its enqueue time is unchanged).
REDRIVEN_BY_SQS: Final = "redriven-by-sqs"

# Whether replay can help a reason.
REPLAY_YES: Final = "yes"
REPLAY_NO: Final = "no"
REPLAY_IF_NO_BOUNCE_SENT: Final = "if-no-bounce-sent"
OUTCOME_CHECKED_FLAG: Final = "--i-checked-no-bounce-was-sent"

# A replay is refused when less than this is left of SES's 24-hour SendBounce window: the record
# must still get through the main queue and the runtime (which stops a minute before the end).
REPLAY_WINDOW_MARGIN: Final = timedelta(minutes=5)

# SQS limits: at most 10 messages per receive and per batch call; visibility timeout 0-43,200 s.
SQS_BATCH_MAX: Final = 10
VISIBILITY_TIMEOUT_MAX_S: Final = 43_200
# A scan stops when this many receives in a row bring only messages it has seen.
MAX_REPEAT_RECEIVES: Final = 3


@dataclass(frozen=True)
class ReasonClass:
    """What a dead-letter reason means and whether replaying the record can help."""

    replay: str
    meaning: str


REASON_CLASSES: Final[Mapping[str, ReasonClass]] = {
    REASON_EXPIRED: ReasonClass(
        REPLAY_NO,
        "received more than 24 hours ago: SES accepts no SendBounce for it any more",
    ),
    REASON_MALFORMED_NOTIFICATION: ReasonClass(
        REPLAY_NO,
        "the body is not an SES Received notification the runtime can act on; "
        "it fails the same way every time",
    ),
    REASON_INVALID_REQUEST: ReasonClass(
        REPLAY_NO,
        "the SendBounce request built for it breaks an SES constraint; a replay builds it again",
    ),
    REASON_INVALID_CONFIG: ReasonClass(
        REPLAY_YES,
        "the processor's configuration was invalid; replay after deploying a fix",
    ),
    REASON_MAIL_OBJECT_MISSING: ReasonClass(
        REPLAY_YES,
        "the stored mail object was not found; replay helps only once it is back in the bucket",
    ),
    REASON_SES_REJECTED: ReasonClass(
        REPLAY_YES,
        "SES refused the SendBounce call (the code after ':' says why, e.g. an unverified "
        "identity or a missing permission); replay after fixing that",
    ),
    REASON_OUTCOME_UNKNOWN: ReasonClass(
        REPLAY_IF_NO_BOUNCE_SENT,
        "the SendBounce call may have sent the bounce; replay only after checking that no "
        f"bounce went out ({OUTCOME_CHECKED_FLAG}); the replay removes the send claim",
    ),
    REASON_FAILED_BEFORE_SEND: ReasonClass(
        REPLAY_YES,
        "an unexpected error before SendBounce was called (the detail names it): nothing was "
        "sent and the send claim was released; replay once its cause is fixed",
    ),
    REASON_FOREIGN_MAIL_OBJECT: ReasonClass(
        REPLAY_NO,
        "the notification names a mail object outside this processor's bucket and prefix (or "
        "a key that is not the prefix + its message id); it was never read, and a replay "
        "refuses it the same way",
    ),
    REASON_RETRIES_EXHAUSTED: ReasonClass(
        REPLAY_YES,
        "it failed on its last receive; the code after ':' is the last cause (a retry reason, "
        "an AWS error code such as AccessDenied, or an exception type); nothing was sent by "
        "that delivery; replay once the cause is fixed",
    ),
    REDRIVEN_BY_SQS: ReasonClass(
        REPLAY_YES,
        "no reason attribute: SQS moved it after the function failed it maxReceiveCount times "
        "(throttling, SES or S3 unavailable, time-outs, invocation errors); replay once the "
        "cause is gone",
    ),
}


class SqsClient(Protocol):
    """The SQS calls these tools make (a boto3 SQS client, or a fake)."""

    def receive_message(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def change_message_visibility_batch(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def delete_message(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def send_message(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_queue_attributes(self, **kwargs: Any) -> Mapping[str, Any]: ...


class S3Client(Protocol):
    """The S3 calls a replay of ``ses-outcome-unknown`` makes."""

    def get_object_tagging(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def delete_object(self, **kwargs: Any) -> Mapping[str, Any]: ...


class CloudFormationClient(Protocol):
    """The CloudFormation calls that find a processor's queues in a deployed stack."""

    def get_template(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def describe_stack_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...


# Dead letters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, with what its attributes and body say."""

    sqs_message_id: str
    body: str
    reason: str
    detail: str | None
    ses_message_id: str | None
    sent_at: datetime | None
    notification: ReceivedNotification | None
    body_problem: str | None

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> DeadLetter:
        """A dead letter from a ReceiveMessage entry (with message attributes and SentTimestamp)."""
        attributes = {
            name: value.get("StringValue")
            for name, value in (message.get("MessageAttributes") or {}).items()
            if isinstance(value, Mapping)
        }
        body = message.get("Body", "")
        notification: ReceivedNotification | None = None
        problem: str | None = None
        try:
            notification = parse_notification_body(body)
        except Exception as error:  # any body the runtime could not parse: refused, never raised
            problem = str(error) or type(error).__name__
        ses_id = attributes.get(DLQ_ATTR_SES_MESSAGE_ID) or (
            notification.mail.message_id if notification is not None else None
        )
        return cls(
            sqs_message_id=str(message["MessageId"]),
            body=body,
            reason=attributes.get(DLQ_ATTR_REASON) or REDRIVEN_BY_SQS,
            detail=attributes.get(DLQ_ATTR_DETAIL),
            ses_message_id=ses_id,
            sent_at=_sent_at(message),
            notification=notification,
            body_problem=problem,
        )

    @property
    def reason_group(self) -> str:
        """The reason without its ``:<detail>`` suffix (``ses-rejected:X`` -> ``ses-rejected``)."""
        return self.reason.split(":", 1)[0]

    @property
    def reason_class(self) -> ReasonClass | None:
        return REASON_CLASSES.get(self.reason_group)

    @property
    def window_closes_at(self) -> datetime | None:
        """When SES's 24-hour SendBounce window for the message closes (None: body unreadable)."""
        if self.notification is None:
            return None
        return self.notification.mail.timestamp + timedelta(seconds=SEND_BOUNCE_WINDOW_S)

    def describe(self) -> str:
        """The SES message id (or the SQS one) and the reason, for output lines."""
        name = self.ses_message_id or f"(SQS message {self.sqs_message_id})"
        return printable(f"{name} [{self.reason}]")


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters replaced: attribute values are
    written by whoever may send to the queue, and must not drive the operator's terminal."""
    return "".join(char if char.isprintable() else "\ufffd" for char in text)


def _sent_at(message: Mapping[str, Any]) -> datetime | None:
    millis = (message.get("Attributes") or {}).get("SentTimestamp")
    if not isinstance(millis, str):
        return None
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


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
    closes = letter.window_closes_at
    if closes is None:
        return f"the body is not a notification the runtime can act on ({letter.body_problem})"
    if now >= closes - REPLAY_WINDOW_MARGIN:
        assert letter.notification is not None  # closes is known
        return (
            f"received at {_iso(letter.notification.mail.timestamp)}: its 24-hour "
            "SendBounce window has closed (or closes within "
            f"{int(REPLAY_WINDOW_MARGIN.total_seconds() // 60)} minutes); replay cannot help"
        )
    if reason_class.replay == REPLAY_IF_NO_BOUNCE_SENT and not outcome_checked:
        return (
            "SES may have sent this bounce: replaying could send a second one. Check that no "
            f"bounce went out, then pass {OUTCOME_CHECKED_FLAG}"
        )
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# Scanning without consuming ----------------------------------------------------------------------


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DeadLetterScan:
    """Receives up to ``max_messages`` dead letters, keeping each one hidden until the scan ends.

    Received messages get a visibility timeout of ``hold_seconds``, renewed by ``keep_alive``
    (called before every receive; long-running callers call it too) while the scan lasts, so a
    scan never receives the same message twice and never holds one longer than ``hold_seconds``
    after the process dies. ``release`` (also on leaving the ``with`` block) makes every message
    not deleted visible again at once. ``wait_seconds`` is the long-poll time of each receive:
    only long polling asks every SQS server, so an empty answer means an empty queue.
    """

    def __init__(
        self,
        sqs: SqsClient,
        queue_url: str,
        *,
        max_messages: int,
        hold_seconds: int = 30,
        wait_seconds: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if not 1 <= hold_seconds <= VISIBILITY_TIMEOUT_MAX_S:
            raise ValueError(
                f"hold_seconds must be 1-{VISIBILITY_TIMEOUT_MAX_S}, got {hold_seconds}"
            )
        self._sqs = sqs
        self.queue_url = queue_url
        self.max_messages = max_messages
        self.hold_seconds = hold_seconds
        self.wait_seconds = wait_seconds
        self._clock = clock
        self.on_progress = on_progress
        self._handles: dict[str, str] = {}  # SQS message id -> its latest receipt handle
        self._held_until: dict[str, float] = {}  # SQS message id -> when its hold runs out
        self._renewals: deque[tuple[float, str]] = deque()  # (hold end, id), oldest first
        self.scanned = 0
        self.exhausted = False  # True once the queue had no message this scan had not seen

    def __enter__(self) -> DeadLetterScan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.release()
        except Exception:
            if error is None:
                raise
            # The first error is the one to report; the held messages reappear after the hold.

    def approximate_count(self) -> int | None:
        """SQS's ApproximateNumberOfMessages (visible messages) of the queue, if it says."""
        response = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        value = (response.get("Attributes") or {}).get("ApproximateNumberOfMessages")
        return int(value) if isinstance(value, str) and value.isdigit() else None

    def __iter__(self) -> Iterator[DeadLetter]:
        seen: set[str] = set()
        repeats = 0
        while len(seen) < self.max_messages:
            self.keep_alive()
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_BATCH_MAX, self.max_messages - len(seen)),
                VisibilityTimeout=self.hold_seconds,
                WaitTimeSeconds=self.wait_seconds,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            messages = response.get("Messages") or []
            if not messages:
                self.exhausted = True
                return
            fresh = []
            for message in messages:
                sqs_id = str(message["MessageId"])
                self._hold(sqs_id, str(message["ReceiptHandle"]))
                if sqs_id not in seen:
                    seen.add(sqs_id)
                    fresh.append(message)
            if not fresh:
                repeats += 1
                if repeats >= MAX_REPEAT_RECEIVES:
                    self.exhausted = True
                    return
                continue
            repeats = 0
            for message in fresh:
                self.scanned += 1
                yield DeadLetter.from_message(message)
            if self.on_progress is not None:
                self.on_progress(self.scanned)

    def _hold(self, sqs_id: str, receipt_handle: str) -> None:
        until = self._clock() + self.hold_seconds
        self._handles[sqs_id] = receipt_handle
        self._held_until[sqs_id] = until
        self._renewals.append((until, sqs_id))

    def keep_alive(self) -> None:
        """Renew the hold of every message whose hold is more than half over."""
        now = self._clock()
        due: list[str] = []
        while self._renewals and self._renewals[0][0] - now < self.hold_seconds / 2:
            until, sqs_id = self._renewals.popleft()
            if self._held_until.get(sqs_id) == until:  # else renewed since, or deleted
                due.append(sqs_id)
        for chunk in _chunks(due, SQS_BATCH_MAX):
            failed = self._change_visibility(chunk, self.hold_seconds)
            for sqs_id in chunk:
                if sqs_id in failed:  # it will reappear; a later receive dedupes it
                    self._forget(sqs_id)
                else:
                    self._hold(sqs_id, self._handles[sqs_id])

    def release(self) -> None:
        """Make every message still held visible again now."""
        held = list(self._handles)
        for chunk in _chunks(held, SQS_BATCH_MAX):
            self._change_visibility(chunk, 0)
            for sqs_id in chunk:
                self._forget(sqs_id)

    def holds(self, letter: DeadLetter) -> bool:
        """Whether this scan still holds ``letter`` (its hold has not been lost or ended)."""
        return letter.sqs_message_id in self._handles

    def delete(self, letter: DeadLetter) -> None:
        """Delete a dead letter this scan holds from the queue."""
        handle = self._handles.get(letter.sqs_message_id)
        if handle is None:
            raise OperationsError("the hold on it ran out, so it cannot be deleted now")
        self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)
        self._forget(letter.sqs_message_id)

    def _forget(self, sqs_id: str) -> None:
        self._handles.pop(sqs_id, None)
        self._held_until.pop(sqs_id, None)

    def _change_visibility(self, sqs_ids: Sequence[str], seconds: int) -> set[str]:
        """Set the visibility timeout of up to 10 held messages; return the ids that failed."""
        entries = [
            {"Id": str(index), "ReceiptHandle": self._handles[sqs_id], "VisibilityTimeout": seconds}
            for index, sqs_id in enumerate(sqs_ids)
        ]
        response = self._sqs.change_message_visibility_batch(
            QueueUrl=self.queue_url, Entries=entries
        )
        return {sqs_ids[int(entry["Id"])] for entry in response.get("Failed") or []}


# Triage ------------------------------------------------------------------------------------------


@dataclass
class ReasonSummary:
    """The dead letters of one reason group (``ses-rejected:X`` counts under ``ses-rejected``)."""

    reason: str
    replay: str
    meaning: str
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    past_window: int = 0
    variants: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def add(self, letter: DeadLetter, *, now: datetime, samples: int) -> None:
        self.count += 1
        if letter.sent_at is not None:
            self.oldest = min(filter(None, (self.oldest, letter.sent_at)))
            self.newest = max(filter(None, (self.newest, letter.sent_at)))
        closes = letter.window_closes_at
        if closes is not None and now >= closes - REPLAY_WINDOW_MARGIN:
            self.past_window += 1
        if letter.reason != self.reason:
            self.variants[letter.reason] = self.variants.get(letter.reason, 0) + 1
        sample = letter.ses_message_id or f"sqs:{letter.sqs_message_id}"
        if len(self.samples) < samples and sample not in self.samples:
            self.samples.append(sample)

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "oldest": _iso(self.oldest) if self.oldest else None,
            "newest": _iso(self.newest) if self.newest else None,
            "replay": self.replay,
            "past_24h_window": self.past_window,
            "variants": dict(sorted(self.variants.items())),
            "sample_ses_message_ids": self.samples,
            "meaning": self.meaning,
        }


def summarize(
    letters: Iterable[DeadLetter], *, now: datetime, samples: int = 3
) -> list[ReasonSummary]:
    """Group dead letters by reason; the largest group first."""
    groups: dict[str, ReasonSummary] = {}
    for letter in letters:
        group = groups.get(letter.reason_group)
        if group is None:
            reason_class = letter.reason_class
            group = groups[letter.reason_group] = ReasonSummary(
                reason=letter.reason_group,
                replay=reason_class.replay if reason_class else REPLAY_NO,
                meaning=reason_class.meaning if reason_class else "unknown reason",
            )
        group.add(letter, now=now, samples=samples)
    return sorted(groups.values(), key=lambda group: (-group.count, group.reason))


TABLE_HEADER: Final = ("REASON", "COUNT", "OLDEST", "NEWEST", "REPLAY", "PAST 24H", "SAMPLE IDS")


def format_table(summaries: Sequence[ReasonSummary]) -> str:
    """A plain-text table, one row per reason group and one per ``:<detail>`` variant."""
    rows: list[tuple[str, ...]] = [TABLE_HEADER]
    for group in summaries:
        rows.append(
            (
                printable(group.reason),
                str(group.count),
                _iso(group.oldest) if group.oldest else "-",
                _iso(group.newest) if group.newest else "-",
                group.replay,
                str(group.past_window),
                printable(", ".join(group.samples)),
            )
        )
        for variant, count in sorted(group.variants.items()):
            suffix = printable(variant[len(group.reason) :])
            rows.append(("  " + suffix, str(count), "", "", "", "", ""))
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    right = {1, 5}  # counts are right-aligned
    lines = [
        "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


# Replay ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySelection:
    """Which dead letters a replay takes: by reason (a group or a full reason) and SES message id.

    Both filters narrow the selection; an empty filter does not restrict.
    """

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


@contextmanager
def _send_and_delete_together() -> Iterator[None]:
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

    Per selected dead letter, in the order the scan receives them: a copy of an SES message
    already replayed in this run is deleted (its replay is in the main queue); a refused one
    (``refusal``) stays; else (``execute``) it is sent to the main queue at ``pacer``'s rate and
    then deleted from the dead-letter queue. ``ses-outcome-unknown`` dead letters (allowed by
    ``outcome_checked``) are refused when the mail object carries the bounce tag, and have their
    send claim deleted before the send, or the runtime would dead-letter them again. Without
    ``execute`` nothing is changed: the run reports what it would do.
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
        self._report = report

    def run(self, selection: ReplaySelection) -> ReplayOutcome:
        outcome = ReplayOutcome()
        replayed_ids: set[str] = set()
        seen: set[str | None] = set()
        for letter in self._scan:
            seen.add(letter.ses_message_id)
            if not selection.matches(letter):
                continue
            try:
                self._one(letter, replayed_ids, outcome)
            except ReplayFailed:
                raise
            except Exception as error:
                raise ReplayFailed(
                    f"{letter.describe()}: {error}; it stays in the dead-letter queue", outcome
                ) from error
            self._scan.keep_alive()
        outcome.not_found = sorted(selection.message_ids - seen)
        return outcome

    def _one(self, letter: DeadLetter, replayed_ids: set[str], outcome: ReplayOutcome) -> None:
        verb = "" if self.execute else "would "
        if letter.ses_message_id is not None and letter.ses_message_id in replayed_ids:
            if self.execute:
                self._scan.delete(letter)
            outcome.duplicates.append(letter)
            self._report(f"{verb}delete duplicate {letter.describe()}: replayed once already")
            return
        why = refusal(letter, now=self._now(), outcome_checked=self.outcome_checked)
        if why is None and letter.reason_group == REASON_OUTCOME_UNKNOWN:
            why = self._bounce_already_sent(letter)
        if why is not None:
            outcome.refused.append((letter, why))
            self._report(f"refused {letter.describe()}: {why}")
            return
        if self.execute:
            self._pacer.wait()
            self._scan.keep_alive()
            if not self._scan.holds(letter):
                raise OperationsError("the hold on it ran out before its send; nothing was sent")
            if letter.reason_group == REASON_OUTCOME_UNKNOWN:
                self._release_claim(letter)
            self._send_then_delete(letter, outcome)
        assert letter.ses_message_id is not None  # a readable body has one
        replayed_ids.add(letter.ses_message_id)
        outcome.replayed.append(letter)
        self._report(f"{verb}replay {letter.describe()}")

    def _send_then_delete(self, letter: DeadLetter, outcome: ReplayOutcome) -> None:
        with _send_and_delete_together():
            self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=letter.body)
            try:
                self._scan.delete(letter)
            except Exception as error:
                outcome.replayed.append(letter)
                raise ReplayFailed(
                    f"{letter.describe()} was sent to the main queue but could not be deleted "
                    f"from the dead-letter queue ({error}). It is in both queues: a new replay "
                    "sends it again, and the runtime skips the second delivery (send claim and "
                    "bounce tag)",
                    outcome,
                ) from error

    def _object(self, letter: DeadLetter) -> tuple[S3Client, str, str]:
        assert letter.notification is not None  # refusal() refuses unreadable bodies
        if self._s3 is None:
            self._s3 = self._s3_factory()
        action = letter.notification.receipt.action
        return self._s3, action.bucket_name, action.object_key

    def _bounce_already_sent(self, letter: DeadLetter) -> str | None:
        """Why an ``ses-outcome-unknown`` letter is refused although the operator checked: the
        mail object carries the bounce tag, so the bounce went out. None when it does not."""
        s3, bucket, key = self._object(letter)
        try:
            tags = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or []
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return f"s3://{bucket}/{key} is gone: no bounce can be sent for it"
            raise
        for tag in tags:
            if tag.get("Key") == BOUNCE_TAG_KEY:
                return (
                    f"s3://{bucket}/{key} is tagged {BOUNCE_TAG_KEY}={tag.get('Value')}: the "
                    "bounce was sent; nothing to replay"
                )
        return None

    def _release_claim(self, letter: DeadLetter) -> None:
        s3, bucket, key = self._object(letter)
        s3.delete_object(Bucket=bucket, Key=key + CLAIM_SUFFIX)
        self._report(f"deleted the send claim s3://{bucket}/{key}{CLAIM_SUFFIX}")


# Finding the queues of a deployed processor ------------------------------------------------------

PATH_METADATA_KEY: Final = "aws:cdk:path"
SQS_QUEUE_TYPE: Final = "AWS::SQS::Queue"


@dataclass(frozen=True)
class ProcessorQueues:
    """The queue URLs of one BounceProcessor."""

    queue_url: str
    dead_letter_queue_url: str


def find_processor_queues(
    cloudformation: CloudFormationClient, *, stack: str, processor: str
) -> ProcessorQueues:
    """The queue URLs of the processor at construct path ``processor`` inside ``stack``.

    Matches the template's ``aws:cdk:path`` metadata ``<stack path>/<processor>/Queue/Resource``
    (and ``DeadLetterQueue``); the physical ID of an ``AWS::SQS::Queue`` is its URL.
    """
    body = cloudformation.get_template(StackName=stack).get("TemplateBody")
    if isinstance(body, str):  # botocore decodes JSON templates; YAML stays a string
        try:
            body = json.loads(body)
        except ValueError:
            raise OperationsError(
                f"the template of stack {stack!r} is not JSON: give the queue URLs instead"
            ) from None
    resources = body.get("Resources") if isinstance(body, Mapping) else None
    queues = {
        logical_id: resource.get("Metadata", {}).get(PATH_METADATA_KEY)
        for logical_id, resource in (resources or {}).items()
        if isinstance(resource, Mapping) and resource.get("Type") == SQS_QUEUE_TYPE
    }
    if not any(isinstance(path, str) for path in queues.values()):
        raise OperationsError(
            f"stack {stack!r} has no SQS queue with {PATH_METADATA_KEY} metadata: path metadata "
            "must be on (the CDK default; `cdk deploy --path-metadata true`), or give the queue "
            "URLs with --queue-url and --dead-letter-queue-url"
        )
    path = processor.strip("/")
    urls = [
        _queue_url(cloudformation, stack, _logical_id(queues, stack, path, construct_id))
        for construct_id in (QUEUE_CONSTRUCT_ID, DEAD_LETTER_QUEUE_CONSTRUCT_ID)
    ]
    return ProcessorQueues(queue_url=urls[0], dead_letter_queue_url=urls[1])


def _logical_id(queues: Mapping[str, object], stack: str, processor: str, construct_id: str) -> str:
    suffix = f"/{processor}/{construct_id}/Resource"
    found = sorted(
        logical_id
        for logical_id, path in queues.items()
        if isinstance(path, str) and path.endswith(suffix)
    )
    if len(found) == 1:
        return found[0]
    dlq_suffix = f"/{DEAD_LETTER_QUEUE_CONSTRUCT_ID}/Resource"
    processors = sorted(
        path.split("/", 1)[-1].removesuffix(dlq_suffix)
        for path in queues.values()
        if isinstance(path, str) and path.endswith(dlq_suffix)
    )
    if found:
        raise OperationsError(
            f"{len(found)} queues in stack {stack!r} end in {processor}/{construct_id}: give a "
            f"longer --processor path (processors: {', '.join(processors)})"
        )
    raise OperationsError(
        f"no SQS queue at {processor}/{construct_id} in stack {stack!r} (matched against "
        f"{PATH_METADATA_KEY} metadata); processors with a dead-letter queue in the stack: "
        f"{', '.join(processors) or 'none'}"
    )


def _queue_url(cloudformation: CloudFormationClient, stack: str, logical_id: str) -> str:
    detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    url = (detail.get("StackResourceDetail") or {}).get("PhysicalResourceId")
    if not isinstance(url, str) or not url:
        raise OperationsError(f"stack {stack!r}: resource {logical_id} has no physical ID yet")
    return url
