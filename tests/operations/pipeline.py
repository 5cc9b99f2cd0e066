"""The operator tools' test world: a processor's queues and mail bucket on the moto server."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.cli import main
from bounce_runtime.contract import (
    CLAIM_SUFFIX,
    DLQ_ATTR_REASON,
    DLQ_ATTR_SES_MESSAGE_ID,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_MAIL_BUCKET,
    ENV_OBJECT_KEY_PREFIX,
    ENV_SEND_CLAIM_TTL_SECONDS,
)
from bounce_runtime.operations.dead_letters import (
    DeadLetterScan,
    ProcessorQueues,
    ProcessorScope,
    Replayer,
    read_processor_scope,
)
from support.events import OBJECT_KEY_PREFIX, notification

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CLAIM_TTL_S = 900.0


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``python -m bounce_runtime`` with ``argv`` in this process: (status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def clients(endpoint_url: str) -> dict[str, Any]:
    """The moto server's clients (made once: they are slow to make)."""
    return {
        service: boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for service in ("sqs", "s3", "cloudformation", "lambda", "iam")
    }


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def backdate(bucket: str, key: str, age: timedelta) -> None:
    """Make the moto server's object ``key`` look written ``age`` ago (the server runs in this
    process: its S3 backend is this module's)."""
    from moto.s3.models import s3_backends

    stored = s3_backends[ACCOUNT]["aws"].buckets[bucket].keys[key]
    stored.last_modified = stored.last_modified - age


