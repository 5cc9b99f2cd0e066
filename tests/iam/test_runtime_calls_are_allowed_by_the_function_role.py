"""The runtime's AWS calls, recorded end to end, evaluated against the function role's policies.

The real handler runs with the environment the template gives the function, against moto (S3,
SQS, DynamoDB in this process) and the local SES over HTTP, through a batch that reaches every
path: a bounce sent (after a throttle), one refused by SES, one whose outcome is unknown, a
redelivery of a bounced message, a truncated header block, a missing object, a malformed body.
Every call it makes is evaluated with its real parameters (and each bucket's and queue's own
policy); then the twins each call must not have: over plain HTTP, from another address, for
another identity, account, key prefix or budget key.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from iam.helpers import ACCOUNT, REGION, evaluate, logical_id, main_queue_id, requests_of_role
from moto import mock_aws

import bounce_runtime.handler as handler_module
from bounce_runtime.contract import BOUNCE_TAG_KEY, CLAIM_SUFFIX
from support.aws_env import use_dummy_credentials
from support.events import OBJECT_KEY_PREFIX, notification, sqs_event, sqs_record
from support.iam_calls import Deployment, RecordedCall, record_calls
from support.iam_simulator import IamRequest, IamSimulator, assert_all_allowed, assert_all_denied
from support.local_ses import LocalSes

OWNED = "someone@retired.example.com"


class Context:
    """Lambda's context: time left until a deadline, and the ids."""

    def __init__(self, seconds: float = 300.0) -> None:
        self.deadline = time.monotonic() + seconds
        self.aws_request_id = "iam-req-1"
        self.function_name = "bounce-fn"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


@dataclasses.dataclass(frozen=True)
class RuntimeRun:
    calls: list[RecordedCall]
    response: dict[str, Any]
    bounced: list[str]
    dead_letter_count: int
    tags: dict[str, dict[str, str]]


def _environment(deployment: Deployment) -> dict[str, str]:
    """The function's environment variables as the template sets them, resolved."""
    function_id = logical_id(deployment, "AWS::Lambda::Function")
    variables = deployment.resolver.resource(function_id)["Properties"]["Environment"]["Variables"]
    return {name: str(v) for name, v in deployment.resolver.resolve(variables).items()}


# A policy that matches on size, so the runtime also reads each object's size (HeadObject).
SIZE_POLICY = {
    "version": 1,
    "rules": [
        {"name": "huge", "match": {"min_size_bytes": 10_000_000}, "action": {"type": "accept"}}
    ],
    "default": {"type": "bounce", "bounce_type": "DoesNotExist"},
}


