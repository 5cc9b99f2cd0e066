"""Pacing at the SendBounce limit: a backlog drained by concurrent workers running the real handler.

moto's server (S3 + SQS) and the local SES run on 127.0.0.1. The backlog (stored mail in S3, one
notification per message on the queue) is drained by `--workers` processes, each a stand-in for one
concurrent Lambda instance: receive up to 10 messages, call ``bounce_runtime.handler.handler`` with
them as an SQS event, delete all but the reported failures. Each worker gets the budget the
construct gives an instance, ``SEND_RATE_PER_SECOND = rate / workers``.

The local SES enforces the limit as a token bucket of `--workers` tokens refilled at `--rate`
(independent instances each pacing at rate/workers can line up, never more than `workers` calls at
once); "violations" recounts the arrival times of every call with that same rule.

    python bench/pacing.py [--messages 120] [--workers 2] [--rate 10]

Targets: achieved rate / limit >= 0.95; zero violations, zero lost, zero duplicate bounces.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import target, use_repo_paths

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

use_repo_paths()

BUCKET = "bench-mail"
PREFIX = "incoming/"
SENDER = "mailer-daemon@example.com"
BOUNCED_DOMAIN = "retired.example.com"
FUNCTION_TIMEOUT_S = 60.0
VISIBILITY_TIMEOUT_S = 120
RAW_MAIL = (
    "From: Sender Name <sender@example.net>\r\nTo: {}\r\nSubject: hello\r\n"
    "Message-ID: <bench@mail.example.net>\r\n\r\nBody text.\r\n"
)
POLICY = {
    "version": 1,
    "rules": [
        {
            "name": "retired",
            "match": {"recipients": [BOUNCED_DOMAIN]},
            "action": {"type": "bounce", "bounce_type": "DoesNotExist"},
        }
    ],
    "default": {"type": "accept"},
}


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the handler uses."""

    function_name: str
    deadline: float
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def lambda_records(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> list[dict[str, Any]]:
    """SQS ReceiveMessage results as the records of a Lambda SQS event."""
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "eu-west-1",
        }
        for m in messages
    ]


