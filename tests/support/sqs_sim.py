"""An SQS + Lambda event-source simulation on a fake clock, and fault-injecting boto3-like fakes.

`SqsSimulator` models what the bounce runtime relies on: visibility timeout, redelivery of the
records a batch reports as failed (and of a whole batch when the invocation raises), receive
counts, redrive to a dead-letter list once a message would be received more than
``max_receive_count`` times, and at-least-once duplicates (a stale copy of a message, same SQS
message id, delivered again later, even after it was deleted).

The fakes (`FakeSes`, `FakeS3`, `FakeSqsClient`) speak the boto3 calls the runtime makes and raise
real botocore exceptions chosen by a seeded `FaultInjector`, which can also kill the invocation
(`InvocationCrashed`), let an answer never come (a read timeout) or run another invocation in the
middle of a call (`INTERLEAVE`). A fault fires before the call takes effect (SES did not send, S3
did not write) or, with ``after=True``, once it has (SES sent the bounce and then answered 500).
`FakeSes.sent` is what SES actually sent, whatever the caller was told. `FakeS3.skew_s` puts S3's
clock ahead of (or behind) the function's. Nothing sleeps: time is `FakeClock`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import boto3
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bounce_runtime.contract import DLQ_ATTR_SQS_MESSAGE_ID
from support.local_ses import SesError, TokenBucket, validate_send_bounce

REGION = "eu-west-1"
ACCOUNT = "111111111111"


class FakeClock:
    """Monotonic seconds that move only when something sleeps or spends time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the clock by `seconds` (negative values are refused, as time.sleep does)."""
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds!r}")
        self.now += seconds

    def advance_to(self, when: float) -> None:
        """Move the clock forward to `when` (never backwards)."""
        self.now = max(self.now, when)


# ---------------------------------------------------------------------------------------------
# SQS and the Lambda event source mapping


@dataclass
class _QueuedMessage:
    message_id: str
    body: str
    sent_at: float
    stale_copy: bool = False
    receive_count: int = 0
    visible_at: float = 0.0
    receipt_handle: str | None = None
    first_received_at: float | None = None


@dataclass(frozen=True)
class RedrivenMessage:
    """A message SQS moved to its dead-letter queue after too many receives."""

    message_id: str
    body: str
    receive_count: int
    stale_copy: bool


@dataclass
class QueueStats:
    """Counters of what the queue did."""

    receives: int = 0
    deliveries: int = 0
    deletes: int = 0
    stale_copies: int = 0
    concurrent_copies: int = 0
    redeliveries: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    reported_failures: int = 0


class SqsSimulator:
    """A standard SQS queue with a redrive policy, read by a simulated Lambda event source."""

    def __init__(
        self,
        clock: FakeClock,
        rng: random.Random,
        *,
        visibility_timeout: float = 180.0,
        max_receive_count: int = 5,
        stale_copy_rate: float = 0.0,
        queue_name: str = "bounce-queue",
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.stale_copy_rate = stale_copy_rate
        self.queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"
        self.redriven: list[RedrivenMessage] = []
        # The highest receive count any copy of each message reached.
        self.most_receives: dict[str, int] = {}
        self.stats = QueueStats()
        self._messages: dict[str, _QueuedMessage] = {}
        self._handles = itertools.count(1)

    def send(self, body: str, message_id: str | None = None) -> str:
        """Enqueue `body`; return its SQS message id."""
        message_id = message_id or str(uuid.UUID(int=self.rng.getrandbits(128)))
        self._add(_QueuedMessage(message_id, body, self.clock()))
        return message_id

    def _add(self, message: _QueuedMessage) -> None:
        key = f"{message.message_id}#{next(self._handles)}"
        self._messages[key] = message

    @property
    def pending(self) -> int:
        """Messages still in the queue (visible or in flight)."""
        return len(self._messages)

    def next_visible_at(self) -> float | None:
        """When the earliest message becomes visible (None when the queue is empty)."""
        return min((m.visible_at for m in self._messages.values()), default=None)

    def receive(self, max_messages: int) -> list[dict[str, Any]]:
        """Receive up to `max_messages` visible messages as Lambda SQS event records."""
        now = self.clock()
        self.stats.receives += 1
        records: list[dict[str, Any]] = []
        for key, message in list(self._messages.items()):
            if len(records) == max_messages:
                break
            if message.visible_at > now:
                continue
            if message.receive_count >= self.max_receive_count:
                del self._messages[key]
                self.redriven.append(
                    RedrivenMessage(
                        message.message_id, message.body, message.receive_count, message.stale_copy
                    )
                )
                continue
            if message.receive_count > 0:
                self.stats.redeliveries += 1
            message.receive_count += 1
            self.most_receives[message.message_id] = max(
                message.receive_count, self.most_receives.get(message.message_id, 0)
            )
            message.visible_at = now + self.visibility_timeout
            message.receipt_handle = f"{key}@{message.receive_count}"
            if message.first_received_at is None:
                message.first_received_at = now
            records.append(self._record(message))
            if self.rng.random() < self.stale_copy_rate:
                self.stats.stale_copies += 1
                delay = self.rng.uniform(0, self.visibility_timeout)
                stale = _QueuedMessage(message.message_id, message.body, message.sent_at, True)
                stale.visible_at = now + delay
                self._add(stale)
        self.stats.deliveries += len(records)
        return records

    def _record(self, message: _QueuedMessage) -> dict[str, Any]:
        first = message.first_received_at or message.sent_at
        return {
            "messageId": message.message_id,
            "receiptHandle": message.receipt_handle,
            "body": message.body,
            "attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(int(message.sent_at * 1000)),
                "SenderId": "AIDAEXAMPLESNS",
                "ApproximateFirstReceiveTimestamp": str(int(first * 1000)),
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(message.body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }

    def deliver_now(self, message_id: str) -> dict[str, Any] | None:
        """A copy of message `message_id`, received at once by another poller (an at-least-once
        duplicate that two invocations process at the same time); None once it is deleted."""
        original = next((m for m in self._messages.values() if m.message_id == message_id), None)
        if original is None:
            return None
        now = self.clock()
        copy = _QueuedMessage(message_id, original.body, original.sent_at, True, receive_count=1)
        copy.visible_at = now + self.visibility_timeout
        copy.first_received_at = now
        key = f"{message_id}#{next(self._handles)}"
        copy.receipt_handle = f"{key}@1"
        self._messages[key] = copy
        self.stats.concurrent_copies += 1
        self.stats.deliveries += 1
        return self._record(copy)

    def delete(self, receipt_handle: str) -> None:
        """Delete the message this handle came from, if it is still the current handle."""
        key = receipt_handle.rpartition("@")[0]
        message = self._messages.get(key)
        if message is not None and message.receipt_handle == receipt_handle:
            del self._messages[key]
            self.stats.deletes += 1

    def complete(self, records: Sequence[Mapping[str, Any]], response: Any) -> None:
        """Apply a Lambda response with ReportBatchItemFailures: delete all but the failures.

        A response that is not ``{"batchItemFailures": [{"itemIdentifier": <id>}, ...]}`` with
        ids from the batch fails the whole batch, as Lambda does.
        """
        self.stats.invocations += 1
        failed = _failed_ids(response, {r["messageId"] for r in records})
        if failed is None:
            self.stats.failed_invocations += 1
            return
        self.stats.reported_failures += len(failed)
        for record in records:
            if record["messageId"] not in failed:
                self.delete(record["receiptHandle"])

    def fail(self) -> None:
        """Record an invocation that raised: nothing is deleted, all records come back later."""
        self.stats.invocations += 1
        self.stats.failed_invocations += 1

    def drain(
        self,
        invoke: Callable[[list[dict[str, Any]]], Any],
        *,
        batch_size: int = 10,
        max_invocations: int = 100_000,
    ) -> None:
        """Feed batches to `invoke` until the queue is empty, moving the clock over idle gaps."""
        for _ in range(max_invocations):
            next_visible = self.next_visible_at()
            if next_visible is None:
                return
            self.clock.advance_to(next_visible)
            records = self.receive(batch_size)
            if not records:
                continue
            try:
                response = invoke(records)
            except (Exception, InvocationCrashed):
                self.fail()
            else:
                self.complete(records, response)
        raise RuntimeError(
            f"queue not drained after {max_invocations} invocations: {self.pending} messages left"
        )


def _failed_ids(response: Any, batch_ids: set[str]) -> set[str] | None:
    if not isinstance(response, dict) or not isinstance(response.get("batchItemFailures"), list):
        return None
    failed: set[str] = set()
    for item in response["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if identifier not in batch_ids:
            return None
        failed.add(identifier)
    return failed


# ---------------------------------------------------------------------------------------------
# Fault injection

CRASH = "InvocationCrashed"
READ_TIMEOUT = "ReadTimeoutError"  # the request went out; no answer came
CONNECT_TIMEOUT = "ConnectTimeoutError"  # no connection: the request never went out
INTERLEAVE = "Interleave"  # another invocation runs here (``FaultInjector.interleave``)


class InvocationCrashed(BaseException):
    """The Lambda invocation died (timeout, out of memory) in the middle of a call.

    A ``BaseException``, like the kill it stands for: the runtime's ``except Exception`` handlers
    cannot catch it, so nothing after it runs and the whole batch comes back.
    """


def client_error(code: str, status: int, operation: str, message: str = "") -> ClientError:
    """A botocore ClientError as botocore builds it from an AWS error answer."""
    response: Any = {
        "Error": {"Code": code, "Message": message or f"Injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@dataclass(frozen=True)
class Fault:
    """One kind of failure of a call.

    ``code``: a ClientError code (with HTTP ``status``); "" no connection; ``CRASH`` the invocation
    dies; ``READ_TIMEOUT`` / ``CONNECT_TIMEOUT`` botocore's timeouts; ``INTERLEAVE`` another
    invocation runs (the call then goes on). ``after``: the fault comes once the call has taken
    effect (SES sent, S3 wrote or deleted, SQS enqueued); else before, and the call has no effect.
    ``kind`` names the fault in the tally (default: the code); ``seconds`` is the fake time the
    failure spends (a timeout waits out its timeout); ``limit`` caps how often it fires.
    """

    code: str
    status: int
    rate: float
    after: bool = False
    kind: str = ""
    message: str = ""
    seconds: float = 0.0
    limit: int | None = None

    def label(self, operation: str) -> str:
        """``<operation>:<kind>``, the fault's name in the tally."""
        return f"{operation}:{self.kind or self.code or 'EndpointConnectionError'}"

    def exception(self, operation: str, endpoint: str) -> BaseException:
        if not self.code:
            return EndpointConnectionError(endpoint_url=endpoint)
        if self.code == CRASH:
            when = "after" if self.after else "during"
            return InvocationCrashed(f"invocation killed {when} {operation}")
        if self.code == READ_TIMEOUT:
            return ReadTimeoutError(endpoint_url=endpoint)
        if self.code == CONNECT_TIMEOUT:
            return ConnectTimeoutError(endpoint_url=endpoint)
        return client_error(self.code, self.status, operation, self.message)


