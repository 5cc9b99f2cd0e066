"""Fine-grained assertions on the resources of the example stack (defaults) and of `Full`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk.assertions import Match
from construct.synth_helpers import ACCOUNT, REGION, Synthesized, resources_of_type
from constructs import Construct

from cdk_ses_bounce import BounceProcessor
from cdk_ses_bounce.receiving import RULE_NAME_PATTERN, rule_name

EXAMPLE = "SesBounceExample"


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    """The single resource of a type (logical id, resource)."""
    (found,) = resources_of_type(template, resource_type).items()
    return found


def identity_arn(name: str, account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, f":ses:{REGION}:{account}:identity/{name}"],
        ]
    }


def function_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements of the bounce function's role policy."""
    function = next(
        f
        for f in resources_of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "bounce_runtime.handler.handler"
    )
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        p
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def statement_with(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (found,) = [s for s in statements if action in s["Action"] or s["Action"] == action]
    return found


# ---- receipt rule, bucket policy ordering -------------------------------------------------


def test_rule_matches_recipients_with_scanning_and_s3_action(example: Synthesized) -> None:
    template = example.template(EXAMPLE)
    template.has_resource_properties(
        "AWS::SES::ReceiptRule",
        {
            "Rule": {
                "Enabled": True,
                "ScanEnabled": True,
                "TlsPolicy": "Optional",
                "Recipients": ["retired.example.com", "old-sales@example.com"],
                "Actions": [
                    {
                        "S3Action": {
                            "BucketName": {"Ref": Match.string_like_regexp("MailBucket")},
                            "ObjectKeyPrefix": "inbound/",
                            "TopicArn": {"Ref": Match.string_like_regexp("Topic")},
                        }
                    }
                ],
            },
            "RuleSetName": {"Ref": Match.string_like_regexp("RuleSet")},
        },
    )


def references(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref, Fn::GetAtt)."""
    if isinstance(value, list):
        return {found for item in value for found in references(item)}
    if not isinstance(value, dict):
        return set()
    found = {str(value["Ref"])} if "Ref" in value else set()
    if "Fn::GetAtt" in value:
        found.add(str(value["Fn::GetAtt"][0]))
    return found | {f for key, item in value.items() if key != "Ref" for f in references(item)}


def ses_statement(template: dict[str, Any], policy_id: str) -> dict[str, Any]:
    """The mail bucket policy's statement for SES."""
    statements = template["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = [s for s in statements if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    return dict(statement)


def rule_arn(rule_set: Any, rule_name: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":ses:{REGION}:{ACCOUNT}:receipt-rule-set/",
                rule_set,
                f":receipt-rule/{rule_name}",
            ],
        ]
    }


@pytest.mark.parametrize("app", ["example", "example_recommended"])
def test_rule_depends_on_bucket_policy_and_topic_policy(
    app: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(app).templates[EXAMPLE]
    rule_id, rule = only(template, "AWS::SES::ReceiptRule")
    bucket_policies = resources_of_type(template, "AWS::S3::BucketPolicy")
    (mail_policy_id,) = [k for k in bucket_policies if "MailBucket" in k]
    (topic_policy_id, _) = only(template, "AWS::SNS::TopicPolicy")
    assert sorted(rule["DependsOn"]) == sorted([mail_policy_id, topic_policy_id])
    # ... and the policy comes first: it neither depends on nor refers to the rule (no cycle,
    # and SES can test-write when the rule is created: aws-cdk #30143).
    mail_policy = bucket_policies[mail_policy_id]
    assert "DependsOn" not in mail_policy
    assert rule_id not in references(mail_policy)


def test_ses_may_store_mail_only_for_this_processors_rule(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    _, rule = only(template, "AWS::SES::ReceiptRule")
    rule_set_id, _ = only(template, "AWS::SES::ReceiptRuleSet")
    (mail_policy_id,) = [
        k for k in resources_of_type(template, "AWS::S3::BucketPolicy") if "MailBucket" in k
    ]
    (mail_id,) = [k for k in resources_of_type(template, "AWS::S3::Bucket") if "MailBucket" in k]
    assert rule["Properties"]["Rule"]["Name"] == "SesBounceExample-BounceProcessor-3B25251A"
    assert ses_statement(template, mail_policy_id) == {
        "Action": "s3:PutObject",
        "Condition": {
            "StringEquals": {
                "aws:SourceAccount": ACCOUNT,
                "aws:SourceArn": rule_arn(
                    {"Ref": rule_set_id}, "SesBounceExample-BounceProcessor-3B25251A"
                ),
            }
        },
        "Effect": "Allow",
        "Principal": {"Service": "ses.amazonaws.com"},
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [mail_id, "Arn"]}, "/inbound/*"]]},
        "Sid": "AllowSesToStoreMailForItsRule",
    }