def iso_z(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Pipeline:
    """A processor's queues and mail bucket on the moto server, with helpers to fill them."""

    def __init__(self, aws: dict[str, Any]) -> None:
        name = f"bounce-{uuid.uuid4().hex[:10]}"
        self.aws = aws
        self.sqs = aws["sqs"]
        self.s3 = aws["s3"]
        self.bucket = name
        self.s3.create_bucket(Bucket=self.bucket)
        self.dlq_url = self.queue(f"{name}-dlq")
        self.queue_url = self.queue(name, dead_letter_queue_url=self.dlq_url)
        self.function_name = self.function(name, dead_letter_queue_url=self.dlq_url)
        self._writer = DeadLetterQueue(self.sqs, self.dlq_url)

    def queue(self, name: str, *, dead_letter_queue_url: str | None = None) -> str:
        """A queue (with a redrive policy to ``dead_letter_queue_url``, if given): its URL."""
        attributes = {}
        if dead_letter_queue_url is not None:
            arn = self.sqs.get_queue_attributes(
                QueueUrl=dead_letter_queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": 5}
            )
        return str(self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    def function(self, name: str, *, dead_letter_queue_url: str, bucket: str | None = None) -> str:
        """A function configured as a processor's (its environment names what it owns)."""
        role = self.aws["iam"].create_role(
            RoleName=f"{name}-role",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        self.aws["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": _function_zip()},
            Environment={
                "Variables": {
                    ENV_MAIL_BUCKET: bucket or self.bucket,
                    ENV_OBJECT_KEY_PREFIX: OBJECT_KEY_PREFIX,
                    ENV_DEAD_LETTER_QUEUE_URL: dead_letter_queue_url,
                    ENV_SEND_CLAIM_TTL_SECONDS: str(CLAIM_TTL_S),
                }
            },
        )
        return name

    def scope(self) -> ProcessorScope:
        return read_processor_scope(
            self.aws["lambda"],
            self.function_name,
            ProcessorQueues(self.queue_url, self.dlq_url),
        )

    def body(self, ses_id: str, *, age: timedelta = timedelta(hours=1), **fields: Any) -> str:
        """The SQS body of the main queue: the SES notification (raw delivery); ``fields`` go
        to ``support.events.notification`` (e.g. another ``bucket`` or ``object_key``)."""
        received = iso_z(datetime.now(UTC) - age)
        fields.setdefault("bucket", self.bucket)
        return json.dumps(notification(message_id=ses_id, timestamp=received, **fields))

    def dead_letter(
        self,
        ses_id: str,
        reason: str | None,
        *,
        age: timedelta = timedelta(hours=1),
        body: str | None = None,
        attribute_id: str | None = None,
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
                ses_message_id=attribute_id if attribute_id is not None else ses_id,
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

    def store_mail(
        self,
        ses_id: str,
        *,
        claimed: bool = False,
        tags: str = "",
        claim_age: timedelta = timedelta(seconds=CLAIM_TTL_S + 60),
    ) -> str:
        """Store the mail object (and a send claim ``claim_age`` old; by default a stale one)."""
        key = OBJECT_KEY_PREFIX + ses_id
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=b"Subject: hi\r\n\r\nhi\r\n", Tagging=tags
        )
        if claimed:
            self.claim(key, age=claim_age)
        return key

    def claim(self, key: str, *, age: timedelta, writer: str = "sqs-1") -> str:
        """Write the send claim of ``key`` as the runtime does, ``age`` old: its ETag."""
        body = json.dumps({"sqsMessageId": writer, "claimedAt": iso_z(datetime.now(UTC) - age)})
        etag = self.s3.put_object(Bucket=self.bucket, Key=key + CLAIM_SUFFIX, Body=body.encode())
        backdate(self.bucket, key + CLAIM_SUFFIX, age)
        return str(etag["ETag"])

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

    def dead_letter_queue(self) -> list[str]:
        """The options of ``list`` naming this pipeline's dead-letter queue (and no long poll)."""
        return ["--dead-letter-queue-url", self.dlq_url, "--wait-seconds", "0"]

    def where(self) -> list[str]:
        """The options of ``replay`` naming this pipeline's queues and function (no long poll)."""
        return [
            "--queue-url",
            self.queue_url,
            "--dead-letter-queue-url",
            self.dlq_url,
            "--function-name",
            self.function_name,
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


def replayer(
    pipeline: Pipeline,
    scan: DeadLetterScan,
    sqs: Any,
    lines: list[str],
    *,
    outcome_checked: bool = False,
    s3: Any = None,
) -> Replayer:
    """A replayer that acts (``--yes``), sending through ``sqs``, reporting into ``lines``."""
    return Replayer(
        scan,
        sqs,
        pipeline.queue_url,
        execute=True,
        outcome_checked=outcome_checked,
        pacer=Pacer(100.0),
        now=lambda: datetime.now(UTC),
        s3=lambda: s3 or pipeline.s3,
        report=lines.append,
        scope=pipeline.scope(),
    )


class LambdaContext:
    """Lambda's context: five minutes left."""

    def __init__(self) -> None:
        import time

        self._monotonic = time.monotonic
        self.deadline = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self._monotonic()) * 1000)


def deliver(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, copies: list[dict[str, Any]]
) -> list[Any]:
    """Run each SQS message in ``copies`` through the real handler, one invocation each, with
    the local SES as SendBounce's endpoint: the SendBounce calls SES received."""
    import bounce_runtime.handler as handler_module
    from bounce_runtime.contract import (
        ENV_BOUNCE_SENDER,
        ENV_DEAD_LETTER_QUEUE_URL,
        ENV_FUNCTION_NAME,
        ENV_SEND_RATE_PER_SECOND,
    )
    from support.events import sqs_event, sqs_record
    from support.local_ses import LocalSes

    with LocalSes(rate_per_second=50.0, region=REGION) as ses:
        for name, value in {
            ENV_BOUNCE_SENDER: "mailer-daemon@example.com",
            ENV_DEAD_LETTER_QUEUE_URL: pipeline.dlq_url,
            ENV_SEND_RATE_PER_SECOND: "50",
            ENV_FUNCTION_NAME: "bounce-fn",
            "AWS_ENDPOINT_URL_SES": ses.endpoint_url,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler_module, "_container", None)
        for copy in copies:
            handler_module.handler(
                sqs_event([sqs_record(copy["Body"], message_id=copy["MessageId"])]),
                LambdaContext(),
            )
        return list(ses.calls)
