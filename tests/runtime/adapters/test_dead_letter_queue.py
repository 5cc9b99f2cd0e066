"""DeadLetterQueue: SendMessage shape on a real SQS client (Stubber)."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bounce-dlq"


def string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def test_sends_the_body_unchanged_with_reason_attributes(sqs_client: Any) -> None:
    body = '{"notificationType": "Received", "mail": {}}'
    with Stubber(sqs_client) as stub:
        stub.add_response(
            "send_message",
            {"MessageId": "dlq-1"},
            expected_params={
                "QueueUrl": QUEUE_URL,
                "MessageBody": body,
                "MessageAttributes": {
                    "reason": string("ses-rejected:MessageRejected"),
                    "detail": string("SES rejected SendBounce: not verified"),
                    "sqs-message-id": string("sqs-1"),
                    "ses-message-id": string("ses-1"),
                },
            },
        )
        DeadLetterQueue(sqs_client, QUEUE_URL).send(
            body=body,
            reason="ses-rejected:MessageRejected",
            detail="SES rejected SendBounce: not verified",
            sqs_message_id="sqs-1",
            ses_message_id="ses-1",
        )
        stub.assert_no_pending_responses()


def test_long_or_unsendable_detail_is_cut_and_cleaned(sqs_client: Any) -> None:
    with Stubber(sqs_client) as stub:
        stub.add_response(
            "send_message",
            {"MessageId": "dlq-2"},
            expected_params={
                "QueueUrl": QUEUE_URL,
                "MessageBody": "not json",
                "MessageAttributes": {
                    "reason": string("malformed-notification"),
                    "detail": string("x\ufffd" + "y" * 997 + "\u2026"),
                    "sqs-message-id": string("sqs-2"),
                },
            },
        )
        DeadLetterQueue(sqs_client, QUEUE_URL).send(
            body="not json",
            reason="malformed-notification",
            detail="x\x00" + "y" * 2000,
            sqs_message_id="sqs-2",
        )
        stub.assert_no_pending_responses()