@dataclass(frozen=True)
class Injected:
    """One fault that fired: its label, the call's subject (S3 key, SES or SQS message id), when."""

    label: str
    subject: str
    time: float


@dataclass
class FaultInjector:
    """Draws failures per operation from a seeded generator; counts what it injected.

    ``clock`` (when given) is advanced by a fault's ``seconds``; ``interleave`` is called with the
    call's subject when an ``INTERLEAVE`` fault fires (it stands for a concurrent invocation).
    """

    rng: random.Random
    faults: Mapping[str, Sequence[Fault]]
    injected: dict[str, int] = field(default_factory=dict)
    clock: FakeClock | None = None
    interleave: Callable[[str], None] | None = None
    events: list[Injected] = field(default_factory=list)

    def check(
        self, operation: str, endpoint: str, *, after: bool = False, subject: str = ""
    ) -> None:
        """Raise (or run) the first fault of `operation` in this phase whose draw hits, if any.

        ``after=False`` is the phase before the call takes effect, ``after=True`` the one after.
        """
        for fault in self.faults.get(operation, ()):
            if fault.after != after:
                continue
            label = fault.label(operation)
            if fault.limit is not None and self.injected.get(label, 0) >= fault.limit:
                continue
            if self.rng.random() < fault.rate:
                self.injected[label] = self.injected.get(label, 0) + 1
                self.events.append(Injected(label, subject, self.clock() if self.clock else 0.0))
                if self.clock is not None and fault.seconds:
                    self.clock.sleep(fault.seconds)
                if fault.code == INTERLEAVE:
                    if self.interleave is not None:
                        self.interleave(subject)
                    return
                raise fault.exception(operation, endpoint)


