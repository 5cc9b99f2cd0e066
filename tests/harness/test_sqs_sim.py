"""The SQS simulation and the fakes behave as the fault-injection test relies on."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from support.sqs_sim import (
    CRASH,
    FakeClock,
    FakeS3,
    FakeSes,
    FakeSqsClient,
    Fault,
    FaultInjector,
    InvocationCrashed,
    SqsSimulator,
)


def queue(clock: FakeClock, **options: Any) -> SqsSimulator:
    settings: dict[str, Any] = {"visibility_timeout": 30.0, "max_receive_count": 3, **options}
    return SqsSimulator(clock, random.Random(1), **settings)


def no_faults() -> FaultInjector:
    return FaultInjector(random.Random(1), {})


def test_received_messages_stay_invisible_until_the_visibility_timeout() -> None:
    clock = FakeClock()
    sqs = queue(clock)
    message_id = sqs.send("a")
    [record] = sqs.receive(10)
    assert record["messageId"] == message_id
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    clock.sleep(29.9)
    assert sqs.receive(10) == []
    clock.sleep(0.1)
    [again] = sqs.receive(10)
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert again["receiptHandle"] != record["receiptHandle"]


def test_reported_failures_come_back_and_the_rest_is_deleted() -> None:
    clock = FakeClock()
    sqs = queue(clock)
    ids = [sqs.send(body) for body in ("a", "b", "c")]
    records = sqs.receive(10)
    sqs.complete(records, {"batchItemFailures": [{"itemIdentifier": ids[1]}]})
    assert sqs.pending == 1
    clock.sleep(30)
    assert [r["messageId"] for r in sqs.receive(10)] == [ids[1]]


@pytest.mark.parametrize(
    "response",
    [None, {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, {"other": []}],
    ids=["no-response", "unknown-id", "wrong-shape"],
)
def test_an_invalid_response_fails_the_whole_batch(response: Any) -> None:
    clock = FakeClock()
    sqs = queue(clock)
    sqs.send("a")
    sqs.send("b")
    sqs.complete(sqs.receive(10), response)
    assert sqs.pending == 2
    assert sqs.stats.failed_invocations == 1


def test_a_message_is_redriven_when_it_would_exceed_max_receives() -> None:
    clock = FakeClock()
    sqs = queue(clock)
    message_id = sqs.send("poison")
    for receive in range(1, 4):
        [record] = sqs.receive(10)
        assert record["attributes"]["ApproximateReceiveCount"] == str(receive)
        sqs.fail()
        clock.sleep(30)
    assert sqs.receive(10) == []
    assert [(r.message_id, r.body, r.receive_count) for r in sqs.redriven] == [
        (message_id, "poison", 3)
    ]
    assert sqs.pending == 0


def test_stale_copies_are_delivered_again_even_after_delete() -> None:
    clock = FakeClock()
    sqs = queue(clock, stale_copy_rate=1.0)
    message_id = sqs.send("a")
    [record] = sqs.receive(1)
    sqs.complete([record], {"batchItemFailures": []})
    clock.sleep(30)
    [copy] = sqs.receive(1)
    assert copy["messageId"] == message_id
    assert copy["attributes"]["ApproximateReceiveCount"] == "1"
    assert sqs.stats.stale_copies >= 1


def test_drain_moves_the_clock_over_idle_gaps_until_empty() -> None:
    clock = FakeClock()
    sqs = queue(clock)
    ids = [sqs.send(str(n)) for n in range(5)]
    failed_once: set[str] = set()

    def invoke(records: list[dict[str, Any]]) -> Any:
        fresh = [r["messageId"] for r in records if r["messageId"] not in failed_once]
        failed_once.update(fresh)
        return {"batchItemFailures": [{"itemIdentifier": i} for i in fresh]}

    start = clock()
    sqs.drain(invoke, batch_size=2)
    assert sqs.pending == 0
    assert failed_once == set(ids)
    assert clock() - start >= 30


def test_fault_injector_raises_real_botocore_errors_and_counts_them() -> None:
    faults = FaultInjector(
        random.Random(3),
        {
            "SendMessage": (Fault("ServiceUnavailable", 503, 1.0),),
            "GetObject": (Fault("", 0, 1.0),),
        },
    )
    sqs_client = FakeSqsClient(FakeClock(), faults)
    with pytest.raises(ClientError) as caught:
        sqs_client.send_message(QueueUrl="https://q", MessageBody="x")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3 = FakeS3(FakeClock(), faults)
    s3.put("b", "k", b"data")
    with pytest.raises(EndpointConnectionError):
        s3.get_object(Bucket="b", Key="k")
    assert faults.injected == {
        "SendMessage:ServiceUnavailable": 1,
        "GetObject:EndpointConnectionError": 1,
    }


def test_fake_ses_throttles_on_the_fake_clock_and_rejects_unverified_senders() -> None:
    clock = FakeClock()
    ses = FakeSes(clock, no_faults(), verified={"example.com"}, rate_per_second=1.0)
    request = {
        "OriginalMessageId": "m1",
        "BounceSender": "bounces@example.com",
        "BouncedRecipientInfoList": [{"Recipient": "a@example.com", "BounceType": "DoesNotExist"}],
    }
    assert ses.send_bounce(**request) == {"MessageId": "0102bounce000000"}
    with pytest.raises(ClientError) as throttled:
        ses.send_bounce(**request)
    assert throttled.value.response["Error"]["Code"] == "Throttling"
    clock.sleep(1.0)
    ses.send_bounce(**request)
    with pytest.raises(ses.exceptions.MessageRejected):
        ses.send_bounce(**{**request, "BounceSender": "x@unverified.net"})
    with pytest.raises(ses.exceptions.MessageRejected):
        ses.send_bounce(**{**request, "BouncedRecipientInfoList": []})
    assert [s.request["OriginalMessageId"] for s in ses.sent] == ["m1", "m1"]
    assert ses.throttled == 1


def test_fake_s3_serves_ranges_tags_and_missing_keys() -> None:
    s3 = FakeS3(FakeClock(), no_faults())
    s3.put("b", "k", b"0123456789")
    assert s3.get_object(Bucket="b", Key="k", Range="bytes=0-3")["Body"].read() == b"0123"
    assert s3.head_object(Bucket="b", Key="k")["ContentLength"] == 10
    s3.put_object_tagging(Bucket="b", Key="k", Tagging={"TagSet": [{"Key": "t", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket="b", Key="k")["TagSet"] == [{"Key": "t", "Value": "v"}]
    with pytest.raises(ClientError) as missing:
        s3.get_object_tagging(Bucket="b", Key="gone")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_fake_s3_conditional_put_delete_and_last_modified() -> None:
    clock = FakeClock()
    start = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    s3 = FakeS3(clock, no_faults(), wall_clock=lambda: start + timedelta(seconds=clock()))
    s3.put_object(Bucket="b", Key="k.claim", Body=b"first", IfNoneMatch="*")
    written = s3.head_object(Bucket="b", Key="k.claim")["LastModified"]
    assert written == start + timedelta(seconds=1_000.01)  # one 0.01 s call after t=1000
    with pytest.raises(ClientError) as taken:
        s3.put_object(Bucket="b", Key="k.claim", Body=b"second", IfNoneMatch="*")
    assert taken.value.response["Error"]["Code"] == "PreconditionFailed"
    assert taken.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.objects[("b", "k.claim")].data == b"first"
    s3.delete_object(Bucket="b", Key="k.claim")
    s3.delete_object(Bucket="b", Key="k.claim")  # deleting a missing key succeeds, as in S3
    s3.put_object(Bucket="b", Key="k.claim", Body=b"third", IfNoneMatch="*")
    s3.put_object(Bucket="b", Key="k.claim", Body=b"fourth")  # unconditional: overwrites
    assert s3.objects[("b", "k.claim")].data == b"fourth"


def test_a_crash_fault_kills_the_invocation_and_the_batch_comes_back() -> None:
    faults = FaultInjector(random.Random(1), {"PutObjectTagging": (Fault(CRASH, 0, 1.0),)})
    s3 = FakeS3(FakeClock(), faults)
    s3.put("b", "k", b"data")
    with pytest.raises(InvocationCrashed) as crashed:
        s3.put_object_tagging(Bucket="b", Key="k", Tagging={"TagSet": []})
    assert str(crashed.value) == "invocation killed during PutObjectTagging"
    assert faults.injected == {"PutObjectTagging:InvocationCrashed": 1}
    clock = FakeClock()
    sqs = queue(clock)
    sqs.send("a")

    def crash(records: list[dict[str, Any]]) -> Any:
        if records[0]["attributes"]["ApproximateReceiveCount"] == "1":
            raise InvocationCrashed("killed")
        return {"batchItemFailures": []}

    sqs.drain(crash)
    assert (sqs.stats.invocations, sqs.stats.failed_invocations, sqs.pending) == (2, 1, 0)