def test_passed_rule_set_scopes_the_bucket_policy_to_the_rule_in_it(
    full_options: Synthesized,
) -> None:
    template = full_options.templates["Full"]
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    ((rule_id, rule),) = [(k, r) for k, r in rules.items() if k.startswith("Bounces")]
    (policy_id,) = [
        k for k in resources_of_type(template, "AWS::S3::BucketPolicy") if "MailBucket" in k
    ]
    name = rule["Properties"]["Rule"]["Name"]
    assert name.startswith("Full-Bounces-")
    assert ses_statement(template, policy_id)["Condition"]["StringEquals"]["aws:SourceArn"] == (
        rule_arn(rule["Properties"]["RuleSetName"], name)
    )
    assert policy_id in rule["DependsOn"]
    assert rule_id not in references(template["Resources"][policy_id])


def test_imported_rule_set_is_named_in_the_bucket_policy(
    new_stack: Callable[..., cdk.Stack],
) -> None:
    stack = new_stack()
    imported = ses.ReceiptRuleSet.from_receipt_rule_set_name(stack, "Imported", "production")
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        rule_set=imported,
    )
    document = stack.resolve(processor.bucket.policy.document.to_json())  # type: ignore[union-attr]
    (statement,) = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    name = rule_name(processor)
    assert name.startswith("Test-Bounces-")
    assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":ses:{REGION}:{ACCOUNT}:receipt-rule-set/production:receipt-rule/{name}",
            ],
        ]
    }


