"""Reading a BounceProcessor's dead-letter queue without consuming it.

``DeadLetterScan`` receives each message once and keeps it hidden (a short visibility timeout,
extended while the scan runs) until the scan ends, when it is made visible again; if the process
dies, the messages reappear by themselves when their timeout runs out. ``DeadLetter`` is one
message with what its attributes and body say; the SES message id is taken from the body (the
notification the runtime would act on), never from an attribute alone.

The SQS client is injected (a boto3 client or a fake), and so is the clock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Protocol

from bounce_runtime.contract import (
    DLQ_ATTR_DETAIL,
    DLQ_ATTR_REASON,
    DLQ_ATTR_SES_MESSAGE_ID,
    SEND_BOUNCE_WINDOW_S,
)
from bounce_runtime.core.notification import ReceivedNotification, parse_notification_body
from bounce_runtime.errors import OperationsError
from bounce_runtime.operations.reason_classes import (
    REASON_CLASSES,
    REDRIVEN_BY_SQS,
    ReasonClass,
    printable,
)

# A replay is refused when less than this is left of SES's 24-hour SendBounce window: the record
# must still get through the main queue and the runtime (which stops a minute before the end).
REPLAY_WINDOW_MARGIN: Final = timedelta(minutes=5)

# SQS limits: at most 10 messages per receive and per batch call; visibility timeout 0-43,200 s.
SQS_BATCH_MAX: Final = 10
VISIBILITY_TIMEOUT_MAX_S: Final = 43_200
# A scan stops when this many receives in a row bring only messages it has seen.
MAX_REPEAT_RECEIVES: Final = 3


class SqsClient(Protocol):
    """The SQS calls these tools make (a boto3 SQS client, or a fake)."""

    def receive_message(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def change_message_visibility_batch(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def delete_message(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def send_message(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_queue_attributes(self, **kwargs: Any) -> Mapping[str, Any]: ...


# Dead letters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, with what its attributes and body say.

    ``ses_message_id`` is the body's (the notification the runtime acts on); only for a body that
    cannot be read is it the ``ses-message-id`` attribute, shown but never acted on. An attribute
    that names another message than the body is kept in ``attribute_ses_message_id`` and makes
    the letter refused by replay (``ids_disagree``).
    """

    sqs_message_id: str
    body: str
    reason: str
    detail: str | None
    ses_message_id: str | None
    sent_at: datetime | None
    notification: ReceivedNotification | None
    body_problem: str | None
    attribute_ses_message_id: str | None = None

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
        attribute_id = attributes.get(DLQ_ATTR_SES_MESSAGE_ID)
        ses_id = notification.mail.message_id if notification is not None else attribute_id
        return cls(
            sqs_message_id=str(message["MessageId"]),
            body=body,
            reason=attributes.get(DLQ_ATTR_REASON) or REDRIVEN_BY_SQS,
            detail=attributes.get(DLQ_ATTR_DETAIL),
            ses_message_id=ses_id,
            sent_at=_sent_at(message),
            notification=notification,
            body_problem=problem,
            attribute_ses_message_id=attribute_id,
        )

    @property
    def ids_disagree(self) -> bool:
        """Whether the ``ses-message-id`` attribute names another message than the body."""
        return (
            self.notification is not None
            and self.attribute_ses_message_id is not None
            and self.attribute_ses_message_id != self.notification.mail.message_id
        )

    @property
    def mail_object(self) -> tuple[str, str] | None:
        """The bucket and key of the stored mail the body names (None: body unreadable)."""
        if self.notification is None:
            return None
        action = self.notification.receipt.action
        return action.bucket_name, action.object_key

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

    def window_closing(self, now: datetime) -> bool:
        """Whether less than ``REPLAY_WINDOW_MARGIN`` is left of the 24-hour window at ``now``."""
        closes = self.window_closes_at
        return closes is not None and now >= closes - REPLAY_WINDOW_MARGIN

    def describe(self) -> str:
        """The SES message id (or the SQS one) and the reason, for output lines."""
        name = self.ses_message_id or f"(SQS message {self.sqs_message_id})"
        return printable(f"{name} [{self.reason}]")


def _sent_at(message: Mapping[str, Any]) -> datetime | None:
    millis = (message.get("Attributes") or {}).get("SentTimestamp")
    if not isinstance(millis, str):
        return None
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


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