def worker(environ: dict[str, str], queue_url: str, queue_arn: str, name: str, log: str) -> None:
    """One concurrent instance: receive -> handler -> delete until the queue is drained.

    The handler's log lines and metrics go to `log`.
    """
    os.environ.update(environ)
    sys.stdout = open(log, "w", encoding="utf-8")  # noqa: SIM115 (closed when the process ends)
    import boto3

    from bounce_runtime.handler import handler

    sqs = boto3.client("sqs")
    idle_since: float | None = None
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=VISIBILITY_TIMEOUT_S,
            AttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 2.0 and queue_is_empty(sqs, queue_url):
                return
            time.sleep(0.05)
            continue
        idle_since = None
        records = lambda_records(messages, queue_arn)
        context = LambdaContext(name, time.monotonic() + FUNCTION_TIMEOUT_S)
        response = handler({"Records": records}, context)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        done: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records)
            if r["messageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)


def queue_is_empty(sqs: Any, queue_url: str) -> bool:
    """No message visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=120, help="backlog size")
    parser.add_argument("--workers", type=int, default=2, help="concurrent instances")
    parser.add_argument("--rate", type=float, default=10.0, help="SendBounce limit, calls/s")
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    from support.events import notification
    from support.local_ses import LocalSes, count_rate_violations

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    try:
        with (
            LocalSes(
                rate_per_second=args.rate, burst=args.workers, verified={"example.com"}
            ) as ses,
            tempfile.TemporaryDirectory() as scratch,
        ):
            environ = {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "eu-west-1",
                "AWS_ENDPOINT_URL_SES": ses.endpoint_url,
                "AWS_ENDPOINT_URL_S3": moto_url,
                "AWS_ENDPOINT_URL_SQS": moto_url,
                "BOUNCE_SENDER": SENDER,
                "RECIPIENT_IDENTITY_ARNS": "{}",
                "SEND_RATE_PER_SECOND": str(args.rate / args.workers),
                "AWS_LAMBDA_FUNCTION_NAME": "bench-bounce",
            }
            os.environ.update(environ)
            policy_path = Path(scratch) / "policy.json"
            policy_path.write_text(json.dumps(POLICY), encoding="utf-8")
            environ["BOUNCE_POLICY_FILE"] = str(policy_path)

            s3 = boto3.client("s3")
            sqs = boto3.client("sqs")
            s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
            )
            dlq_url = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
            queue_url = sqs.create_queue(
                QueueName="bench-queue",
                Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)},
            )["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            environ["DEAD_LETTER_QUEUE_URL"] = dlq_url

            ses_ids: list[str] = []
            timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for index in range(args.messages):
                ses_id = f"bench{index:06d}{'x' * 20}"
                key = f"{PREFIX}{ses_id}"
                recipient = f"user{index}@{BOUNCED_DOMAIN}"
                s3.put_object(Bucket=BUCKET, Key=key, Body=RAW_MAIL.format(recipient).encode())
                body = notification(
                    message_id=ses_id,
                    timestamp=timestamp,
                    recipients=[recipient],
                    bucket=BUCKET,
                    object_key=key,
                )
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
                ses_ids.append(ses_id)

            context = multiprocessing.get_context("spawn")
            logs = [Path(scratch) / f"worker-{n}.log" for n in range(args.workers)]
            workers = [
                context.Process(
                    target=worker, args=(environ, queue_url, queue_arn, log.stem, str(log))
                )
                for log in logs
            ]
            for process in workers:
                process.start()
            for process in workers:
                process.join()
            failed_workers = [p.exitcode for p in workers if p.exitcode != 0]
            handler_lines = [
                json.loads(line)
                for log in logs
                for line in log.read_text(encoding="utf-8").splitlines()
                if line.startswith("{")
            ]

            dead_letters = drain_ids(sqs, dlq_url)
            calls = list(ses.calls)
            attempts = list(ses.attempts)
    finally:
        moto.stop()

    times = [c.time for c in calls]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    achieved = (len(times) - 1) / span if span > 0 else 0.0
    bounced = Counter(c.params["OriginalMessageId"] for c in calls)
    lost = [i for i in ses_ids if i not in bounced and i not in dead_letters]
    duplicates = sum(n - 1 for n in bounced.values())
    rated = [a.time for a in attempts if a.error_code in ("", "Throttling")]
    violations = count_rate_violations(rated, args.rate, args.workers)
    throttled = sum(1 for a in attempts if a.error_code == "Throttling")
    strict_gaps = count_rate_violations(times, args.rate, 1)
    ratio = achieved / args.rate

    print(
        f"pacing ({args.messages} messages, {args.workers} workers at"
        f" {args.rate / args.workers:g}/s each, limit {args.rate:g}/s, burst {args.workers})"
    )
    print(f"  SendBounce accepted: {len(calls)} in {span:.2f} s")
    print(f"  achieved rate: {achieved:.3f}/s; ratio to limit: {ratio:.3f}")
    print(f"  violations (token bucket {args.rate:g}/s, burst {args.workers}): {violations}")
    print(f"  Throttling answers: {throttled}")
    print(f"  accepted calls closer than 1/rate to the previous one (burst 1 rule): {strict_gaps}")
    print(
        f"  dead-lettered: {len(dead_letters)}; lost: {len(lost)}; duplicate bounces: {duplicates}"
    )
    errors = Counter(line["message"] for line in handler_lines if line.get("level") == "ERROR")
    if errors:
        print(f"  handler errors logged: {dict(errors)}")
    if failed_workers:
        print(f"  worker exit codes: {failed_workers}")
    target("achieved / limit", ratio, 0.95, "", at_least=True)
    target("violations", violations, 0, "")
    target("lost", len(lost), 0, "")
    target("duplicates", duplicates, 0, "")
    return 1 if failed_workers else 0


def drain_ids(sqs: Any, queue_url: str) -> set[str]:
    """The SES message ids of the messages on the dead-letter queue."""
    ids: set[str] = set()
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            attribute = message.get("MessageAttributes", {}).get("ses-message-id", {})
            ids.add(attribute.get("StringValue", message["MessageId"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


if __name__ == "__main__":
    sys.exit(main())
