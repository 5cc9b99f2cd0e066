"""The fault model itself: a fault before or after the call takes effect, timeouts that spend
time, limits, interleaving, S3's clock skew, concurrent SQS copies. The harness is only as good
as these."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from support.events import notification
from support.sqs_sim import (
    CONNECT_TIMEOUT,
    CRASH,
    INTERLEAVE,
    READ_TIMEOUT,
    FakeClock,
    FakeS3,
    FakeSes,
    FakeSqsClient,
    Fault,
    FaultInjector,
    InvocationCrashed,
    SqsSimulator,
)

WALL = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def rig(faults: dict[str, tuple[Fault, ...]]) -> tuple[FakeClock, FaultInjector, FakeSes]:
    clock = FakeClock()
    injector = FaultInjector(random.Random(1), faults, clock=clock)
    return clock, injector, FakeSes(clock, injector, verified={"example.com"}, rate_per_second=1)


def request() -> dict[str, Any]:
    return {
        "OriginalMessageId": "original-1",
        "BounceSender": "mailer-daemon@example.com",
        "BouncedRecipientInfoList": [{"Recipient": "a@example.com", "BounceType": "DoesNotExist"}],
    }


def test_a_5xx_after_ses_sent_leaves_the_bounce_sent() -> None:
    _, injector, ses = rig({"SendBounce": (Fault("InternalFailure", 500, 1.0, after=True),)})
    with pytest.raises(ClientError) as caught:
        ses.send_bounce(**request())
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(ses.sent) == 1 and len(ses.arrivals) == 1
    assert injector.injected == {"SendBounce:InternalFailure": 1}


def test_a_5xx_before_sends_nothing() -> None:
    _, _, ses = rig({"SendBounce": (Fault("ServiceUnavailable", 503, 1.0),)})
    with pytest.raises(ClientError):
        ses.send_bounce(**request())
    assert ses.sent == [] and ses.arrivals == []


def test_timeouts_spend_their_time_and_say_whether_ses_sent() -> None:
    read = Fault(READ_TIMEOUT, 0, 1.0, after=True, seconds=4.0, kind="read-after", limit=1)
    connect = Fault(CONNECT_TIMEOUT, 0, 1.0, seconds=2.0, limit=1)
    clock, injector, ses = rig({"SendBounce": (connect, read)})
    started = clock()
    with pytest.raises(ConnectTimeoutError):
        ses.send_bounce(**request())
    assert ses.sent == []
    clock.sleep(1.0)  # the rate allows the next call
    with pytest.raises(ReadTimeoutError):
        ses.send_bounce(**request())
    assert len(ses.sent) == 1
    assert clock() - started == pytest.approx(2 * ses.call_seconds + 2.0 + 1.0 + 4.0)
    assert injector.injected == {
        "SendBounce:ConnectTimeoutError": 1,
        "SendBounce:read-after": 1,
    }
    assert [event.label for event in injector.events] == [
        "SendBounce:ConnectTimeoutError",
        "SendBounce:read-after",
    ]
    assert {event.subject for event in injector.events} == {"original-1"}


def test_a_limited_fault_stops_firing() -> None:
    _, injector, ses = rig({"SendBounce": (Fault(CRASH, 0, 1.0, limit=2),)})
    for _ in range(2):
        with pytest.raises(InvocationCrashed):
            ses.send_bounce(**request())
    assert ses.send_bounce(**request())["MessageId"]
    assert injector.injected == {"SendBounce:InvocationCrashed": 2}


def test_interleave_runs_the_other_invocation_then_the_call_goes_on() -> None:
    clock = FakeClock()
    seen: list[str] = []
    injector = FaultInjector(
        random.Random(1), {"PutObject": (Fault(INTERLEAVE, 0, 1.0, after=True),)}, clock=clock
    )
    s3 = FakeS3(clock, injector)
    injector.interleave = lambda subject: seen.append(
        f"{subject} written: {('b', subject) in s3.objects}"
    )
    answer = s3.put_object(Bucket="b", Key="k.claim", Body=b"{}", IfNoneMatch="*")
    assert seen == ["k.claim written: True"]
    assert answer["ETag"]


def test_killed_after_the_claim_leaves_the_claim() -> None:
    clock = FakeClock()
    injector = FaultInjector(random.Random(1), {"PutObject": (Fault(CRASH, 0, 1.0, after=True),)})
    s3 = FakeS3(clock, injector)
    with pytest.raises(InvocationCrashed, match="after PutObject"):
        s3.put_object(Bucket="b", Key="k.claim", Body=b"{}", IfNoneMatch="*")
    assert ("b", "k.claim") in s3.objects


def test_killed_after_a_dead_letter_send_leaves_the_dead_letter() -> None:
    clock = FakeClock()
    injector = FaultInjector(random.Random(1), {"SendMessage": (Fault(CRASH, 0, 1.0, after=True),)})
    sqs = FakeSqsClient(clock, injector)
    attributes = {"sqs-message-id": {"DataType": "String", "StringValue": "m-1"}}
    with pytest.raises(InvocationCrashed):
        sqs.send_message(QueueUrl="q", MessageBody="body", MessageAttributes=attributes)
    assert [letter.body for letter in sqs.sent] == ["body"]
    assert [event.subject for event in injector.events] == ["m-1"]


@pytest.mark.parametrize("skew_s", [-300.0, 0.0, 120.0])
def test_s3_clock_skew_shows_in_last_modified_and_the_date_header(skew_s: float) -> None:
    clock = FakeClock()
    s3 = FakeS3(clock, FaultInjector(random.Random(1), {}), wall_clock=lambda: WALL)
    s3.skew_s = skew_s
    s3.put_object(Bucket="b", Key="k", Body=b"x")
    head = s3.head_object(Bucket="b", Key="k")
    s3_now = WALL + timedelta(seconds=skew_s)
    assert head["LastModified"] == s3_now
    assert parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"]) == s3_now


def test_deliver_now_hands_a_concurrent_copy_to_another_poller() -> None:
    clock = FakeClock()
    sqs = SqsSimulator(clock, random.Random(1))
    body = str(notification())
    message_id = sqs.send(body)
    [first] = sqs.receive(10)
    copy = sqs.deliver_now(message_id)
    assert copy is not None
    assert copy["messageId"] == message_id and copy["body"] == body
    assert copy["receiptHandle"] != first["receiptHandle"]
    assert sqs.receive(10) == []  # both are in flight
    sqs.complete([copy], {"batchItemFailures": []})
    sqs.complete([first], {"batchItemFailures": []})
    assert sqs.pending == 0
    assert sqs.deliver_now(message_id) is None
    assert sqs.stats.concurrent_copies == 1
