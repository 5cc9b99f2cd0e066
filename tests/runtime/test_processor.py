"""BatchProcessor with Stubber on real S3, SES and SQS clients (requests checked by the models)."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.send_budget import SendBudget
from bounce_runtime.adapters.ses_sender import BounceSender, RetryPolicy
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import (
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    HEADER_BLOCK_MAX_BYTES,
    SEND_BUDGET_MARGIN_S,
)
from bounce_runtime.core.ownership import OwnedRecipients
from bounce_runtime.core.policy import BouncePolicy, default_policy
from bounce_runtime.errors import SendClaimHeld
from bounce_runtime.processor import BatchProcessor, failure_cause
from support.events import (
    BUCKET,
    MESSAGE_ID,
    OBJECT_KEY_PREFIX,
    RECIPIENT,
    notification,
    sqs_event,
    sqs_record,
)
from support.fake_budget import BUDGET, TABLE, FakeBudgetTable, client_error

NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)  # one hour after the events' receipt time
SENDER = "mailer-daemon@example.com"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bounce-dlq"
CLAIM_TTL_S = 120.0


def object_of(message_id: str) -> dict[str, str]:
    return {"Bucket": BUCKET, "Key": OBJECT_KEY_PREFIX + message_id}


def claim_of(message_id: str) -> dict[str, str]:
    return {"Bucket": BUCKET, "Key": OBJECT_KEY_PREFIX + message_id + CLAIM_SUFFIX}


def bounce_request(message_id: str = MESSAGE_ID, recipient: str = RECIPIENT) -> dict[str, Any]:
    return {
        "OriginalMessageId": message_id,
        "BounceSender": SENDER,
        "MessageDsn": {
            "ReportingMta": "dns; example.com",
            "ArrivalDate": "2024-05-01T12:00:00.000Z",
        },
        "BouncedRecipientInfoList": [{"Recipient": recipient, "BounceType": "DoesNotExist"}],
    }


def attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


class Rig:
    """A processor on stubbed clients, a fake clock and captured logs and metrics."""

    def __init__(
        self, s3: Any, ses: Any, sqs: Any, fake_time: Any, *, policy: BouncePolicy | None = None,
        rate: float = 10.0, budget: SendBudget | None = None, **settings: Any,
    ) -> None:  # fmt: skip
        self.s3, self.ses, self.sqs = Stubber(s3), Stubber(ses), Stubber(sqs)
        self.logs, self.emf = io.StringIO(), io.StringIO()
        config = RuntimeConfig(
            bounce_sender=SENDER,
            dead_letter_queue_url=DLQ_URL,
            policy=policy or default_policy(),
            send_claim_ttl_seconds=CLAIM_TTL_S,
            **settings,
        )
        self.processor = BatchProcessor(
            config,
            mail_store=MailStore(s3),
            sender=BounceSender(
                ses,
                Pacer(rate, clock=fake_time.clock, sleep=fake_time.sleep),
                budget=budget,
                sleep=fake_time.sleep,
                rng=random.Random(3),
            ),
            dead_letter=DeadLetterQueue(sqs, DLQ_URL),
            metrics=BatchMetrics("CdkSesBounce", "bounce-fn", now=lambda: NOW, stream=self.emf),
            logger=JsonLogger(self.logs, now=lambda: NOW),
            now=lambda: NOW,
            remaining_ms=fake_time.remaining_ms,
            sleep=fake_time.sleep,
        )

    def run(self, *records: dict[str, Any]) -> list[str]:
        with self.s3, self.ses, self.sqs:
            response = self.processor.process(sqs_event(records))
            for stub in (self.s3, self.ses, self.sqs):
                stub.assert_no_pending_responses()
        return [item["itemIdentifier"] for item in response["batchItemFailures"]]

    def expect_untagged(self, message_id: str = MESSAGE_ID) -> None:
        self.s3.add_response("get_object_tagging", {"TagSet": []}, object_of(message_id))

    def expect_claim(self, message_id: str = MESSAGE_ID, sqs_id: str | None = None) -> None:
        claim = {"sqsMessageId": sqs_id or "sqs-" + message_id, "claimedAt": NOW.isoformat()}
        self.s3.add_response(
            "put_object",
            {"ETag": '"claim"'},
            {**claim_of(message_id), "Body": json.dumps(claim).encode(),
             "ContentType": "application/json", "IfNoneMatch": "*"},
        )  # fmt: skip

    def expect_claim_lost(self, code: str = "PreconditionFailed", status: int = 412) -> None:
        self.s3.add_client_error("put_object", code, http_status_code=status)

    def expect_release(self, message_id: str = MESSAGE_ID) -> None:
        self.s3.add_response("delete_object", {}, claim_of(message_id))

    def expect_tagging(self, bounce_id: str, message_id: str = MESSAGE_ID) -> None:
        # The tag set was read once before the send: no second GetObjectTagging.
        self.s3.add_response(
            "put_object_tagging",
            {},
            {
                **object_of(message_id),
                "Tagging": {"TagSet": [{"Key": BOUNCE_TAG_KEY, "Value": bounce_id}]},
            },
        )

    def expect_header_read(self, stored: bytes, message_id: str = MESSAGE_ID) -> None:
        """The ranged GetObject of the header block, answered as S3 does: the first
        HEADER_BLOCK_MAX_BYTES of ``stored`` and their Content-Range."""
        sent = stored[:HEADER_BLOCK_MAX_BYTES]
        self.s3.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(sent), len(sent)), "ContentLength": len(sent),
             "ContentRange": f"bytes 0-{len(sent) - 1}/{len(stored)}"},
            {**object_of(message_id), "Range": f"bytes=0-{HEADER_BLOCK_MAX_BYTES - 1}"},
        )  # fmt: skip

    def expect_bounce(self, bounce_id: str, message_id: str = MESSAGE_ID) -> None:
        self.expect_untagged(message_id)
        self.expect_claim(message_id)
        self.ses.add_response("send_bounce", {"MessageId": bounce_id}, bounce_request(message_id))
        self.expect_tagging(bounce_id, message_id)

    def expect_dead_letter(self, record: dict[str, Any], reason: str, ses_id: str | None) -> None:
        attributes = {"reason": attribute(reason), "detail": ANY,
                      "sqs-message-id": attribute(record["messageId"])}  # fmt: skip
        if ses_id is not None:
            attributes["ses-message-id"] = attribute(ses_id)
        self.sqs.add_response(
            "send_message",
            {"MessageId": "dlq-" + record["messageId"]},
            {"QueueUrl": DLQ_URL, "MessageBody": record["body"], "MessageAttributes": attributes},
        )

    def totals(self) -> dict[str, int]:
        document = json.loads(self.emf.getvalue().splitlines()[0])
        names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        return {name: document[name] for name in names if document[name]}

    def by_reason(self) -> dict[str, dict[str, int]]:
        result = {}
        for line in self.emf.getvalue().splitlines()[1:]:
            document = json.loads(line)
            names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            result[document["Reason"]] = {name: document[name] for name in names}
        return result

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines()]


def record_for(message_id: str = MESSAGE_ID, **fields: Any) -> dict[str, Any]:
    return sqs_record(notification(message_id=message_id, **fields), message_id="sqs-" + message_id)


def test_bounce_is_sent_tagged_logged_and_counted(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_bounce("bounce-1")
    assert rig.run(record_for()) == []
    assert rig.totals() == {"BouncesSent": 1, "RecipientsBounced": 1}
    assert rig.by_reason() == {"default-rule": {"RecipientsBounced": 1}}
    sent = [line for line in rig.log_lines() if line["message"] == "message bounce"]
    assert sent == [
        {
            "timestamp": NOW.isoformat(),
            "level": "INFO",
            "message": "message bounce",
            "ses_message_id": MESSAGE_ID,
            "sqs_message_id": "sqs-" + MESSAGE_ID,
            "outcome": "bounce",
            "recipients": [
                {"recipient": RECIPIENT, "decision": "bounce", "reason": "default-rule"}
            ],
            "bounce_message_id": "bounce-1",
            "attempts": 1,
            "throttles": 0,
            "waited_for_slots_s": 0.0,
        }
    ]


def test_tagging_merges_with_the_objects_existing_tags(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    existing = [{"Key": "retention", "Value": "30d"}]
    rig.s3.add_response("get_object_tagging", {"TagSet": existing}, object_of(MESSAGE_ID))
    rig.expect_claim()
    rig.ses.add_response("send_bounce", {"MessageId": "bounce-m"}, bounce_request())
    rig.s3.add_response(
        "put_object_tagging",
        {},
        {**object_of(MESSAGE_ID),
         "Tagging": {"TagSet": [*existing, {"Key": BOUNCE_TAG_KEY, "Value": "bounce-m"}]}},
    )  # fmt: skip
    assert rig.run(record_for()) == []


def test_throttling_then_success_counts_the_throttles(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_untagged()
    rig.expect_claim()
    rig.ses.add_client_error("send_bounce", "Throttling", "Maximum sending rate exceeded.")
    rig.ses.add_client_error("send_bounce", "Throttling", "Maximum sending rate exceeded.")
    rig.ses.add_response("send_bounce", {"MessageId": "bounce-2"}, bounce_request())
    rig.expect_tagging("bounce-2")
    assert rig.run(record_for()) == []
    assert rig.totals() == {"BouncesSent": 1, "RecipientsBounced": 1, "SendBounceThrottled": 2}


def test_a_server_error_is_dead_lettered_as_unknown_and_keeps_the_claim(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for()
    rig.expect_untagged()
    rig.expect_claim()
    rig.ses.add_client_error("send_bounce", "ServiceUnavailable", http_status_code=503)
    # No second attempt, and no DeleteObject of the claim: SES may have sent the bounce.
    rig.expect_dead_letter(record, "ses-outcome-unknown", MESSAGE_ID)
    assert rig.run(record) == []
    rig.s3.assert_no_pending_responses()
    assert rig.totals() == {"PermanentFailures": 1}
    assert rig.by_reason() == {"ses-outcome-unknown": {"PermanentFailures": 1}}
    messages = [line["message"] for line in rig.log_lines()]
    assert "send claim not released: a redelivery will be dead-lettered" not in messages
    assert "message bounce" not in messages


def test_permanent_rejection_goes_to_the_dead_letter_queue_and_the_batch_goes_on(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rejected, fine = record_for("rejected-1"), record_for("fine-2")
    rig.expect_untagged("rejected-1")
    rig.expect_claim("rejected-1")
    rig.ses.add_client_error("send_bounce", "MessageRejected", "Email address is not verified.")
    rig.expect_release("rejected-1")  # SES refused: nothing went out, a redelivery may try again
    rig.sqs.add_response(
        "send_message",
        {"MessageId": "dlq-1"},
        {
            "QueueUrl": DLQ_URL,
            "MessageBody": rejected["body"],
            "MessageAttributes": {
                "reason": attribute("ses-rejected:MessageRejected"),
                "detail": attribute(
                    "SES rejected SendBounce: An error occurred (MessageRejected) when calling "
                    "the SendBounce operation: Email address is not verified."
                ),
                "sqs-message-id": attribute("sqs-rejected-1"),
                "ses-message-id": attribute("rejected-1"),
            },
        },
    )
    rig.expect_bounce("bounce-4", "fine-2")
    assert rig.run(rejected, fine) == []
    assert rig.totals() == {
        "BouncesSent": 1,
        "RecipientsBounced": 1,
        "PermanentFailures": 1,
        "SendSlotWait": 100,  # the second send waited one pacing interval (rate 10/s)
    }
    assert rig.by_reason()["ses-rejected:MessageRejected"] == {"PermanentFailures": 1}


def test_a_failed_dead_letter_send_reports_the_record(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = sqs_record("not json", message_id="sqs-bad")
    rig.sqs.add_client_error("send_message", "AWS.SimpleQueueService.NonExistentQueue")
    assert rig.run(record) == ["sqs-bad"]
    assert "PermanentFailures" not in rig.totals()
    failed = [line for line in rig.log_lines() if line["level"] == "ERROR"]
    assert [(line["message"], line["reason"]) for line in failed] == [
        ("dead-letter send failed: left for redelivery", "malformed-notification")
    ]


def test_malformed_body_in_the_middle_does_not_stop_the_batch(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    first, bad, last = record_for("m-1"), sqs_record("{}", message_id="sqs-bad"), record_for("m-3")
    rig.expect_bounce("bounce-m1", "m-1")
    rig.expect_dead_letter(bad, "malformed-notification", None)
    rig.expect_bounce("bounce-m3", "m-3")
    assert rig.run(first, bad, last) == []
    assert rig.totals()["BouncesSent"] == 2
    assert rig.by_reason()["malformed-notification"] == {"PermanentFailures": 1}


def test_deadline_reports_the_rest_of_the_batch(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    # 40 s left: record 1 goes at once; record 2 must wait 20 s for its pacing slot and an
    # attempt needs 6 s plus 22 s for tagging after it, so it is not started; record 3 is never
    # touched.
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, rate=0.05)
    fake_time.deadline = fake_time.now + 40.0
    records = [record_for("d-1"), record_for("d-2"), record_for("d-3")]
    rig.expect_bounce("bounce-d1", "d-1")
    rig.expect_untagged("d-2")
    rig.expect_claim("d-2")
    rig.expect_release("d-2")  # no attempt was started: the claim is given back
    assert rig.run(*records) == ["sqs-d-2", "sqs-d-3"]
    stop = [line for line in rig.log_lines() if line["level"] == "WARNING"]
    assert stop[0]["message"] == "time is short: leaving the rest of the batch for redelivery"
    assert stop[0]["unprocessed"] == 2


def test_no_record_starts_inside_the_safety_margin(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    # Margin: GetObject (headers), GetObjectTagging and the claim (11 s each) + one 6 s attempt.
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    fake_time.deadline = fake_time.now + 38.9
    assert rig.processor.safety_margin_s == 39.0
    assert rig.run(record_for("t-1"), record_for("t-2")) == ["sqs-t-1", "sqs-t-2"]


def test_the_safety_margin_counts_the_head_object_of_a_size_policy(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    policy = BouncePolicy.from_dict({"rules": [{"match": {"min_size_bytes": 10},
                                     "action": {"type": "accept"}}]})  # fmt: skip
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, policy=policy)
    assert rig.processor.safety_margin_s == 50.0


def test_missing_object_is_dead_lettered(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for()
    rig.s3.add_client_error("get_object_tagging", "NoSuchKey", http_status_code=404)
    rig.sqs.add_response(
        "send_message",
        {"MessageId": "dlq-2"},
        {
            "QueueUrl": DLQ_URL,
            "MessageBody": record["body"],
            "MessageAttributes": {
                "reason": attribute("mail-object-missing"),
                "detail": attribute(
                    f"s3://{BUCKET}/{OBJECT_KEY_PREFIX}{MESSAGE_ID} does not exist (S3 NoSuchKey)"
                ),
                "sqs-message-id": attribute(record["messageId"]),
                "ses-message-id": attribute(MESSAGE_ID),
            },
        },
    )
    assert rig.run(record) == []


def test_transient_s3_error_reports_only_that_record(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.s3.add_client_error("get_object_tagging", "SlowDown", http_status_code=503)
    rig.expect_bounce("bounce-s2", "s-2")
    assert rig.run(record_for("s-1"), record_for("s-2")) == ["sqs-s-1"]


def test_a_tagged_object_is_skipped_as_a_duplicate(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.s3.add_response(
        "get_object_tagging", {"TagSet": [{"Key": BOUNCE_TAG_KEY, "Value": "bounce-0"}]}
    )
    assert rig.run(record_for()) == []
    assert rig.totals() == {"DuplicatesSkipped": 1}


def test_duplicates_within_a_batch_are_sent_once(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    body = notification()
    rig.expect_untagged()
    rig.expect_claim(sqs_id="a")
    rig.ses.add_response("send_bounce", {"MessageId": "bounce-5"}, bounce_request())
    rig.expect_tagging("bounce-5")
    assert rig.run(sqs_record(body, message_id="a"), sqs_record(body, message_id="b")) == []
    assert rig.totals() == {"BouncesSent": 1, "RecipientsBounced": 1, "DuplicatesSkipped": 1}


def test_a_tagging_failure_after_the_send_is_counted_but_the_record_is_done(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_untagged()
    rig.expect_claim()
    rig.ses.add_response("send_bounce", {"MessageId": "bounce-6"}, bounce_request())
    for _ in range(3):
        rig.s3.add_client_error("put_object_tagging", "InternalError", http_status_code=500)
    assert rig.run(record_for()) == []
    assert rig.totals() == {"BouncesSent": 1, "RecipientsBounced": 1, "TaggingFailures": 1}
    assert fake_time.sleeps[-2:] == [0.1, 0.2]


def test_expired_message_is_dead_lettered_and_counted(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    received = NOW - timedelta(hours=23, minutes=59, seconds=30)  # inside the 1-minute margin
    record = record_for(timestamp=received.isoformat().replace("+00:00", "Z"))
    rig.expect_untagged()
    rig.expect_dead_letter(record, "expired", MESSAGE_ID)
    assert rig.run(record) == []
    assert rig.totals() == {"MessagesExpired": 1, "PermanentFailures": 1}
    assert rig.by_reason() == {"expired": {"PermanentFailures": 1}}


def test_suppressed_message_needs_no_aws_call(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for(extra_headers=[("Auto-Submitted", "auto-replied")])
    assert rig.run(record) == []
    assert rig.totals() == {"RecipientsSuppressed": 1}
    assert rig.by_reason() == {"auto-submitted": {"RecipientsSuppressed": 1}}


@pytest.mark.parametrize(
    "verdicts",
    [
        {"spf": "GRAY", "dkim": "GRAY", "dmarc": "GRAY"},
        {"spf": "PROCESSING_FAILED", "dkim": "PASS", "dmarc": "PASS"},
        {"scan": False},
    ],
)
def test_an_unauthenticated_sender_is_suppressed_without_an_aws_call(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any, verdicts: dict[str, Any]
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    assert rig.run(record_for(**verdicts)) == []
    assert rig.totals() == {"RecipientsSuppressed": 1}
    assert rig.by_reason() == {"unauthenticated-sender": {"RecipientsSuppressed": 1}}


def test_a_dkim_pass_bounces_when_the_policy_accepts_dkim(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    policy = BouncePolicy.from_dict({"guards": {"sender_authentication": ["spf", "dkim"]}})
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, policy=policy)
    rig.expect_bounce("bounce-dkim")
    assert rig.run(record_for(spf="GRAY", dkim="PASS")) == []
    assert rig.totals() == {"BouncesSent": 1, "RecipientsBounced": 1}


def test_truncated_headers_are_read_from_the_object(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    raw = b"From: a@example.net\r\nList-Id: <news.example.net>\r\n\r\nbody"
    rig.expect_header_read(raw)
    assert rig.run(record_for(headers_truncated=True)) == []
    assert rig.by_reason() == {"list-traffic": {"RecipientsSuppressed": 1}}


def test_a_header_block_past_the_cap_is_suppressed_not_bounced(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    fields = b"Received: from relay.example.net by mx.example.com\r\n" * 30_000  # 1.5 MiB
    rig.expect_header_read(fields + b"\r\nbody")  # no S3 call after it, no SendBounce
    assert rig.run(record_for(headers_truncated=True)) == []
    assert rig.totals() == {"RecipientsSuppressed": 1}
    assert rig.by_reason() == {"header-block-too-large": {"RecipientsSuppressed": 1}}
    logged = rig.log_lines()[0]
    assert (logged["outcome"], logged["recipients"]) == (
        "suppress",
        [{"recipient": RECIPIENT, "decision": "suppress", "reason": "header-block-too-large"}],
    )


def test_object_size_is_read_only_when_the_policy_matches_on_size(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    policy = BouncePolicy.from_dict(
        {
            "rules": [{"match": {"min_size_bytes": 1000}, "action": {"type": "bounce",
                       "bounce_type": "MessageTooLarge"}}],
            "default": {"type": "accept"},
        }
    )  # fmt: skip
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, policy=policy)
    rig.s3.add_response("head_object", {"ContentLength": 10}, object_of(MESSAGE_ID))
    assert rig.run(record_for()) == []
    assert rig.totals() == {"RecipientsAccepted": 1}


def claimed(seconds_ago: float) -> dict[str, Any]:
    return {"LastModified": NOW - timedelta(seconds=seconds_ago), "ContentLength": 60}


@pytest.mark.parametrize(("code", "status"), [("PreconditionFailed", 412),
                                              ("ConditionalRequestConflict", 409)])  # fmt: skip
def test_a_lost_claim_on_a_tagged_object_is_a_duplicate(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any, code: str, status: int
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_untagged()
    rig.expect_claim_lost(code, status)
    rig.s3.add_response(
        "get_object_tagging", {"TagSet": [{"Key": BOUNCE_TAG_KEY, "Value": "bounce-w"}]}
    )
    assert rig.run(record_for()) == []
    assert rig.totals() == {"DuplicatesSkipped": 1}


def test_a_fresh_claim_of_another_delivery_leaves_the_record_for_redelivery(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_untagged()
    rig.expect_claim_lost()
    rig.expect_untagged()
    rig.s3.add_response("head_object", claimed(CLAIM_TTL_S - 1), claim_of(MESSAGE_ID))
    assert rig.run(record_for()) == ["sqs-" + MESSAGE_ID]
    assert rig.totals() == {}
    failed = [line for line in rig.log_lines() if line["level"] == "ERROR"]
    assert [(line["reason"], line["detail"]) for line in failed] == [
        ("send-claim-held", "another delivery claimed the send 119 s ago (claim TTL 120 s)")
    ]


def test_a_claim_released_while_it_is_read_leaves_the_record_for_redelivery(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_untagged()
    rig.expect_claim_lost()
    rig.expect_untagged()
    rig.s3.add_client_error("head_object", "404", http_status_code=404)
    assert rig.run(record_for()) == ["sqs-" + MESSAGE_ID]
    failed = [line for line in rig.log_lines() if line["level"] == "ERROR"]
    assert [line["detail"] for line in failed] == [
        f"the send claim of s3://{BUCKET}/{OBJECT_KEY_PREFIX}{MESSAGE_ID} was just released"
    ]


def test_a_stale_claim_on_an_untagged_object_is_dead_lettered_never_resent(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for()
    rig.expect_untagged()
    rig.expect_claim_lost()
    rig.expect_untagged()
    rig.s3.add_response("head_object", claimed(CLAIM_TTL_S), claim_of(MESSAGE_ID))
    rig.sqs.add_response(
        "send_message",
        {"MessageId": "dlq-3"},
        {
            "QueueUrl": DLQ_URL,
            "MessageBody": record["body"],
            "MessageAttributes": {
                "reason": attribute("ses-outcome-unknown"),
                "detail": attribute(
                    "the send was claimed at 2024-05-01T12:58:00+00:00 (120 s ago, claim TTL 120 s)"
                    f" but s3://{BUCKET}/{OBJECT_KEY_PREFIX}{MESSAGE_ID} was never tagged: the "
                    "delivery that claimed it stopped, could not tag, or could not release the "
                    "claim; the bounce may have gone out"
                ),
                "sqs-message-id": attribute(record["messageId"]),
                "ses-message-id": attribute(MESSAGE_ID),
            },
        },
    )
    assert rig.run(record) == []
    assert rig.totals() == {"PermanentFailures": 1}
    assert rig.by_reason() == {"ses-outcome-unknown": {"PermanentFailures": 1}}


def test_sending_given_up_after_the_attempts_releases_the_claim(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.expect_untagged()
    rig.expect_claim()
    for _ in range(6):
        rig.ses.add_client_error("send_bounce", "Throttling", "Maximum sending rate exceeded.")
    rig.expect_release()
    assert rig.run(record_for()) == ["sqs-" + MESSAGE_ID]
    assert rig.totals() == {"SendBounceThrottled": 6}


def test_a_failed_release_is_logged_and_the_record_still_ends_by_its_error(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for()
    rig.expect_untagged()
    rig.expect_claim()
    rig.ses.add_client_error("send_bounce", "MessageRejected", "Email address is not verified.")
    rig.s3.add_client_error("delete_object", "AccessDenied", "Access Denied", 403)
    rig.expect_dead_letter(record, "ses-rejected:MessageRejected", MESSAGE_ID)
    assert rig.run(record) == []
    errors = [line for line in rig.log_lines() if line["level"] == "ERROR"]
    assert [(line["message"], line["object"]) for line in errors] == [
        (
            "send claim not released: a redelivery will be dead-lettered",
            f"s3://{BUCKET}/{OBJECT_KEY_PREFIX}{MESSAGE_ID}",
        )
    ]


def test_a_send_without_an_answer_keeps_the_claim(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    def no_answer(**_: Any) -> dict[str, Any]:
        raise ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")

    ses_client.send_bounce = no_answer
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for()
    rig.expect_untagged()
    rig.expect_claim()  # and no delete_object: the bounce may have gone out
    rig.expect_dead_letter(record, "ses-outcome-unknown", MESSAGE_ID)
    assert rig.run(record) == []
    assert rig.by_reason() == {"ses-outcome-unknown": {"PermanentFailures": 1}}


def test_an_error_after_the_claim_before_sendbounce_releases_it_and_dead_letters(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any, monkeypatch: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for()

    def broken_wait() -> float:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(rig.processor.deps.sender._pacer, "wait", broken_wait)
    rig.expect_untagged()
    rig.expect_claim()
    rig.expect_release()  # SES was never called: a later delivery may claim and send
    rig.expect_dead_letter(record, "failed-before-send", MESSAGE_ID)
    assert rig.run(record) == []
    assert rig.by_reason() == {"failed-before-send": {"PermanentFailures": 1}}
    (dead,) = [line for line in rig.log_lines() if line["message"] == "dead-lettered"]
    assert dead["detail"] == (
        "OverflowError before SendBounce was called (the claim was released): "
        "date value out of range"
    )


def test_a_timestamp_whose_window_ends_past_the_last_date_is_malformed(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for(timestamp="9999-12-31T12:00:00.000Z")
    rig.expect_dead_letter(record, "malformed-notification", None)
    assert rig.run(record) == []  # no claim taken, nothing sent
    (dead,) = [line for line in rig.log_lines() if line["message"] == "dead-lettered"]
    assert dead["detail"].startswith("mail.timestamp: expected an ISO 8601 timestamp")


def test_a_lone_surrogate_in_a_notification_does_not_stop_the_batch(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    accept_all = BouncePolicy.from_dict({"default": {"type": "accept"}})
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, policy=accept_all)
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    rig.processor.deps.logger = JsonLogger(strict, now=lambda: NOW)
    odd = record_for("odd-1", recipients=["us\ud800er@example.com"])
    assert "\\ud800" in odd["body"]  # a JSON escape: json.loads makes it a lone surrogate
    rig.expect_dead_letter(odd, "malformed-notification", None)
    assert rig.run(odd, record_for("next-2")) == []
    lines = [json.loads(line) for line in raw.getvalue().decode("utf-8").splitlines()]
    assert [line["message"] for line in lines] == ["dead-lettered", "message accept", "batch done"]
    assert lines[0]["detail"] == (
        "mail.destination[0]: contains a lone surrogate (U+D800), not valid Unicode"
    )


# Ownership: only the receipt rule's recipients are bounced, and only the mail objects of this
# processor's bucket and prefix are read (anything else is never fetched).
VICTIM = "victim@third-party.example"
OWNS = {
    "owned_recipients": OwnedRecipients.of(["example.com"]),
    "mail_bucket": BUCKET,
    "object_key_prefix": OBJECT_KEY_PREFIX,
}


def test_a_recipient_outside_the_rule_is_never_bounced(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, **OWNS)
    rig.expect_bounce("bounce-owned")  # the request names RECIPIENT alone
    assert rig.run(record_for(recipients=[VICTIM, RECIPIENT])) == []
    assert rig.by_reason() == {
        "not-owned": {"RecipientsSuppressed": 1},
        "default-rule": {"RecipientsBounced": 1},
    }
    decisions = [line for line in rig.log_lines() if line.get("outcome") == "bounce"]
    assert decisions[0]["recipients"][0] == {
        "recipient": VICTIM,
        "decision": "suppress",
        "reason": "not-owned",
    }


def test_a_message_for_foreign_recipients_only_needs_no_aws_call(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, **OWNS)
    assert rig.run(record_for(recipients=[VICTIM, "a@sub.example.com"])) == []
    assert rig.totals() == {"RecipientsSuppressed": 2}
    assert rig.by_reason() == {"not-owned": {"RecipientsSuppressed": 2}}


def test_without_the_setting_every_recipient_is_decided_by_the_policy(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)  # local use: no ownership check
    rig.expect_bounce("bounce-victim")
    assert rig.run(record_for(recipients=[RECIPIENT])) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"bucket": "someone-elses-bucket"},
        {"object_key": "payroll/" + MESSAGE_ID},
        {"object_key": f"{OBJECT_KEY_PREFIX}../payroll/{MESSAGE_ID}"},
        {"object_key": OBJECT_KEY_PREFIX + "another-message"},
        {"message_id": "a..b/c", "object_key": OBJECT_KEY_PREFIX + "a..b/c"},
    ],
)
def test_a_foreign_mail_object_is_dead_lettered_before_any_s3_call(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any, fields: dict[str, Any]
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, **OWNS)
    message_id = fields.pop("message_id", MESSAGE_ID)
    record = record_for(message_id, **fields)
    rig.expect_dead_letter(record, "foreign-mail-object", message_id)
    # No S3 response is stubbed: a GetObject, HeadObject, tagging or claim call would fail the
    # record (left for redelivery) instead of dead-lettering it.
    assert rig.run(record) == []
    assert rig.by_reason() == {"foreign-mail-object": {"PermanentFailures": 1}}
    [dead] = [line for line in rig.log_lines() if line["message"] == "dead-lettered"]
    assert dead["reason"] == "foreign-mail-object"


# The shared send budget (an in-memory table with DynamoDB's conditional-write semantics, on the
# fake clock): what the processor does with each answer of the budget.


def shared_budget(table: FakeBudgetTable, fake_time: Any) -> SendBudget:
    return SendBudget(
        table,
        table_name=TABLE,
        budget_id=BUDGET,
        rate_per_second=1.0,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rng=random.Random(5),
    )


def test_a_restarted_container_waits_for_the_shared_schedule(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    table = FakeBudgetTable(fake_time)
    started = fake_time.now
    # Other containers (of this or another processor) have taken slots up to 5 s from now; this
    # container is new and knows nothing of them.
    table.items[BUDGET] = Decimal(str(started + 5.0))
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, budget=shared_budget(table, fake_time))
    rig.expect_bounce("bounce-1", "r-1")
    rig.expect_bounce("bounce-2", "r-2")
    assert rig.run(record_for("r-1"), record_for("r-2")) == []
    first, second = (float(slot) for _, slot in table.granted)
    assert first == pytest.approx(started + 5.0)
    assert second - first == pytest.approx(1.0 + SEND_BUDGET_MARGIN_S)
    assert fake_time.now >= second  # it slept until its slot before the second send
    # It waited 5 s for its first slot and one spacing for the second: 6.02 s in SendSlotWait.
    assert rig.totals() == {"BouncesSent": 2, "RecipientsBounced": 2, "SendSlotWait": 6020}


def test_an_unreachable_budget_sends_nothing_counts_and_releases_the_claim(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    table = FakeBudgetTable(fake_time)
    table.errors = [client_error("ResourceNotFoundException")]
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, budget=shared_budget(table, fake_time))
    rig.expect_untagged()
    rig.expect_claim()
    rig.expect_release()  # no SendBounce stubbed: a call would fail the test
    assert rig.run(record_for()) == ["sqs-" + MESSAGE_ID]  # back to the queue, not dead-lettered
    assert rig.totals() == {"SendBudgetUnavailable": 1}
    failed = [line for line in rig.log_lines() if line["level"] == "ERROR"]
    assert failed[0]["reason"] == "send-budget-unavailable"


def test_a_slot_past_the_lambda_time_returns_the_record_unsent(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    table = FakeBudgetTable(fake_time)
    # The schedule is taken for longer than this invocation has left (900 s), yet not so far ahead
    # that it could not be legitimate (then it would be repaired).
    table.items[BUDGET] = Decimal(str(fake_time.now + 950.0))
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, budget=shared_budget(table, fake_time))
    rig.expect_untagged("t-1")
    rig.expect_claim("t-1")
    rig.expect_release("t-1")
    assert rig.run(record_for("t-1"), record_for("t-2")) == ["sqs-t-1", "sqs-t-2"]
    assert table.granted == []  # no slot taken: none is wasted
    assert float(table.items[BUDGET]) == pytest.approx(fake_time.now + 950.0, abs=1.0)
    # Nothing dead-lettered, nothing sent; the budget had no slot in time, counted as such.
    assert rig.totals() == {"SendSlotUnavailable": 1}
    stop = [line for line in rig.log_lines() if line["level"] == "WARNING"]
    assert stop[0]["message"] == "time is short: leaving the rest of the batch for redelivery"


def test_a_slot_past_the_24_hour_window_is_dead_lettered_as_expired(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    table = FakeBudgetTable(fake_time)
    # Received 23 h 58 min ago: 120 s left of the window, but the schedule is 200 s ahead.
    table.items[BUDGET] = Decimal(str(fake_time.now + 200.0))
    received = NOW - timedelta(hours=23, minutes=58)
    record = record_for(timestamp=received.isoformat().replace("+00:00", "Z"))
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, budget=shared_budget(table, fake_time))
    rig.expect_untagged()
    rig.expect_claim()
    rig.expect_release()
    rig.expect_dead_letter(record, "expired", MESSAGE_ID)
    assert rig.run(record) == []
    assert table.granted == []
    assert rig.totals() == {"MessagesExpired": 1, "PermanentFailures": 1}


# The last receive: a record that fails again is dead-lettered with its cause -------------------


def last_receive(message_id: str = MESSAGE_ID, receive_count: int = 10) -> dict[str, Any]:
    return sqs_record(
        notification(message_id=message_id),
        message_id="sqs-" + message_id,
        receive_count=receive_count,
    )


def test_access_denied_on_the_last_receive_is_dead_lettered_with_its_cause(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    """A bucket or key policy denying the function fails every receive: on the last one the
    record goes to the dead-letter queue saying so, not moved by SQS without a reason."""
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=10)
    rig.s3.add_client_error("get_object_tagging", "AccessDenied", "Access Denied", 403)
    record = last_receive()
    rig.expect_dead_letter(record, "retries-exhausted:AccessDenied", MESSAGE_ID)
    assert rig.run(record) == []
    assert rig.totals() == {"PermanentFailures": 1}
    assert rig.by_reason() == {"retries-exhausted:AccessDenied": {"PermanentFailures": 1}}
    failed = [line for line in rig.log_lines() if line["level"] == "ERROR"]
    assert [(line["message"], line["reason"]) for line in failed] == [
        ("record failed on its last receive: dead-lettering it", "AccessDenied")
    ]
    [letter] = [line for line in rig.log_lines() if line["message"] == "dead-lettered"]
    assert letter["detail"] == (
        "failed on receive 10 of 10 (the queue's maxReceiveCount); last error: An error "
        "occurred (AccessDenied) when calling the GetObjectTagging operation: Access Denied"
    )


@pytest.mark.parametrize(
    ("receive_count", "max_receive_count"), [(9, 10), (1, 10), (10, None), (1, None)]
)
def test_a_failure_before_the_last_receive_is_left_for_redelivery(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any,
    receive_count: int, max_receive_count: int | None,
) -> None:  # fmt: skip
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=max_receive_count)
    rig.s3.add_client_error("get_object_tagging", "AccessDenied", "Access Denied", 403)
    assert rig.run(last_receive(receive_count=receive_count)) == ["sqs-" + MESSAGE_ID]
    assert rig.totals() == {}


def test_a_receive_count_past_the_limit_is_the_last_receive_too(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    """maxReceiveCount lowered on a queue that holds records received more often."""
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=3)
    rig.s3.add_client_error("get_object_tagging", "SlowDown", "Slow Down", 503)
    record = last_receive(receive_count=7)
    rig.expect_dead_letter(record, "retries-exhausted:SlowDown", MESSAGE_ID)
    assert rig.run(record) == []


def test_a_claim_held_on_the_last_receive_is_dead_lettered_never_sent(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    """Another delivery holds the send claim: this one must not send. On its last receive the
    record is dead-lettered as retries-exhausted:send-claim-held; a replay finds the tag (or the
    stale claim) and never sends twice."""
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=10)
    rig.expect_untagged()
    rig.expect_claim_lost()
    rig.expect_untagged()
    rig.s3.add_response("head_object", claimed(CLAIM_TTL_S - 1), claim_of(MESSAGE_ID))
    record = last_receive()
    rig.expect_dead_letter(record, "retries-exhausted:send-claim-held", MESSAGE_ID)
    assert rig.run(record) == []  # the stubbed SES expects no call: nothing is sent


def test_a_throttled_send_on_the_last_receive_releases_the_claim_then_dead_letters(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=10)
    rig.expect_untagged()
    rig.expect_claim()
    for _ in range(RetryPolicy().max_attempts):
        rig.ses.add_client_error("send_bounce", "Throttling", "Maximum sending rate exceeded.")
    rig.expect_release()
    record = last_receive()
    rig.expect_dead_letter(record, "retries-exhausted:ses-throttled", MESSAGE_ID)
    assert rig.run(record) == []


def test_a_failed_dead_letter_on_the_last_receive_leaves_the_record_to_sqs(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=10)
    rig.s3.add_client_error("get_object_tagging", "AccessDenied", "Access Denied", 403)
    rig.sqs.add_client_error("send_message", "ServiceUnavailable", http_status_code=503)
    assert rig.run(last_receive()) == ["sqs-" + MESSAGE_ID]
    assert rig.totals() == {}


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (SendClaimHeld("held"), "send-claim-held"),
        (client_error("AccessDenied", "get_object_tagging"), "AccessDenied"),
        (KeyError("x"), "KeyError"),
        (client_error("Bad Code/\u212a", "put_object"), "Bad_Code__"),
        (client_error("x" * 100, "put_object"), "x" * 64),
    ],
)
def test_the_cause_of_a_failure_is_a_short_ascii_token(error: Exception, cause: str) -> None:
    assert failure_cause(error) == cause


def test_records_left_by_a_deadline_on_their_last_receive_are_dead_lettered(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    """Time runs short before two records start: the one on its last receive is dead-lettered
    as retries-exhausted:deadline while a dead-letter call fits; the other waits for SQS."""
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=10)
    fake_time.deadline = fake_time.now + 38.9  # inside the 39 s margin, room for SQS calls
    final, early = last_receive("t-1"), last_receive("t-2", receive_count=3)
    rig.expect_dead_letter(final, "retries-exhausted:deadline", None)
    assert rig.run(final, early) == ["sqs-t-2"]
    [letter] = [line for line in rig.log_lines() if line["message"] == "dead-lettered"]
    assert letter["detail"].startswith(
        "failed on receive 10 of 10 (the queue's maxReceiveCount); last error: 38.9 s left"
    )


def test_no_dead_letter_is_tried_without_time_for_the_call(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time, max_receive_count=10)
    fake_time.deadline = fake_time.now + rig.processor.deps.aws_call_bound_s - 0.1
    assert rig.run(last_receive("t-1")) == ["sqs-t-1"]  # no SQS call is stubbed: none is made
