"""The AWS side of a test that runs the real Lambda handler: moto's S3 and SQS in process, the
local SES over HTTP, the handler's environment, and Lambda's context. It imports moto, so the
CPython 3.14 (Pyodide) run skips the test files that use it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

import bounce_runtime.handler as handler_module
from support.events import BUCKET, OBJECT_KEY_PREFIX, notification, sqs_record
from support.local_ses import LocalSes

REGION = "us-east-1"
SENDER = "mailer-daemon@example.com"


class Context:
    """Lambda's context: time left until a deadline on the monotonic clock, and the ids."""

    def __init__(self, seconds: float = 300.0, request_id: str = "req-1") -> None:
        self.deadline = time.monotonic() + seconds
        self.aws_request_id = request_id
        self.function_name = "bounce-fn"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


class World:
    """The AWS side of one test: bucket, dead-letter queue, local SES."""

    def __init__(self, ses: LocalSes) -> None:
        self.ses = ses
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.dlq_url = self.sqs.create_queue(QueueName="bounce-dlq")["QueueUrl"]

    def store(self, message_id: str) -> dict[str, Any]:
        """Store the mail object (with a tag of its own) and return the SQS record for it."""
        self.s3.put_object(
            Bucket=BUCKET,
            Key=OBJECT_KEY_PREFIX + message_id,
            Body=b"From: sender@example.net\r\nTo: recipient@example.com\r\n\r\nHello\r\n",
            Tagging="retention=30d",
        )
        return self.record(message_id)

    @staticmethod
    def record(message_id: str) -> dict[str, Any]:
        """The SQS record for a message received a minute ago (the handler reads the real clock)."""
        received = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
        body = notification(message_id=message_id, timestamp=received.replace("+00:00", "Z"))
        return sqs_record(body, message_id="sqs-" + message_id)

    def tags(self, message_id: str) -> dict[str, str]:
        tag_set = self.s3.get_object_tagging(Bucket=BUCKET, Key=OBJECT_KEY_PREFIX + message_id)
        return {tag["Key"]: tag["Value"] for tag in tag_set["TagSet"]}

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        received = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return [
            (message["Body"],
             {name: value["StringValue"] for name, value in message["MessageAttributes"].items()})
            for message in received
        ]  # fmt: skip

    def bounced_ids(self) -> list[str]:
        return [call.params["OriginalMessageId"] for call in self.ses.calls]


@contextmanager
def handler_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A bucket, a dead-letter queue and the local SES, with the handler's environment pointing
    at them and a fresh container."""
    with LocalSes(rate_per_second=50.0, region=REGION) as ses, mock_aws():
        created = World(ses)
        for name, value in {
            "BOUNCE_SENDER": SENDER,
            "DEAD_LETTER_QUEUE_URL": created.dlq_url,
            "SEND_RATE_PER_SECOND": "50",
            "AWS_LAMBDA_FUNCTION_NAME": "bounce-fn",
            "AWS_ENDPOINT_URL_SES": ses.endpoint_url,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("BOUNCE_POLICY_FILE", raising=False)
        monkeypatch.setattr(handler_module, "_container", None)
        yield created
