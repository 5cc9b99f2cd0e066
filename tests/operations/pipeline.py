"""The operator tools' test world: a processor's queues and mail bucket on the moto server."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.cli import main
from bounce_runtime.contract import CLAIM_SUFFIX, DLQ_ATTR_REASON, DLQ_ATTR_SES_MESSAGE_ID
from bounce_runtime.operations.dead_letters import DeadLetterScan, Replayer
from support.events import OBJECT_KEY_PREFIX, notification

REGION = "us-east-1"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``python -m bounce_runtime`` with ``argv`` in this process: (status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def clients(endpoint_url: str) -> dict[str, Any]:
    """SQS, S3 and CloudFormation clients of the moto server (made once: they are slow to make)."""
    return {
        service: boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for service in ("sqs", "s3", "cloudformation")
    }


def iso_z(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Pipeline:
    """A processor's queues and mail bucket on the moto server, with helpers to fill them."""

    def __init__(self, sqs: Any, s3: Any) -> None:
        name = f"bounce-{uuid.uuid4().hex[:10]}"
        self.sqs = sqs
        self.s3 = s3
        self.bucket = name
        self.s3.create_bucket(Bucket=self.bucket)
        self.dlq_url: str = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        self.queue_url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self._writer = DeadLetterQueue(self.sqs, self.dlq_url)

    def body(self, ses_id: str, *, age: timedelta = timedelta(hours=1)) -> str:
        """The SQS body of the main queue: the SES notification (raw delivery)."""
        received = iso_z(datetime.now(UTC) - age)
        return json.dumps(notification(message_id=ses_id, timestamp=received, bucket=self.bucket))

    def dead_letter(
        self,
        ses_id: str,
        reason: str | None,
        *,
        age: timedelta = timedelta(hours=1),
        body: str | None = None,
    ) -> str:
        """Put a dead letter as the runtime writes it (``reason`` None: as SQS redrives it);
        ``ses_id`` "" writes none (the runtime knows none for an unreadable body)."""
        text = body if body is not None else self.body(ses_id, age=age)
        if reason is None:
            self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=text)
        else:
            self._writer.send(
                body=text,
                reason=reason,
                detail=f"test detail for {reason}",
                sqs_message_id=f"sqs-{ses_id}",
                ses_message_id=ses_id,
            )
        return text

    def bulk(self, count: int, reason: str) -> None:
        """``count`` dead letters with ``reason``, ten per SQS call (for tests of volume)."""
        for start in range(0, count, 10):
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": self.body(f"bulk-{index}"),
                    "MessageAttributes": {
                        DLQ_ATTR_REASON: {"DataType": "String", "StringValue": reason},
                        DLQ_ATTR_SES_MESSAGE_ID: {
                            "DataType": "String",
                            "StringValue": f"bulk-{index}",
                        },
                    },
                }
                for index in range(start, min(count, start + 10))
            ]
            self.sqs.send_message_batch(QueueUrl=self.dlq_url, Entries=entries)

    def store_mail(self, ses_id: str, *, claimed: bool = False, tags: str = "") -> str:
        key = OBJECT_KEY_PREFIX + ses_id
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=b"Subject: hi\r\n\r\nhi\r\n", Tagging=tags
        )
        if claimed:
            self.s3.put_object(Bucket=self.bucket, Key=key + CLAIM_SUFFIX, Body=b"{}")
        return key

    @property
    def keys(self) -> set[str]:
        """The keys in the mail bucket."""
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {entry["Key"] for entry in listed}

    def counts(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Receive every visible message of a queue (they stay hidden for a minute after)."""
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return received
            received.extend(batch)

    def bodies(self, url: str) -> list[str]:
        return sorted(message["Body"] for message in self.drain(url))

    def reasons(self, url: str) -> list[str]:
        return sorted(
            message.get("MessageAttributes", {}).get("reason", {}).get("StringValue", "-")
            for message in self.drain(url)
        )

    def where(self) -> list[str]:
        """The command-line options naming this pipeline's queues (and no long poll)."""
        return [
            "--queue-url",
            self.queue_url,
            "--dead-letter-queue-url",
            self.dlq_url,
            "--wait-seconds",
            "0",
        ]


class Failing:
    """A boto3 client whose ``method`` fails (after ``before`` runs, if given): a crash there."""

    def __init__(self, client: Any, method: str, *, fail: bool = True, before: Any = None) -> None:
        self._client = client
        self._method = method
        self._fail = fail
        self._before = before

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._method:
            return real

        def call(**kwargs: Any) -> Any:
            if self._before is not None:
                self._before()
            if self._fail:
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, name
                )
            return real(**kwargs)

        return call


def replayer(pipeline: Pipeline, scan: DeadLetterScan, sqs: Any, lines: list[str]) -> Replayer:
    """A replayer that acts (``--yes``), sending through ``sqs``, reporting into ``lines``."""
    return Replayer(
        scan,
        sqs,
        pipeline.queue_url,
        execute=True,
        outcome_checked=False,
        pacer=Pacer(100.0),
        now=lambda: datetime.now(UTC),
        s3=lambda: pipeline.s3,
        report=lines.append,
    )
