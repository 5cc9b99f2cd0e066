"""One record (the workflow, judged by the processor's failure policy) at the edges of its
promises: never twice (claims, tags, duplicates), never lost (every record dead-lettered with
its body or left for redelivery), never late (no claim without time to send and release it) and
never in silence (each end logged with the ids to find it).

These pin what mutation testing (``make mutation``) found no test noticing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bounce_runtime.adapters.ses_sender import SendResult
from bounce_runtime.contract import BOUNCE_TAG_KEY
from bounce_runtime.errors import (
    OutOfTime,
    SendDeadlineExceeded,
    SendOutcomeUnknown,
    SesRejected,
    SesThrottled,
)
from support.events import BUCKET, MESSAGE_ID, OBJECT_KEY_PREFIX, RECIPIENT, notification
from support.workflow_fakes import LambdaClock, Rig, Sender

OBJECT = f"s3://{BUCKET}/{OBJECT_KEY_PREFIX}{MESSAGE_ID}"
SQS_ID = "sqs-1"
ALREADY_BOUNCED = {
    "level": "INFO",
    "message": "already bounced: skipped",
    "ses_message_id": MESSAGE_ID,
    "sqs_message_id": SQS_ID,
    "bounce_message_id": "bounce-0",
}


def record(body: Any = None, **fields: Any) -> dict[str, Any]:
    """An SQS record whose body is ``body`` as given, or a notification made of ``fields``."""
    text = json.dumps(notification(**fields)) if body is None else body
    return {"messageId": SQS_ID, "body": text}


def test_a_body_that_is_not_a_string_is_dead_lettered_as_json() -> None:
    rig = Rig()
    assert rig.workflow().run(record({"not": "a string"}), SQS_ID, set()) is True
    letter = {
        "body": '{"not": "a string"}',
        "reason": "malformed-notification",
        "detail": "body: expected a string, got dict",
        "sqs_message_id": SQS_ID,
        "ses_message_id": None,
    }
    assert rig.dead_letters.sent == [letter]
    del letter["body"]
    assert rig.log_lines("dead-lettered") == [
        {"level": "WARNING", "message": "dead-lettered", **letter}
    ]


def test_an_empty_body_is_dead_lettered_as_non_empty_json_text() -> None:
    # SQS refuses an empty message body: the dead letter would fail on every delivery.
    rig = Rig()
    assert rig.workflow().run(record(""), SQS_ID, set()) is True
    assert [letter["body"] for letter in rig.dead_letters.sent] == ['""']


def test_a_second_delivery_in_the_batch_is_skipped_and_logged() -> None:
    rig = Rig()
    seen: set[str] = set()
    workflow = rig.workflow()
    assert workflow.run(record(), SQS_ID, seen) is True
    calls = list(rig.store.calls)
    assert workflow.run({**record(), "messageId": "sqs-2"}, "sqs-2", seen) is True
    assert rig.store.calls == calls  # nothing more read, claimed or sent
    assert len(rig.sender.requests) == 1
    assert rig.log_lines("duplicate in batch: skipped") == [
        {
            "level": "INFO",
            "message": "duplicate in batch: skipped",
            "ses_message_id": MESSAGE_ID,
            "sqs_message_id": "sqs-2",
        }
    ]
    assert rig.totals()["DuplicatesSkipped"] == 1


def test_an_object_tagged_as_bounced_is_skipped_and_logged() -> None:
    rig = Rig()
    rig.store.tag_set = [{"Key": BOUNCE_TAG_KEY, "Value": "bounce-0"}]
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags"]
    assert rig.sender.requests == []
    assert rig.log_lines("already bounced: skipped") == [ALREADY_BOUNCED]


def test_a_claim_lost_to_a_delivery_that_bounced_is_skipped_and_logged() -> None:
    rig = Rig()
    rig.store.claim_free = False
    original_tags = rig.store.tags

    def tagged_meanwhile(bucket: str, key: str) -> list[dict[str, str]]:
        found = original_tags(bucket, key)
        rig.store.tag_set = [{"Key": BOUNCE_TAG_KEY, "Value": "bounce-0"}]  # after this read
        return found

    rig.store.tags = tagged_meanwhile  # type: ignore[method-assign]
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags", "claim", "bounce_tag"]
    assert rig.sender.requests == []
    assert rig.log_lines("already bounced: skipped") == [ALREADY_BOUNCED]


def test_a_claim_held_by_another_delivery_is_logged_as_classified_and_left() -> None:
    rig = Rig()
    rig.store.claim_free, rig.store.claim_age_s = False, 30.0
    assert rig.workflow().run(record(), SQS_ID, set()) is False
    assert rig.log_lines("record failed: left for redelivery") == [
        {
            "level": "ERROR",
            "message": "record failed: left for redelivery",
            "ses_message_id": MESSAGE_ID,
            "sqs_message_id": SQS_ID,
            "reason": "send-claim-held",
            "detail": "another delivery claimed the send 30 s ago (claim TTL 120 s)",
        }
    ]


def test_an_unexpected_failure_is_logged_with_its_traceback_and_left() -> None:
    rig = Rig()
    rig.store.tags_error = RuntimeError("S3 fell over")
    assert rig.workflow().run(record(), SQS_ID, set()) is False
    [line] = rig.log_lines("record failed: left for redelivery")
    traceback = line.pop("traceback")
    assert traceback.startswith("Traceback (most recent call last):")
    assert traceback.rstrip().endswith("RuntimeError: S3 fell over")
    assert line == {
        "level": "ERROR",
        "message": "record failed: left for redelivery",
        "ses_message_id": MESSAGE_ID,
        "sqs_message_id": SQS_ID,
        "reason": "RuntimeError",
        "detail": "S3 fell over",
    }


def test_a_message_past_the_window_is_dead_lettered_saying_so() -> None:
    rig = Rig()
    assert rig.workflow().run(record(timestamp="2024-04-30T12:00:00.000Z"), SQS_ID, set())
    assert [(letter["reason"], letter["detail"]) for letter in rig.dead_letters.sent] == [
        (
            "expired",
            "received at 2024-04-30T12:00:00+00:00: more than 24 hours ago, past the "
            "SendBounce window",
        )
    ]
    assert rig.totals() == {"PermanentFailures": 1, "MessagesExpired": 1}


def test_a_message_bounced_to_no_one_is_logged_with_its_ids() -> None:
    rig = Rig()
    assert rig.workflow().run(record(source=""), SQS_ID, set()) is True
    assert rig.store.calls == []
    assert rig.log_lines("message suppress") == [
        {
            "level": "INFO",
            "message": "message suppress",
            "ses_message_id": MESSAGE_ID,
            "sqs_message_id": SQS_ID,
            "outcome": "suppress",
            "recipients": [
                {"recipient": RECIPIENT, "decision": "suppress", "reason": "null-sender"}
            ],
            "bounce_message_id": None,
        }
    ]


def test_no_claim_is_taken_without_time_to_send_and_release_it() -> None:
    # Claiming and sending need one S3 call (11 s) plus one attempt and its reserve (28 s).
    rig = Rig(LambdaClock(remaining_s=38.5))
    with pytest.raises(OutOfTime) as raised:
        rig.workflow().run(record(), SQS_ID, set())
    assert str(raised.value) == "38.5 s left: claiming and sending need 39.0 s"
    assert rig.store.calls == ["tags"]
    assert rig.sender.requests == []


def test_a_claim_is_taken_with_exactly_the_time_to_send_and_release_it() -> None:
    rig = Rig(LambdaClock(remaining_s=39.0))
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags", "claim", "tag"]
    assert len(rig.sender.requests) == 1


def test_a_deadline_while_sending_releases_the_claim_and_stops_the_batch_saying_why() -> None:
    rig = Rig()
    rig.sender.outcomes = [SendDeadlineExceeded("attempt 2 needs 28.10 s, only 20.00 s remain")]
    with pytest.raises(OutOfTime) as raised:
        rig.workflow().run(record(), SQS_ID, set())
    assert str(raised.value) == "attempt 2 needs 28.10 s, only 20.00 s remain"
    assert rig.store.calls == ["tags", "claim", "release"]


@pytest.mark.parametrize(
    ("error", "redelivered"),
    [
        (SesThrottled("gave up after 6 attempts"), True),
        (SesRejected("SES rejected SendBounce", detail="MessageRejected"), False),
        (ValueError("a bug before SendBounce"), False),
    ],
)
def test_a_claim_that_cannot_be_released_is_logged_with_the_message_and_object(
    error: Exception, redelivered: bool
) -> None:
    # SES certainly did not send: the claim is released; if that fails a redelivery is
    # dead-lettered, and the log says which message and object to look at.
    rig = Rig()
    rig.sender.outcomes = [error]
    rig.store.release_error = RuntimeError("DeleteObject denied")
    assert rig.workflow().run(record(), SQS_ID, set()) is not redelivered
    assert rig.store.calls == ["tags", "claim", "release"]
    assert rig.log_lines("send claim not released: a redelivery will be dead-lettered") == [
        {
            "level": "ERROR",
            "message": "send claim not released: a redelivery will be dead-lettered",
            "ses_message_id": MESSAGE_ID,
            "object": OBJECT,
            "detail": "DeleteObject denied",
        }
    ]


def test_a_rejected_send_is_dead_lettered_with_both_ids_and_its_claim_released() -> None:
    rig = Rig()
    rig.sender.outcomes = [SesRejected("not verified", detail="MessageRejected")]
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags", "claim", "release"]
    assert rig.log_lines("dead-lettered") == [
        {
            "level": "WARNING",
            "message": "dead-lettered",
            "ses_message_id": MESSAGE_ID,
            "sqs_message_id": SQS_ID,
            "reason": "ses-rejected:MessageRejected",
            "detail": "not verified",
        }
    ]


def test_a_send_without_an_answer_keeps_the_claim_and_is_dead_lettered() -> None:
    # SES may have sent the bounce: releasing the claim would let a redelivery send it again.
    rig = Rig()
    rig.sender.outcomes = [SendOutcomeUnknown("no answer")]
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags", "claim"]
    assert [letter["reason"] for letter in rig.dead_letters.sent] == ["ses-outcome-unknown"]


def test_a_failed_dead_letter_is_logged_and_the_record_left_for_redelivery() -> None:
    rig = Rig()
    rig.sender.outcomes = [SendOutcomeUnknown("no answer")]
    rig.dead_letters.error = RuntimeError("SendMessage denied")
    assert rig.workflow().run(record(), SQS_ID, set()) is False
    assert "release" not in rig.store.calls  # the bounce may be out: the claim stays
    assert rig.log_lines("dead-letter send failed: left for redelivery") == [
        {
            "level": "ERROR",
            "message": "dead-letter send failed: left for redelivery",
            "ses_message_id": MESSAGE_ID,
            "sqs_message_id": SQS_ID,
            "reason": "ses-outcome-unknown",
            "detail": "SendMessage denied",
        }
    ]
    assert rig.totals() == {}


def test_tagging_is_tried_three_times_then_logged_and_counted_never_resent() -> None:
    rig = Rig()
    rig.store.tag_errors = [RuntimeError(f"PutObjectTagging failed {n}") for n in (1, 2, 3, 4)]
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags", "claim", "tag", "tag", "tag"]
    assert rig.clock.sleeps == pytest.approx([0.1, 0.2])
    assert len(rig.sender.requests) == 1
    assert rig.log_lines("bounce sent but the object could not be tagged") == [
        {
            "level": "ERROR",
            "message": "bounce sent but the object could not be tagged",
            "ses_message_id": MESSAGE_ID,
            "bounce_message_id": "bounce-1",
            "object": OBJECT,
            "detail": "PutObjectTagging failed 3",
        }
    ]
    assert rig.totals()["TaggingFailures"] == 1


@pytest.mark.parametrize(
    ("remaining_after_send_s", "tag_calls"),
    [(11.1, ["tag", "tag"]), (11.09, ["tag"]), (5.0, ["tag"])],
)
def test_a_tagging_retry_starts_only_with_time_to_finish_it(
    remaining_after_send_s: float, tag_calls: list[str]
) -> None:
    # A retry waits 0.1 s, then its call may take 11 s (AWS_CALL_BOUND_S).
    rig = Rig()
    rig.sender.remaining_after_s = remaining_after_send_s
    rig.store.tag_errors = [RuntimeError("PutObjectTagging failed")]
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    assert rig.store.calls == ["tags", "claim", *tag_calls]


def test_the_slot_wait_is_logged_to_the_millisecond() -> None:
    rig = Rig()
    rig.sender = Sender(rig.clock, SendResult("bounce-1", 2, 1, waited_s=1.23456))
    assert rig.workflow().run(record(), SQS_ID, set()) is True
    [line] = rig.log_lines("message bounce")
    assert (line["attempts"], line["throttles"], line["waited_for_slots_s"]) == (2, 1, 1.235)
    assert rig.totals()["SendSlotWait"] == 1235


@pytest.mark.parametrize(
    "recipient",
    ["a b@example.com", "user Bcc: x@evil.example@example.com", "r@example.com\r\nBcc: v@x.org"],
)
def test_a_recipient_outside_the_address_grammar_is_dead_lettered_never_sent(
    recipient: str,
) -> None:
    rig = Rig()
    assert rig.workflow().run(record(recipients=[recipient]), SQS_ID, set()) is True
    assert rig.sender.requests == []
    assert "claim" not in rig.store.calls
    assert [letter["reason"] for letter in rig.dead_letters.sent] == ["invalid-request"]
    assert "one bare address local@domain is required" in rig.dead_letters.sent[0]["detail"]