def test_a_bucket_of_another_stack_names_the_rule_without_the_rule_set() -> None:
    app = cdk.App()
    storage = cdk.Stack(app, "Storage")
    bucket = s3.Bucket(storage, "Mail")
    stack = cdk.Stack(app, "Processing")
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        bucket=bucket,
    )
    document = storage.resolve(bucket.policy.document.to_json())  # type: ignore[union-attr]
    (statement,) = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    name = rule_name(processor)
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert statement["Condition"]["StringLike"] == {
        "aws:SourceArn": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":ses:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    f":receipt-rule-set/*:receipt-rule/{name}",
                ],
            ]
        }
    }
    app.synth()  # no cyclic reference between the stacks


def test_rule_names_are_valid_and_unique_in_a_shared_rule_set(
    composition: Synthesized,
) -> None:
    rules = resources_of_type(composition.templates["Composed"], "AWS::SES::ReceiptRule")
    names = [r["Properties"]["Rule"]["Name"] for r in rules.values()]
    assert sorted(names) == sorted(set(names))
    assert all(RULE_NAME_PATTERN.fullmatch(name) for name in names)


@pytest.mark.parametrize(
    "construct_id",
    ["Bounces", "a" * 200, "Ünïcode bounces", "-dash_and.dots-", "x"],
)
def test_derived_rule_names_meet_the_ses_grammar(
    new_stack: Callable[..., cdk.Stack], construct_id: str
) -> None:
    stack = new_stack()
    scope = Construct(stack, construct_id)
    name = rule_name(scope)
    assert RULE_NAME_PATTERN.fullmatch(name), name
    assert len(name) <= 64


def test_full_options_rule_position_tls_and_prefix(full_options: Synthesized) -> None:
    template = full_options.templates["Full"]
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    (first_id,) = [k for k in rules if k.startswith("SharedRuleSetFirst")]
    (bounce_rule,) = [r for k, r in rules.items() if k != first_id]
    properties = bounce_rule["Properties"]
    assert properties["After"] == {"Ref": first_id}
    assert properties["Rule"]["TlsPolicy"] == "Require"
    assert properties["Rule"]["Recipients"] == [
        "retired.example.com",
        "Old-Sales@example.com",
        "other.example.org",
    ]
    assert properties["Rule"]["Actions"][0]["S3Action"]["ObjectKeyPrefix"] == "mail/raw/"
    assert properties["RuleSetName"]["Ref"].startswith("SharedRuleSet")
    assert len(resources_of_type(template, "AWS::SES::ReceiptRuleSet")) == 1


# ---- bucket ---------------------------------------------------------------------------------


def test_mail_bucket_defaults(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    (mail_id,) = [k for k in buckets if "MailBucket" in k]
    (logs_id,) = [k for k in buckets if "AccessLogsBucket" in k]
    mail = buckets[mail_id]
    assert mail["DeletionPolicy"] == "Retain"
    assert mail["Properties"] == {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "LifecycleConfiguration": {
            "Rules": [
                {
                    "ExpirationInDays": 7,
                    "Id": "ExpireRawMail",
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
                    "Prefix": "inbound/",
                    "Status": "Enabled",
                },
                {
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    "ExpiredObjectDeleteMarker": True,
                    "Id": "CleanUp",
                    "Status": "Enabled",
                },
            ]
        },
        "LoggingConfiguration": {
            "DestinationBucketName": {"Ref": logs_id},
            "LogFilePrefix": "mail-bucket/",
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "VersioningConfiguration": {"Status": "Enabled"},
    }
    logs_bucket = buckets[logs_id]
    assert logs_bucket["DeletionPolicy"] == "Retain"
    assert logs_bucket["Properties"]["LifecycleConfiguration"]["Rules"] == [
        {"ExpirationInDays": 90, "Id": "ExpireAccessLogs", "Status": "Enabled"}
    ]
    # Log delivery is allowed by a bucket policy (no legacy ACL, no ObjectWriter ownership).
    assert "AccessControl" not in logs_bucket["Properties"]
    logs_policy = next(
        p
        for p in resources_of_type(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logs_id}
    )
    delivery = [
        s
        for s in logs_policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    assert delivery[0]["Condition"]["ArnLike"] == {
        "aws:SourceArn": {"Fn::GetAtt": [mail_id, "Arn"]}
    }


def test_every_bucket_denies_plain_http(example: Synthesized) -> None:
    for policy in resources_of_type(example.templates[EXAMPLE], "AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_full_options_bucket_settings(full_options: Synthesized) -> None:
    template = full_options.templates["Full"]
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    (mail_id,) = [k for k in buckets if "MailBucket" in k]
    (logs_id,) = [k for k in buckets if k.startswith("ExistingLogs")]
    assert not [k for k in buckets if "AccessLogsBucket" in k]
    mail = buckets[mail_id]
    assert mail["DeletionPolicy"] == "Delete"
    assert mail["Properties"]["LifecycleConfiguration"]["Rules"][0] == {
        "ExpirationInDays": 3,
        "Id": "ExpireRawMail",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 3},
        "Prefix": "mail/raw/",
        "Status": "Enabled",
    }
    assert mail["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}


# ---- topic, key, queues -----------------------------------------------------------------------


def test_topic_uses_a_rotated_customer_key_that_ses_may_use_for_this_topic_only(
    example: Synthesized,
) -> None:
    template = example.templates[EXAMPLE]
    key_id, key = only(template, "AWS::KMS::Key")
    _, topic = only(template, "AWS::SNS::Topic")
    name = "SesBounceExample-BounceProcessor-3B25251A"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert topic["Properties"]["TopicName"] == name
    assert key["Properties"]["EnableKeyRotation"] is True
    ses_statements = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "ses.amazonaws.com"}
    ]
    # SNS calls KMS with the topic's ARN as encryption context; no aws:Source* key, which no
    # AWS page says SES presents to KMS on this path.
    assert ses_statements == [
        {
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Condition": {
                "StringEquals": {
                    "kms:EncryptionContext:aws:sns:topicArn": {
                        "Fn::Join": [
                            "",
                            ["arn:", {"Ref": "AWS::Partition"}, f":sns:{REGION}:{ACCOUNT}:{name}"],
                        ]
                    }
                }
            },
            "Effect": "Allow",
            "Principal": {"Service": "ses.amazonaws.com"},
            "Resource": "*",
            "Sid": "AllowSesToPublishToTheEncryptedTopic",
        }
    ]


def test_topic_policy_lets_ses_publish_for_this_rule_only_and_denies_plain_http(
    example: Synthesized,
) -> None:
    template = example.templates[EXAMPLE]
    topic_id, _ = only(template, "AWS::SNS::Topic")
    rule_set_id, _ = only(template, "AWS::SES::ReceiptRuleSet")
    _, policy = only(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sns:Publish",
        "Condition": {
            "StringEquals": {
                "aws:SourceAccount": ACCOUNT,
                "aws:SourceArn": rule_arn(
                    {"Ref": rule_set_id}, "SesBounceExample-BounceProcessor-3B25251A"
                ),
            }
        },
        "Effect": "Allow",
        "Principal": {"Service": "ses.amazonaws.com"},
        "Resource": {"Ref": topic_id},
        "Sid": "AllowSesToPublishForItsRule",
    } in statements
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    # The topic policy comes before the rule and does not refer to it.
    rule_id, _ = only(template, "AWS::SES::ReceiptRule")
    assert rule_id not in references(policy)


def test_queue_subscribed_with_raw_delivery(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, subscription = only(template, "AWS::SNS::Subscription")
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (queue_id,) = [k for k in queues if "DeadLetter" not in k]
    (dlq_id,) = [k for k in queues if "DeadLetter" in k]
    assert subscription["Properties"] == {
        "Endpoint": {"Fn::GetAtt": [queue_id, "Arn"]},
        "Protocol": "sqs",
        "RawMessageDelivery": True,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}},
        "TopicArn": {"Ref": topic_id},
    }


def test_sns_may_dead_letter_only_from_the_topic(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    topic_id, _ = only(template, "AWS::SNS::Topic")
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (dlq_id,) = [k for k in queues if "DeadLetter" in k]
    (policy,) = [
        p
        for p in resources_of_type(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": dlq_id}]
    ]
    allowed = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert allowed == [
        {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": topic_id}}},
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Resource": {"Fn::GetAtt": [dlq_id, "Arn"]},
        }
    ]


def test_queues_encrypted_tls_only_with_redrive(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (dlq_id,) = [k for k in queues if "DeadLetter" in k]
    (queue_id,) = [k for k in queues if k != dlq_id]
    assert queues[queue_id]["Properties"] == {
        "RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": 10,
        },
        "SqsManagedSseEnabled": True,
        "VisibilityTimeout": 720,  # 6 x the 120 s function timeout
    }
    assert queues[dlq_id]["Properties"] == {
        "MessageRetentionPeriod": 14 * 86400,
        "SqsManagedSseEnabled": True,
    }
    for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    assert len(resources_of_type(template, "AWS::SQS::QueuePolicy")) == 2


def test_full_options_visibility_timeout_includes_batching_window(
    full_options: Synthesized,
) -> None:
    queues = resources_of_type(full_options.templates["Full"], "AWS::SQS::Queue")
    (queue,) = [q for k, q in queues.items() if "DeadLetter" not in k]
    assert queue["Properties"]["VisibilityTimeout"] == 6 * 300 + 20
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 7


# ---- function, event source, layer ------------------------------------------------------------


def test_function_runtime_environment_and_layer(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    functions = resources_of_type(template, "AWS::Lambda::Function")
    (function,) = functions.values()
    layer_id, layer = only(template, "AWS::Lambda::LayerVersion")
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (dlq_id,) = [k for k in queues if "DeadLetter" in k]
    (mail_id,) = [k for k in resources_of_type(template, "AWS::S3::Bucket") if "MailBucket" in k]
    (budget_table_id,) = resources_of_type(template, "AWS::DynamoDB::Table")
    properties = function["Properties"]
    assert properties["Runtime"] == "python3.14"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "bounce_runtime.handler.handler"
    assert properties["Timeout"] == 120
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert "ReservedConcurrentExecutions" not in properties
    assert properties["Environment"]["Variables"] == {
        "BOUNCE_SENDER": "mailer-daemon@example.com",
        "RECIPIENT_IDENTITY_ARNS": "{}",
        "BOUNCE_POLICY_FILE": "/opt/cdk-ses-bounce/policy.json",
        "DEAD_LETTER_QUEUE_URL": {"Ref": dlq_id},
        "SEND_BUDGET_TABLE": {"Ref": budget_table_id},  # the processor's own budget
        "SEND_BUDGET_ID": "ses-send-bounce",
        "SEND_RATE_PER_SECOND": "1.0",  # the budget's rate, for all instances together
        "SEND_CLAIM_TTL_SECONDS": "120",  # the function timeout
        "METRICS_NAMESPACE": "CdkSesBounce",
        "OWNED_RECIPIENTS": '["retired.example.com","old-sales@example.com"]',
        "MAIL_BUCKET": {"Ref": mail_id},
        "OBJECT_KEY_PREFIX": "inbound/",
        "MAX_RECEIVE_COUNT": "10",  # the main queue's redrive count
    }
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_function_logs_to_its_own_log_group_with_retention(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    (function,) = resources_of_type(template, "AWS::Lambda::Function").values()
    log_group_id, log_group = only(template, "AWS::Logs::LogGroup")
    assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    assert log_group["Properties"]["RetentionInDays"] == 90


def test_full_options_environment(full_options: Synthesized) -> None:
    functions = resources_of_type(full_options.templates["Full"], "AWS::Lambda::Function")
    (function,) = [
        f
        for f in functions.values()
        if f["Properties"]["Handler"] == "bounce_runtime.handler.handler"
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert function["Properties"]["Timeout"] == 300
    assert variables["SEND_RATE_PER_SECOND"] == "4.0"  # the passed budget's, for all instances
    assert variables["SEND_CLAIM_TTL_SECONDS"] == "300"
    # The runtime's last receive is the queue's: it dead-letters with a reason before SQS would.
    queues = resources_of_type(full_options.templates["Full"], "AWS::SQS::Queue")
    (queue,) = [q for k, q in queues.items() if "DeadLetter" not in k]
    assert variables["MAX_RECEIVE_COUNT"] == str(
        queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    )
    assert variables["METRICS_NAMESPACE"] == "Mail/Bounces"
    assert variables["BOUNCE_SENDER"] == "bounces@mail.example.com"
    assert variables["BOUNCE_SENDER_ARN"] == (
        f"arn:aws:ses:{REGION}:222222222222:identity/mail.example.com"
    )
    assert json.loads(variables["RECIPIENT_IDENTITY_ARNS"]) == {
        "retired.example.com": f"arn:aws:ses:{REGION}:333333333333:identity/retired.example.com"
    }


def test_event_source_paced_by_maximum_concurrency(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    _, mapping = only(template, "AWS::Lambda::EventSourceMapping")
    function_id, _ = only(template, "AWS::Lambda::Function")
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (queue_id,) = [k for k in queues if "DeadLetter" not in k]
    assert mapping["Properties"] == {
        "BatchSize": 10,
        "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
        "FunctionName": {"Ref": function_id},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    }


def test_full_options_event_source(full_options: Synthesized) -> None:
    _, mapping = only(full_options.templates["Full"], "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["BatchSize"] == 50
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == 20
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# ---- IAM ---------------------------------------------------------------------------------------


def test_send_bounce_only_as_the_bounce_sender(example: Synthesized) -> None:
    statement = statement_with(function_policy(example.templates[EXAMPLE]), "ses:SendBounce")
    assert statement == {
        "Action": "ses:SendBounce",
        "Condition": {"StringEquals": {"ses:FromAddress": "mailer-daemon@example.com"}},
        "Effect": "Allow",
        "Resource": [identity_arn("mailer-daemon@example.com"), identity_arn("example.com")],
        "Sid": "SendBounceAsTheBounceSender",
    }


def test_send_bounce_with_sending_authorization_arns(full_options: Synthesized) -> None:
    statement = statement_with(function_policy(full_options.templates["Full"]), "ses:SendBounce")
    assert statement["Resource"] == [
        f"arn:aws:ses:{REGION}:222222222222:identity/mail.example.com",
        f"arn:aws:ses:{REGION}:333333333333:identity/retired.example.com",
    ]
    assert statement["Condition"] == {
        "StringEquals": {"ses:FromAddress": "bounces@mail.example.com"}
    }


def test_s3_access_only_under_the_prefix(example: Synthesized, full_options: Synthesized) -> None:
    for synthesized, stack, prefix in (
        (example, EXAMPLE, "inbound/"),
        (full_options, "Full", "mail/raw/"),
    ):
        statement = statement_with(function_policy(synthesized.templates[stack]), "s3:GetObject")
        assert statement["Action"] == [
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:PutObjectTagging",
        ]
        join = statement["Resource"]["Fn::Join"][1]
        assert join[1] == f"/{prefix}*"
        assert "MailBucket" in join[0]["Fn::GetAtt"][0]


def test_s3_writes_only_to_send_claims(example: Synthesized, full_options: Synthesized) -> None:
    for synthesized, stack, prefix in (
        (example, EXAMPLE, "inbound/"),
        (full_options, "Full", "mail/raw/"),
    ):
        template = synthesized.templates[stack]
        statement = statement_with(function_policy(template), "s3:PutObject")
        buckets = resources_of_type(template, "AWS::S3::Bucket")
        (bucket_id,) = [k for k in buckets if "MailBucket" in k]
        assert statement == {
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{prefix}*.bounce-claim"]]
            },
            "Sid": "ClaimAndReleaseBounceSends",
        }


def test_function_policy_has_no_star_resource_and_exact_actions(example: Synthesized) -> None:
    statements = function_policy(example.templates[EXAMPLE])
    actions = sorted(
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == sorted(
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "ses:SendBounce",
            "s3:ListBucket",
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:PutObjectTagging",
            "s3:PutObject",
            "s3:DeleteObject",
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:SendMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "dynamodb:UpdateItem",  # the send budget's item only (dynamodb:LeadingKeys)
            "dynamodb:GetItem",
        ]
    )
    assert all(s["Resource"] != "*" for s in statements)
    (send,) = [s for s in statements if "sqs:SendMessage" in s["Action"]]
    queues = resources_of_type(example.templates[EXAMPLE], "AWS::SQS::Queue")
    (dlq_id,) = [k for k in queues if "DeadLetter" in k]
    assert send["Resource"] == {"Fn::GetAtt": [dlq_id, "Arn"]}


def test_function_may_list_the_mail_bucket_so_a_missing_object_is_a_404(
    example: Synthesized,
) -> None:
    # Without s3:ListBucket, S3 answers 403 for a missing key and the runtime could not tell a
    # missing mail object (dead-lettered at once) from a transient error.
    template = example.templates[EXAMPLE]
    (listing,) = [s for s in function_policy(template) if s["Action"] == "s3:ListBucket"]
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    (bucket_id,) = [k for k in buckets if "MailBucket" in k]
    assert listing["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert "Condition" not in listing


def test_no_managed_policies_and_no_star_write_anywhere(
    example: Synthesized, full_options: Synthesized
) -> None:
    for template in (example.templates[EXAMPLE], full_options.templates["Full"]):
        for role in resources_of_type(template, "AWS::IAM::Role").values():
            assert "ManagedPolicyArns" not in role["Properties"]
        star = [
            s
            for p in resources_of_type(template, "AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s["Resource"] == "*"
        ]
        assert all(
            sorted(s["Action"])
            == ["ses:DescribeActiveReceiptRuleSet", "ses:SetActiveReceiptRuleSet"]
            for s in star
        )
    assert not [
        s
        for p in resources_of_type(example.templates[EXAMPLE], "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Resource"] == "*"
    ]


# ---- alarms ------------------------------------------------------------------------------------


def alarms_by_metric(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    }


def test_alarms(example: Synthesized) -> None:
    template = example.templates[EXAMPLE]
    function_id, _ = only(template, "AWS::Lambda::Function")
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (dlq_id,) = [k for k in queues if "DeadLetter" in k]
    (queue_id,) = [k for k in queues if k != dlq_id]
    alarms = alarms_by_metric(template)
    assert sorted(alarms) == [
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "PermanentFailures",
        "SendBounceThrottled",
        "SendBudgetUnavailable",
        "SendSlotUnavailable",
    ]
    # The send budget's alarms (unreachable, no slot in time) fire only when it persists (3 periods
    # of 3).
    for name in ("SendBudgetUnavailable", "SendSlotUnavailable"):
        budget_alarm = alarms.pop(name)
        assert (budget_alarm["EvaluationPeriods"], budget_alarm["DatapointsToAlarm"]) == (3, 3)
        assert (budget_alarm["Namespace"], budget_alarm["Statistic"]) == ("CdkSesBounce", "Sum")
        assert budget_alarm["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": function_id}}
        ]
    common = {
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
    }
    for properties in alarms.values():
        assert common.items() <= properties.items()
        assert "AlarmActions" not in properties
        assert "AlarmName" not in properties
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert (dlq["Namespace"], dlq["Threshold"], dlq["Statistic"], dlq["Period"]) == (
        "AWS/SQS", 1, "Maximum", 60,
    )  # fmt: skip
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
    ]
    age = alarms["ApproximateAgeOfOldestMessage"]
    assert (age["Threshold"], age["Statistic"]) == (3600, "Maximum")
    assert age["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]
    errors = alarms["Errors"]
    assert (errors["Namespace"], errors["Statistic"]) == ("AWS/Lambda", "Sum")
    for name in ("SendBounceThrottled", "PermanentFailures"):
        runtime_alarm = alarms[name]
        assert runtime_alarm["Namespace"] == "CdkSesBounce"
        assert runtime_alarm["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": function_id}}
        ]
        assert (runtime_alarm["Statistic"], runtime_alarm["Threshold"]) == ("Sum", 1)


def test_full_options_alarms_threshold_namespace_and_action(full_options: Synthesized) -> None:
    template = full_options.templates["Full"]
    (alarm_topic_id,) = [
        k for k in resources_of_type(template, "AWS::SNS::Topic") if k.startswith("AlarmTopic")
    ]
    alarms = alarms_by_metric(template)
    assert alarms["ApproximateAgeOfOldestMessage"]["Threshold"] == 6 * 3600
    assert alarms["SendBounceThrottled"]["Namespace"] == "Mail/Bounces"
    assert alarms["PermanentFailures"]["Namespace"] == "Mail/Bounces"
    for properties in alarms.values():
        assert properties["AlarmActions"] == [{"Ref": alarm_topic_id}]


# ---- DNS ---------------------------------------------------------------------------------------


def test_mx_records_for_domain_recipients_in_the_zone(full_options: Synthesized) -> None:
    records = resources_of_type(full_options.templates["Full"], "AWS::Route53::RecordSet")
    assert [r["Properties"]["Name"] for r in records.values()] == ["retired.example.com."]
    (record,) = records.values()
    assert record["Properties"]["Type"] == "MX"
    assert record["Properties"]["ResourceRecords"] == [f"10 inbound-smtp.{REGION}.amazonaws.com"]
    (zone_id,) = resources_of_type(full_options.templates["Full"], "AWS::Route53::HostedZone")
    assert record["Properties"]["HostedZoneId"] == {"Ref": zone_id}


def test_sender_identity_arns_use_the_lowercase_domain(new_stack: Callable[..., cdk.Stack]) -> None:
    # IAM compares resource ARNs case-sensitively; an SES domain identity is lowercase.
    stack = new_stack()
    BounceProcessor(
        stack, "Bounces", recipients=["old.example.com"], bounce_sender="Bounces@Example.COM"
    )
    statements = function_policy(assertions.Template.from_stack(stack).to_json())
    (send,) = [s for s in statements if s["Action"] == "ses:SendBounce"]
    names = [arn["Fn::Join"][1][-1].rpartition(":identity/")[2] for arn in send["Resource"]]
    assert names == ["Bounces@example.com", "example.com"]
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": "Bounces@Example.COM"}}
