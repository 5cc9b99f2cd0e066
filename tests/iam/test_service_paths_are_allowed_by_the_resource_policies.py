"""The requests AWS services make on the processor's behalf, evaluated against the resolved
resource policies (and, for Lambda, the function role): SES writes the mail to S3, publishes to the
topic and uses the topic's key; SNS delivers to the queue and, on failure, to the subscription's
dead-letter queue; S3 delivers server access logs; Lambda polls the queue and writes its logs.

Every target is read from the template's own wiring (the rule's S3 action, the subscription, the
bucket's logging configuration, the event source mapping), not assumed. Each path's twins must be
denied: over plain HTTP where the policy requires TLS, and from another account, rule, topic,
source bucket or key prefix.

What each service presents (SES user guide "Giving permissions to Amazon SES for email
receiving": `aws:SourceAccount` and `aws:SourceArn` = the receipt rule for S3; SNS developer guide:
`aws:SourceArn` = the topic for SQS, encryption context `aws:sns:topicArn` for KMS; S3 user guide
"Enabling Amazon S3 server access logging": `logging.s3.amazonaws.com` with `aws:SourceArn` = the
source bucket and `aws:SourceAccount`). That SES presents `aws:SourceAccount`/`aws:SourceArn` to SNS
and KMS is modelled as on the S3 path; ses-facts.md notes it is not documented for KMS.

The topic key is scoped by the topic only (the encryption context), not by account or rule: no AWS
page says SES presents `aws:SourceAccount`/`aws:SourceArn` to KMS, and a condition SES does not
satisfy would stop all mail (docs/design.md, "Resource policies"). Another account's or rule's
SES is stopped one step earlier, by the topic policy (`ses-publishes` twins below), and the key
serves no other topic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from iam.helpers import ACCOUNT, REGION, evaluate, logical_id

from support.iam_calls import Deployment
from support.iam_simulator import IamRequest, IamSimulator, assert_all_allowed, assert_all_denied

OTHER_ACCOUNT = "222222222222"
MESSAGE_ID = "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"


def _first(resources: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = [(i, r) for i, r in resources.items() if r["Type"] == resource_type]
    assert len(found) == 1, f"{len(found)} {resource_type}"
    return found[0]


def _id_of(value: Any) -> str:
    """The logical id a `Ref` or `Fn::GetAtt` points at."""
    return str(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])


@pytest.fixture(scope="module")
def paths(deployment: Deployment) -> dict[str, IamRequest]:
    """Each service path's request, as the service makes it."""
    resolver = deployment.resolver
    resources = resolver.template["Resources"]
    _, rule = _first(resources, "AWS::SES::ReceiptRule")
    (action,) = [a["S3Action"] for a in rule["Properties"]["Rule"]["Actions"] if "S3Action" in a]
    rule_set = resolver.resolve(rule["Properties"]["RuleSetName"])
    rule_arn = (
        f"arn:aws:ses:{REGION}:{ACCOUNT}:receipt-rule-set/{rule_set}"
        f":receipt-rule/{rule['Properties']['Rule']['Name']}"
    )
    bucket_id = _id_of(action["BucketName"])
    prefix = resolver.resolve(action["ObjectKeyPrefix"])
    topic_id = _id_of(action["TopicArn"])
    topic_arn = resolver.arn(topic_id)
    key_id = _id_of(resources[topic_id]["Properties"]["KmsMasterKeyId"])
    _, subscription = _first(resources, "AWS::SNS::Subscription")
    assert resolver.resolve(subscription["Properties"]["TopicArn"]) == topic_arn
    queue_id = _id_of(subscription["Properties"]["Endpoint"])
    subscription_dlq_id = _id_of(subscription["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    logging = resources[bucket_id]["Properties"]["LoggingConfiguration"]
    log_bucket_id = _id_of(logging["DestinationBucketName"])
    _, mapping = _first(resources, "AWS::Lambda::EventSourceMapping")
    assert _id_of(mapping["Properties"]["EventSourceArn"]) == queue_id
    function_id = _id_of(mapping["Properties"]["FunctionName"])
    function = resources[function_id]["Properties"]
    role_id = _id_of(function["Role"])
    log_group = resolver.resolve(function["LoggingConfig"]["LogGroup"])

    def service(
        label: str, principal: str, action: str, resource: str, owner: str, **context: str
    ) -> IamRequest:
        return IamRequest(
            label=label,
            principal=principal,
            action=action,
            resource=resource,
            account=ACCOUNT,
            context={"aws:SecureTransport": "true", **context},
            resource_policy=f"resource:{owner}",
        )

    from_ses = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": rule_arn}
    from_topic = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": topic_arn}
    encryption_context = {"kms:EncryptionContext:aws:sns:topicArn": topic_arn, **from_ses}
    found = {
        "ses-writes-mail": service(
            "SES stores the mail",
            "ses.amazonaws.com",
            "s3:PutObject",
            f"{resolver.arn(bucket_id)}/{prefix}{MESSAGE_ID}",
            bucket_id,
            **from_ses,
        ),
        "ses-writes-setup-notification": service(
            "SES test-writes when the rule is saved",
            "ses.amazonaws.com",
            "s3:PutObject",
            f"{resolver.arn(bucket_id)}/{prefix}AMAZON_SES_SETUP_NOTIFICATION",
            bucket_id,
            **from_ses,
        ),
        "ses-publishes": service(
            "SES publishes", "ses.amazonaws.com", "sns:Publish", topic_arn, topic_id, **from_ses
        ),
        "ses-generates-data-key": service(
            "SES encrypts for the topic",
            "ses.amazonaws.com",
            "kms:GenerateDataKey",
            resolver.arn(key_id),
            key_id,
            **encryption_context,
        ),
        "ses-decrypts": service(
            "SES decrypts for the topic",
            "ses.amazonaws.com",
            "kms:Decrypt",
            resolver.arn(key_id),
            key_id,
            **encryption_context,
        ),
        "sns-delivers": service(
            "SNS delivers to the queue",
            "sns.amazonaws.com",
            "sqs:SendMessage",
            resolver.arn(queue_id),
            queue_id,
            **from_topic,
        ),
        "sns-dead-letters": service(
            "SNS moves an undeliverable message to the subscription's dead-letter queue",
            "sns.amazonaws.com",
            "sqs:SendMessage",
            resolver.arn(subscription_dlq_id),
            subscription_dlq_id,
            **from_topic,
        ),
        "s3-delivers-access-logs": service(
            "S3 delivers the mail bucket's access logs",
            "logging.s3.amazonaws.com",
            "s3:PutObject",
            f"{resolver.arn(log_bucket_id)}/{logging['LogFilePrefix']}2026-12-06-01-00-00-ABC",
            log_bucket_id,
            **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": resolver.arn(bucket_id)},
        ),
    }
    role_arn = resolver.arn(role_id)
    policies = [f"role:{role_id}"]
    # Lambda's event source mapping polls the queue with the function's role (Lambda developer
    # guide, "Using Lambda with Amazon SQS": ReceiveMessage, DeleteMessage, GetQueueAttributes).
    for sqs_action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        found[f"lambda-polls-{sqs_action}"] = IamRequest(
            label=f"Lambda polls the queue: {sqs_action}",
            principal=role_arn,
            action=f"sqs:{sqs_action}",
            resource=resolver.arn(queue_id),
            account=ACCOUNT,
            context={"aws:SecureTransport": "true"},
            identity_policies=policies,
            resource_policy=f"resource:{queue_id}",
        )
    for logs_action in ("CreateLogStream", "PutLogEvents"):
        found[f"lambda-logs-{logs_action}"] = IamRequest(
            label=f"Lambda writes the function's logs: {logs_action}",
            principal=role_arn,
            action=f"logs:{logs_action}",
            resource=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}:log-stream:2026/12/06",
            account=ACCOUNT,
            identity_policies=policies,
        )
    return found


def test_every_service_path_is_allowed(
    paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    assert_all_allowed(evaluate(simulator, deployment, list(paths.values())))


@pytest.mark.parametrize(
    "path",
    [
        "ses-writes-mail",
        "ses-writes-setup-notification",
        "ses-publishes",
        "sns-delivers",
        "sns-dead-letters",
        "s3-delivers-access-logs",
        "lambda-polls-ReceiveMessage",
        "lambda-polls-DeleteMessage",
    ],
)
def test_a_path_over_plain_http_is_denied(
    path: str, paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    assert_all_denied(evaluate(simulator, deployment, [paths[path].insecure()]))


def _another_account(request: IamRequest) -> IamRequest:
    source_arn = str(request.context["aws:SourceArn"]).replace(ACCOUNT, OTHER_ACCOUNT)
    return request.with_context("aws:SourceAccount", OTHER_ACCOUNT).with_context(
        "aws:SourceArn", source_arn
    )


@pytest.mark.parametrize(
    "path",
    [
        "ses-writes-mail",
        "ses-publishes",
        "sns-delivers",
        "sns-dead-letters",
        "s3-delivers-access-logs",
    ],
)
def test_a_path_from_another_account_is_denied(
    path: str, paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    assert_all_denied(evaluate(simulator, deployment, [_another_account(paths[path])]))


@pytest.mark.parametrize(
    "path",
    [
        "ses-writes-mail",
        "ses-publishes",
    ],
)
def test_ses_for_another_receipt_rule_is_denied(
    path: str, paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    request = paths[path]
    other_rule = str(request.context["aws:SourceArn"]).rpartition(":receipt-rule/")[0]
    twin = request.with_context("aws:SourceArn", f"{other_rule}:receipt-rule/someone-elses-rule")
    assert_all_denied(evaluate(simulator, deployment, [twin]))


def _another_topic(request: IamRequest, key: str) -> IamRequest:
    return request.with_context(key, f"arn:aws:sns:{REGION}:{ACCOUNT}:another-topic")


@pytest.mark.parametrize("path", ["sns-delivers", "sns-dead-letters"])
def test_sns_for_another_topic_is_denied(
    path: str, paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    twin = _another_topic(paths[path], "aws:SourceArn")
    assert_all_denied(evaluate(simulator, deployment, [twin]))


@pytest.mark.parametrize("path", ["ses-generates-data-key", "ses-decrypts"])
def test_the_topic_key_for_another_topic_is_denied(
    path: str, paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    twin = _another_topic(paths[path], "kms:EncryptionContext:aws:sns:topicArn")
    assert_all_denied(evaluate(simulator, deployment, [twin]))


@pytest.mark.parametrize(
    ("path", "outside"),
    [("ses-writes-mail", "other/"), ("s3-delivers-access-logs", "other-bucket/")],
)
def test_a_service_write_outside_its_key_prefix_is_denied(
    path: str,
    outside: str,
    paths: dict[str, IamRequest],
    simulator: IamSimulator,
    deployment: Deployment,
) -> None:
    request = paths[path]
    bucket_arn, _, key = request.resource.partition("/")
    twin = dataclasses.replace(
        request,
        label=f"{request.label} (under {outside})",
        resource=f"{bucket_arn}/{outside}{key.rpartition('/')[2]}",
    )
    assert_all_denied(evaluate(simulator, deployment, [twin]))


def test_access_logs_of_another_bucket_are_denied(
    paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    twin = paths["s3-delivers-access-logs"].with_context(
        "aws:SourceArn", "arn:aws:s3:::someone-elses-bucket"
    )
    assert_all_denied(evaluate(simulator, deployment, [twin]))


def test_the_log_group_of_another_function_is_denied(
    paths: dict[str, IamRequest], simulator: IamSimulator, deployment: Deployment
) -> None:
    request = paths["lambda-logs-PutLogEvents"]
    group = request.resource.split(":log-group:")[1].split(":")[0]
    twin = dataclasses.replace(
        request,
        label=f"{request.label} (another log group)",
        resource=request.resource.replace(group, "/aws/lambda/another-function"),
    )
    assert_all_denied(evaluate(simulator, deployment, [twin]))


def test_the_paths_read_the_templates_wiring(deployment: Deployment) -> None:
    # The resolver fails loudly rather than leaving a token in a policy.
    for name, policy in deployment.policies().items():
        assert "Fn::" not in str(policy) and "'Ref'" not in str(policy), name
    assert logical_id(deployment, "AWS::SNS::Topic")