@pytest.fixture(scope="module")
def runtime_run(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeRun]:
    environment = _environment(deployment)
    policy_file = tmp_path_factory.mktemp("iam-policy") / "policy.json"
    policy_file.write_text(json.dumps(SIZE_POLICY))
    bucket = environment["MAIL_BUCKET"]
    topic_arn = deployment.resolver.arn(logical_id(deployment, "AWS::SNS::Topic"))
    with pytest.MonkeyPatch.context() as patch:
        use_dummy_credentials(patch, REGION)
        patch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "BOUNCE_POLICY_FILE"):
            patch.delenv(name, raising=False)
        with LocalSes(rate_per_second=50.0, region=REGION) as ses, mock_aws():
            for name, value in environment.items():
                patch.setenv(name, value)
            # Not IAM: the layer's policy file is not here (a size rule stands in), and a fast
            # send rate keeps the test short.
            patch.setenv("BOUNCE_POLICY_FILE", str(policy_file))
            patch.setenv("SEND_RATE_PER_SECOND", "50")
            patch.setenv("AWS_ENDPOINT_URL_SES", ses.endpoint_url)
            patch.setattr(handler_module, "_container", None)
            s3 = boto3.client("s3", region_name=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            dead_letter_queue = environment["DEAD_LETTER_QUEUE_URL"].rsplit("/", 1)[1]
            assert (
                sqs.create_queue(QueueName=dead_letter_queue)["QueueUrl"]
                == (environment["DEAD_LETTER_QUEUE_URL"])
            )
            table = deployment.resolver.resource(logical_id(deployment, "AWS::DynamoDB::Table"))
            dynamodb.create_table(
                TableName=environment["SEND_BUDGET_TABLE"],
                AttributeDefinitions=table["Properties"]["AttributeDefinitions"],
                KeySchema=table["Properties"]["KeySchema"],
                BillingMode="PAY_PER_REQUEST",
            )
            received = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")

            def record(message_id: str, *, store: bool = True, **kwargs: Any) -> dict[str, Any]:
                if store:
                    s3.put_object(
                        Bucket=bucket,
                        Key=OBJECT_KEY_PREFIX + message_id,
                        Body=f"From: sender@example.net\r\nTo: {OWNED}\r\n\r\nHello\r\n".encode(),
                    )
                body = notification(
                    message_id=message_id,
                    timestamp=received.replace("+00:00", "Z"),
                    recipients=(OWNED,),
                    bucket=bucket,
                    topic_arn=topic_arn,
                    **kwargs,
                )
                return sqs_record(body, message_id="sqs-" + message_id)

            # Another delivery holds a fresh send claim on this one: the runtime reads the
            # object's tags and the claim's age, and leaves the record for a later delivery.
            s3.put_object(
                Bucket=bucket, Key=f"{OBJECT_KEY_PREFIX}mail-held{CLAIM_SUFFIX}", Body=b"{}"
            )
            records = [
                record("mail-sent"),
                record("mail-held"),
                record("mail-refused"),
                record("mail-unknown"),
                record("mail-truncated", headers_truncated=True),
                record("mail-missing", store=False),
                sqs_record("this is not a notification", message_id="sqs-malformed"),
            ]
            original_handle = ses.handle

            def answer(pairs: Any, now: float) -> str:
                listed = list(pairs)
                if ("OriginalMessageId", "mail-refused") in listed:
                    ses.inject_errors(("MessageRejected", 400))
                if ("OriginalMessageId", "mail-unknown") in listed:
                    ses.inject_errors(("InternalFailure", 500))
                return original_handle(listed, now)

            ses.handle = answer  # type: ignore[method-assign]
            ses.inject_errors(("Throttling", 400))  # mail-sent's first attempt
            with record_calls() as calls:
                response = handler_module.handler(sqs_event(records), Context())
                # SQS delivers the bounced message again: the runtime must find it done.
                again = handler_module.handler(sqs_event([records[0]]), Context())
            assert again == {"batchItemFailures": []}
            dead_letters = sqs.get_queue_attributes(
                QueueUrl=environment["DEAD_LETTER_QUEUE_URL"],
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]["ApproximateNumberOfMessages"]
            tags = {
                message_id: {
                    t["Key"]: t["Value"]
                    for t in s3.get_object_tagging(
                        Bucket=bucket, Key=OBJECT_KEY_PREFIX + message_id
                    )["TagSet"]
                }
                for message_id in ("mail-sent", "mail-truncated")
            }
            yield RuntimeRun(
                calls=list(calls),
                response=response,
                bounced=[call.params["OriginalMessageId"] for call in ses.calls],
                dead_letter_count=int(dead_letters),
                tags=tags,
            )


@pytest.fixture(scope="module")
def function_role(deployment: Deployment) -> str:
    return logical_id(deployment, "AWS::IAM::Role", "FunctionRole")


@pytest.fixture(scope="module")
def runtime_requests(
    runtime_run: RuntimeRun, deployment: Deployment, function_role: str
) -> list[IamRequest]:
    return requests_of_role(deployment, runtime_run.calls, function_role)


def test_the_scenario_reaches_every_path_of_the_runtime(runtime_run: RuntimeRun) -> None:
    assert runtime_run.response == {"batchItemFailures": [{"itemIdentifier": "sqs-mail-held"}]}
    assert runtime_run.bounced == ["mail-sent", "mail-truncated"]
    assert BOUNCE_TAG_KEY in runtime_run.tags["mail-sent"]
    # refused, unknown outcome, missing object, malformed body
    assert runtime_run.dead_letter_count == 4
    made = {call.describe() for call in runtime_run.calls}
    assert made >= {
        "s3.HeadObject",
        "s3.GetObject",
        "s3.GetObjectTagging",
        "s3.PutObject",
        "s3.PutObjectTagging",
        "s3.DeleteObject",
        "ses.SendBounce",
        "sqs.SendMessage",
        "dynamodb.UpdateItem",
    }, made


def test_every_call_of_the_runtime_is_allowed_by_the_function_role(
    simulator: IamSimulator, deployment: Deployment, runtime_requests: list[IamRequest]
) -> None:
    assert_all_allowed(evaluate(simulator, deployment, runtime_requests))


def _twins(requests: list[IamRequest], service: str, **changes: Any) -> list[IamRequest]:
    return [
        dataclasses.replace(r, label=f"{r.label} ({', '.join(changes)})", **changes)
        for r in requests
        if r.action.startswith(service + ":")
    ]


def _with_context(
    requests: list[IamRequest], service: str, key: str, value: Any
) -> list[IamRequest]:
    return [
        dataclasses.replace(
            r, label=f"{r.label} ({key}={value})", context={**r.context, key: value}
        )
        for r in requests
        if r.action.startswith(service + ":")
    ]


@pytest.mark.parametrize("service", ["s3", "sqs"])
def test_the_runtime_calls_over_plain_http_are_denied(
    service: str,
    simulator: IamSimulator,
    deployment: Deployment,
    runtime_requests: list[IamRequest],
) -> None:
    twins = _with_context(runtime_requests, service, "aws:SecureTransport", "false")
    assert twins
    assert_all_denied(evaluate(simulator, deployment, twins))


def test_sendbounce_from_another_address_is_denied(
    simulator: IamSimulator, deployment: Deployment, runtime_requests: list[IamRequest]
) -> None:
    twins = _with_context(runtime_requests, "ses", "ses:FromAddress", "postmaster@example.com")
    assert twins
    assert_all_denied(evaluate(simulator, deployment, twins))


@pytest.mark.parametrize(
    "identity",
    [
        f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/other.example.org",
        f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/postmaster@example.com",
        f"arn:aws:ses:{REGION}:222222222222:identity/example.com",
        f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com",
    ],
    ids=["another-domain", "another-address", "another-account", "another-region"],
)
def test_sendbounce_as_another_identity_is_denied(
    identity: str,
    simulator: IamSimulator,
    deployment: Deployment,
    runtime_requests: list[IamRequest],
) -> None:
    twins = _twins(runtime_requests, "ses", resource=identity)
    assert twins
    assert_all_denied(evaluate(simulator, deployment, twins))


def test_the_mail_objects_under_another_prefix_are_denied(
    simulator: IamSimulator, deployment: Deployment, runtime_requests: list[IamRequest]
) -> None:
    prefixed = "/" + OBJECT_KEY_PREFIX
    twins = [
        dataclasses.replace(
            r, label=f"{r.label} (prefix other/)", resource=r.resource.replace(prefixed, "/other/")
        )
        for r in runtime_requests
        if r.action.startswith("s3:") and prefixed in r.resource
    ]
    assert twins
    assert_all_denied(evaluate(simulator, deployment, twins))


def test_another_budget_key_is_denied(
    simulator: IamSimulator, deployment: Deployment, runtime_requests: list[IamRequest]
) -> None:
    twins = _with_context(runtime_requests, "dynamodb", "dynamodb:LeadingKeys", ["other-budget"])
    assert twins
    assert_all_denied(evaluate(simulator, deployment, twins))


def test_sending_to_the_main_queue_is_denied(
    simulator: IamSimulator, deployment: Deployment, runtime_requests: list[IamRequest]
) -> None:
    queue_id = main_queue_id(deployment)
    twins = [
        dataclasses.replace(
            r,
            label=f"{r.label} (to the main queue)",
            resource=deployment.resolver.arn(queue_id),
            resource_policy=f"resource:{queue_id}",
        )
        for r in runtime_requests
        if r.action == "sqs:SendMessage"
    ]
    assert twins
    assert_all_denied(evaluate(simulator, deployment, twins))
