"""Event factories: SES "Received" notifications (S3 action), SNS envelopes and SQS Lambda events.

Shaped like the SES developer guide's notification examples and the SQS event Lambda receives.
Every call returns a fresh dict, so tests may mutate what they get.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ses-inbound"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ses-bounce-queue"
BUCKET = "inbound-mail-bucket"
OBJECT_KEY_PREFIX = "inbound/"
MESSAGE_ID = "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"
TIMESTAMP = "2024-05-01T12:00:00.000Z"
SENDER = "sender@example.net"
RECIPIENT = "recipient@example.com"
_SENT_TIMESTAMP_MS = "1714564800000"
_SIGNATURE = (
    "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6"
    "bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q="
)


def load_event(name: str) -> dict[str, Any]:
    """A JSON fixture from ``tests/events/`` by file name without ``.json``."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def notification(
    *,
    message_id: str = MESSAGE_ID,
    timestamp: str = TIMESTAMP,
    receipt_timestamp: str | None = None,
    source: str = SENDER,
    recipients: Sequence[str] = (RECIPIENT,),
    destination: Sequence[str] | None = None,
    subject: str = "Quarterly numbers",
    headers: Sequence[tuple[str, str]] | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    headers_truncated: bool = False,
    scan: bool = True,
    spam: str | None = "PASS",
    virus: str | None = "PASS",
    spf: str | None = "PASS",
    dkim: str | None = "PASS",
    dmarc: str | None = "PASS",
    dmarc_policy: str | None = None,
    bucket: str = BUCKET,
    object_key: str | None = None,
    topic_arn: str = TOPIC_ARN,
) -> dict[str, Any]:
    """An SES "Received" notification as the S3 action publishes it.

    ``headers`` replaces the default header list (Return-Path, Received, From, To, Subject,
    Message-ID, Date, MIME-Version, Content-Type); ``extra_headers`` is appended to it.
    ``scan=False`` leaves out every verdict (a rule without scanning); a verdict set to None is left
    out alone. ``object_key`` defaults to ``OBJECT_KEY_PREFIX + message_id``.
    """
    destination = list(recipients if destination is None else destination)
    from_header = f"Sender Name <{source}>" if source else "Mail Delivery System <>"
    header_pairs = list(
        headers
        if headers is not None
        else [
            ("Return-Path", f"<{source}>"),
            (
                "Received",
                f"from mail.example.net (mail.example.net [192.0.2.25]) by "
                f"inbound-smtp.{REGION}.amazonaws.com with SMTP id {message_id} for "
                f"{destination[0] if destination else RECIPIENT}; "
                "Wed, 01 May 2024 12:00:00 +0000 (UTC)",
            ),
            ("From", from_header),
            ("To", ", ".join(destination)),
            ("Subject", subject),
            ("Message-ID", f"<{message_id}@mail.example.net>"),
            ("Date", "Wed, 1 May 2024 12:00:00 +0000"),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'text/plain; charset="UTF-8"'),
        ]
    )
    header_pairs.extend(extra_headers)
    receipt: dict[str, Any] = {
        "timestamp": receipt_timestamp or timestamp,
        "processingTimeMillis": 574,
        "recipients": list(recipients),
    }
    if scan:
        for key, status in (
            ("spamVerdict", spam),
            ("virusVerdict", virus),
            ("spfVerdict", spf),
            ("dkimVerdict", dkim),
            ("dmarcVerdict", dmarc),
        ):
            if status is not None:
                receipt[key] = {"status": status}
        if dmarc_policy is not None:
            receipt["dmarcPolicy"] = dmarc_policy
    receipt["action"] = {
        "type": "S3",
        "topicArn": topic_arn,
        "bucketName": bucket,
        "objectKeyPrefix": OBJECT_KEY_PREFIX,
        "objectKey": object_key if object_key is not None else OBJECT_KEY_PREFIX + message_id,
    }
    return {
        "notificationType": "Received",
        "receipt": receipt,
        "mail": {
            "timestamp": timestamp,
            "source": source,
            "messageId": message_id,
            "destination": destination,
            "headersTruncated": headers_truncated,
            "headers": [{"name": name, "value": value} for name, value in header_pairs],
            "commonHeaders": {
                "returnPath": source,
                "from": [from_header],
                "date": "Wed, 1 May 2024 12:00:00 +0000",
                "to": destination,
                "messageId": f"<{message_id}@mail.example.net>",
                "subject": subject,
            },
        },
    }


def sns_envelope(
    notification: Mapping[str, Any] | str, *, message_id: str | None = None
) -> dict[str, Any]:
    """The SNS envelope that SQS receives when raw message delivery is off."""
    message = notification if isinstance(notification, str) else json.dumps(notification)
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": message,
        "Timestamp": "2024-05-01T12:00:00.612Z",
        "SignatureVersion": "1",
        "Signature": _SIGNATURE,
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }


def sqs_record(
    body: str | Mapping[str, Any], *, message_id: str | None = None, receive_count: int = 1
) -> dict[str, Any]:
    """One record of the SQS event Lambda receives; a dict ``body`` is sent as its JSON."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + hashlib.sha256(text.encode()).hexdigest(),
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": _SENT_TIMESTAMP_MS,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": _SENT_TIMESTAMP_MS,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def sqs_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The SQS event Lambda passes to the handler."""
    return {"Records": [dict(record) for record in records]}