@functools.cache
def _ses_exceptions() -> Any:
    """The SES client's modeled exception classes (one client per process: building it is slow)."""
    return boto3.client(
        "ses", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    ).exceptions


@dataclass(frozen=True)
class SentBounce:
    """A SendBounce the fake SES accepted."""

    time: float
    request: dict[str, Any]
    message_id: str


class FakeSes:
    """`ses` client fake: validates like SES, enforces the rate on the fake clock, injects faults.

    Invalid requests and unverified senders raise the client's modeled ``MessageRejected``.
    """

    def __init__(
        self,
        clock: FakeClock,
        faults: FaultInjector,
        *,
        verified: Iterable[str],
        rate_per_second: float,
        call_seconds: float = 0.05,
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.verified = frozenset(v.lower() for v in verified)
        self.bucket = TokenBucket(rate_per_second)
        self.call_seconds = call_seconds
        self.sent: list[SentBounce] = []
        self.arrivals: list[float] = []
        self.throttled = 0
        self.exceptions = _ses_exceptions()

    def send_bounce(self, **request: Any) -> dict[str, Any]:
        """Send when valid, verified and within the rate; ``sent`` records what SES sent, even
        when a fault then takes the answer away (``after=True``)."""
        start = self.clock()
        self.clock.sleep(self.call_seconds)
        endpoint = f"https://email.{REGION}.amazonaws.com"
        subject = str(request.get("OriginalMessageId", ""))
        self.faults.check("SendBounce", endpoint, subject=subject)
        self.arrivals.append(start)
        try:
            validate_send_bounce(request)
        except SesError as error:
            raise self.exceptions.MessageRejected(
                {"Error": {"Code": "MessageRejected", "Message": error.message}},
                "SendBounce",
            ) from None
        sender = str(request["BounceSender"]).lower()
        if sender not in self.verified and sender.rpartition("@")[2] not in self.verified:
            raise self.exceptions.MessageRejected(
                {"Error": {"Code": "MessageRejected", "Message": f"{sender} is not verified"}},
                "SendBounce",
            )
        if not self.bucket.try_take(start):
            self.throttled += 1
            raise client_error("Throttling", 400, "SendBounce", "Maximum sending rate exceeded.")
        message_id = f"0102bounce{len(self.sent):06d}"
        self.sent.append(SentBounce(start, dict(request), message_id))
        self.faults.check("SendBounce", endpoint, after=True, subject=subject)
        return {"MessageId": message_id}


@dataclass
class StoredObject:
    """An object in the fake bucket."""

    data: bytes
    last_modified: datetime
    tags: dict[str, str] = field(default_factory=dict)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, amount: int | None = None) -> bytes:
        data, self._data = (
            (self._data, b"") if amount is None else (self._data[:amount], self._data[amount:])
        )
        return data

    def close(self) -> None:
        self._data = b""


class FakeS3:
    """`s3` client fake for head/get/put/delete object and object tagging, with injected faults.

    ``put_object`` honours ``IfNoneMatch="*"`` as S3 does (``PreconditionFailed``, HTTP 412, when
    the key exists). S3's clock is ``wall_clock`` (default: the fake clock's seconds since the
    epoch) plus ``skew_s``: it gives ``LastModified`` and the ``Date`` header of every answer.
    Keys in ``always_failing`` fail every call with their fault (a poison message).
    """

    def __init__(
        self,
        clock: FakeClock,
        faults: FaultInjector,
        call_seconds: float = 0.01,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.call_seconds = call_seconds
        self.wall_clock = wall_clock or (lambda: datetime.fromtimestamp(clock(), UTC))
        self.skew_s = 0.0
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.always_failing: dict[tuple[str, str], Fault] = {}

    def s3_time(self) -> datetime:
        """S3's clock: the function's wall clock plus ``skew_s``."""
        return self.wall_clock() + timedelta(seconds=self.skew_s)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object (test set-up, no faults)."""
        self.objects[(bucket, key)] = StoredObject(data, self.s3_time())

    def _call(self, operation: str, bucket: str, key: str) -> None:
        self.clock.sleep(self.call_seconds)
        endpoint = f"https://{bucket}.s3.{REGION}.amazonaws.com"
        poison = self.always_failing.get((bucket, key))
        if poison is not None:
            raise poison.exception(operation, endpoint)
        self.faults.check(operation, endpoint, subject=key)

    def _done(
        self, operation: str, bucket: str, key: str, answer: dict[str, Any]
    ) -> dict[str, Any]:
        """The answer to a call that took effect, unless an ``after`` fault takes it away."""
        endpoint = f"https://{bucket}.s3.{REGION}.amazonaws.com"
        self.faults.check(operation, endpoint, after=True, subject=key)
        date = format_datetime(self.s3_time().astimezone(UTC).replace(microsecond=0), usegmt=True)
        metadata = {"HTTPStatusCode": 200, "HTTPHeaders": {"date": date}}
        return {**answer, "ResponseMetadata": metadata}

    def _object(self, operation: str, bucket: str, key: str) -> StoredObject:
        self._call(operation, bucket, key)
        stored = self.objects.get((bucket, key))
        if stored is None:
            code = "404" if operation == "HeadObject" else "NoSuchKey"
            raise client_error(code, 404, operation, "The specified key does not exist.")
        return stored

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        stored = self._object("HeadObject", Bucket, Key)
        answer = {
            "ContentLength": len(stored.data),
            "LastModified": stored.last_modified,
            "TagCount": len(stored.tags),
        }
        return self._done("HeadObject", Bucket, Key, answer)

    def put_object(
        self, *, Bucket: str, Key: str, Body: bytes, IfNoneMatch: str = "", **_: Any
    ) -> dict[str, Any]:
        self._call("PutObject", Bucket, Key)
        if IfNoneMatch == "*" and (Bucket, Key) in self.objects:
            raise client_error(
                "PreconditionFailed",
                412,
                "PutObject",
                "At least one of the pre-conditions you specified did not hold",
            )
        self.objects[(Bucket, Key)] = StoredObject(Body, self.s3_time())
        return self._done("PutObject", Bucket, Key, {"ETag": f'"{hashlib.md5(Body).hexdigest()}"'})

    def delete_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._call("DeleteObject", Bucket, Key)
        self.objects.pop((Bucket, Key), None)
        return self._done("DeleteObject", Bucket, Key, {})

    def get_object(self, *, Bucket: str, Key: str, Range: str = "", **_: Any) -> dict[str, Any]:
        stored = self._object("GetObject", Bucket, Key)
        data = stored.data
        if Range:
            start, _dash, end = Range.removeprefix("bytes=").partition("-")
            data = data[int(start) : int(end) + 1 if end else None]
        return self._done(
            "GetObject", Bucket, Key, {"Body": _Body(data), "ContentLength": len(data)}
        )

    def get_object_tagging(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        stored = self._object("GetObjectTagging", Bucket, Key)
        tag_set = [{"Key": k, "Value": v} for k, v in stored.tags.items()]
        return self._done("GetObjectTagging", Bucket, Key, {"TagSet": tag_set})

    def put_object_tagging(
        self, *, Bucket: str, Key: str, Tagging: Mapping[str, Any], **_: Any
    ) -> dict[str, Any]:
        stored = self._object("PutObjectTagging", Bucket, Key)
        stored.tags = {tag["Key"]: tag["Value"] for tag in Tagging["TagSet"]}
        return self._done("PutObjectTagging", Bucket, Key, {})


@dataclass(frozen=True)
class DeadLetter:
    """A message the runtime sent to its dead-letter queue."""

    queue_url: str
    body: str
    attributes: dict[str, str]


class FakeSqsClient:
    """`sqs` client fake for the runtime's dead-letter sends, with injected faults."""

    def __init__(self, clock: FakeClock, faults: FaultInjector, call_seconds: float = 0.01) -> None:
        self.clock = clock
        self.faults = faults
        self.call_seconds = call_seconds
        self.sent: list[DeadLetter] = []

    def send_message(
        self,
        *,
        QueueUrl: str,
        MessageBody: str,
        MessageAttributes: Mapping[str, Mapping[str, str]] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.clock.sleep(self.call_seconds)
        endpoint = f"https://sqs.{REGION}.amazonaws.com"
        attributes = {
            name: value["StringValue"] for name, value in (MessageAttributes or {}).items()
        }
        subject = attributes.get(DLQ_ATTR_SQS_MESSAGE_ID, "")
        self.faults.check("SendMessage", endpoint, subject=subject)
        self.sent.append(DeadLetter(QueueUrl, MessageBody, attributes))
        self.faults.check("SendMessage", endpoint, after=True, subject=subject)
        return {"MessageId": str(uuid.uuid4())}
