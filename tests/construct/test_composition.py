"""Two processors in one stack, sharing one rule set and one send budget, one of them on an
imported bucket."""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from construct.synth_helpers import Synthesized, resources_of_type

from bounce_runtime.contract import DEFAULT_SEND_BUDGET_ID, ENV_SEND_BUDGET_TABLE, HANDLER
from cdk_ses_bounce import BounceProcessor

STACK = "Composed"


def test_two_processors_share_one_rule_set(composition: Synthesized) -> None:
    template = composition.templates[STACK]
    (rule_set_id,) = resources_of_type(template, "AWS::SES::ReceiptRuleSet")
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    assert sorted(r["Properties"]["Rule"]["Recipients"][0] for r in rules.values()) == [
        "one.example.com",
        "two.example.com",
    ]
    assert all(r["Properties"]["RuleSetName"] == {"Ref": rule_set_id} for r in rules.values())
    for resource_type in ("AWS::Lambda::Function", "AWS::SQS::Queue", "AWS::SNS::Topic"):
        assert len(resources_of_type(template, resource_type)) == {"AWS::SQS::Queue": 4}.get(
            resource_type, 2
        )


def test_no_hard_coded_physical_names(composition: Synthesized) -> None:
    name_properties = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::IAM::Role": "RoleName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::CloudWatch::Alarm": "AlarmName",
        "AWS::SES::ReceiptRuleSet": "RuleSetName",
    }
    for resource in composition.templates[STACK]["Resources"].values():
        name_property = name_properties.get(resource["Type"])
        assert name_property not in resource.get("Properties", {})
    # The two exceptions: a receipt rule and the topic are named from their construct path, so
    # the bucket and topic policies can name the rule, and the topic key's policy the topic,
    # before either exists (see test_resources); the names are unique per construct path.
    template = composition.templates[STACK]
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    assert sorted(r["Properties"]["Rule"]["Name"].rsplit("-", 1)[0] for r in rules.values()) == [
        "Composed-First",
        "Composed-Second",
    ]
    topics = resources_of_type(template, "AWS::SNS::Topic")
    topic_names = sorted(t["Properties"]["TopicName"] for t in topics.values())
    assert [n.rsplit("-", 1)[0] for n in topic_names] == ["Composed-First", "Composed-Second"]
    assert len(set(topic_names)) == 2


def test_imported_bucket_gets_no_bucket_policy_and_is_used_by_name(
    composition: Synthesized,
) -> None:
    template = composition.templates[STACK]
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    (second,) = [r for k, r in rules.items() if k.startswith("Second")]
    action = second["Properties"]["Rule"]["Actions"][0]["S3Action"]
    assert action["BucketName"] == "existing-mail-bucket"
    assert "DependsOn" not in second or all("Bucket" not in d for d in second["DependsOn"])
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    assert sorted(k.split("MailBucket")[0] for k in buckets if "MailBucket" in k) == ["First"]
    assert not [k for k in buckets if k.startswith("Second")]
    second_statements = [
        s
        for k, p in resources_of_type(template, "AWS::IAM::Policy").items()
        if k.startswith("Second")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (s3_statement,) = [s for s in second_statements if "s3:GetObject" in s["Action"]]
    assert s3_statement["Resource"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":s3:::existing-mail-bucket/inbound/*"],
        ]
    }


def test_imported_bucket_warns_that_ses_needs_permission(composition: Synthesized) -> None:
    messages = [
        entry["data"]
        for path, entries in composition_metadata(composition).items()
        if path.startswith("/Composed/Second/Rule")
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]
    rules = resources_of_type(composition.templates[STACK], "AWS::SES::ReceiptRule")
    (name,) = [r["Properties"]["Rule"]["Name"] for k, r in rules.items() if k.startswith("Second")]
    assert messages == [
        "bucket is imported, so its policy cannot be changed here: it must let ses.amazonaws.com "
        f"s3:PutObject under 'inbound/', with aws:SourceArn = this rule (receipt rule name "
        f"{name!r}) and aws:SourceAccount = this account, before the rule is deployed "
        "[ack: cdk-ses-bounce:importedBucket]"
    ]


def composition_metadata(composition: Synthesized) -> dict[str, list[dict[str, str]]]:
    metadata: dict[str, list[dict[str, str]]] = json.loads(
        (composition.outdir / f"{STACK}.metadata.json").read_text()
    )
    return metadata


def test_grant_read_mail_is_scoped_to_the_prefix(new_stack: Callable[..., cdk.Stack]) -> None:
    stack = new_stack()
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        bucket=s3.Bucket.from_bucket_name(stack, "Mail", "mail"),
        object_key_prefix="in/",
    )
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    grant = processor.grant_read_mail(reader)
    assert grant.success
    default_policy = reader.node.find_child("DefaultPolicy")
    assert isinstance(default_policy, iam.Policy)
    document = stack.resolve(default_policy.document.to_json())
    (statement,) = document["Statement"]
    assert statement["Action"] == ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    object_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::mail/in/*"]]}
    assert object_arn in statement["Resource"]


def test_attributes_expose_every_resource(new_stack: Callable[..., cdk.Stack]) -> None:
    stack = new_stack()
    processor = BounceProcessor(
        stack, "Bounces", recipients=["old.example.com"], bounce_sender="b@example.com"
    )
    children = {
        "RuleSet": processor.rule_set,
        "Rule": processor.rule,
        "MailBucket": processor.bucket,
        "AccessLogsBucket": processor.access_logs_bucket,
        "TopicKey": processor.topic_key,
        "Topic": processor.topic,
        "Queue": processor.queue,
        "DeadLetterQueue": processor.dead_letter_queue,
        "PolicyLayer": processor.policy_layer,
        "Function": processor.function,
        "DeadLetterQueueNotEmptyAlarm": processor.alarms.dead_letter_queue_not_empty,
        "OldestMessageAgeAlarm": processor.alarms.oldest_message_age,
        "FunctionErrorsAlarm": processor.alarms.function_errors,
        "SendBounceThrottledAlarm": processor.alarms.send_bounce_throttled,
        "PermanentFailuresAlarm": processor.alarms.permanent_failures,
        "SendBudgetUnavailableAlarm": processor.alarms.send_budget_unavailable,
        "SendSlotUnavailableAlarm": processor.alarms.send_slot_unavailable,
        "SendBudget": processor.budget,
    }
    for construct_id, attribute in children.items():
        assert processor.node.find_child(construct_id) is attribute, construct_id
    assert len(list(processor.alarms)) == 7
    assert processor.activation is None
    with pytest.raises(AttributeError):
        processor.bucket = processor.access_logs_bucket  # type: ignore[misc]


def test_two_processors_sharing_a_budget_have_one_table_and_item_scoped_grants(
    composition: Synthesized,
) -> None:
    template = composition.templates[STACK]
    (table_id,) = resources_of_type(template, "AWS::DynamoDB::Table")
    assert table_id.startswith("SharedBudget")
    budget_statements = {
        key.split("FunctionRole")[0]: statement
        for key, policy in resources_of_type(template, "AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("dynamodb:") for action in statement["Action"])
    }
    assert sorted(budget_statements) == ["First", "Second"]
    for statement in budget_statements.values():
        assert statement == {
            "Action": ["dynamodb:UpdateItem", "dynamodb:GetItem"],
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [DEFAULT_SEND_BUDGET_ID]}
            },
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        }
    functions = resources_of_type(template, "AWS::Lambda::Function")
    budget_tables = [
        f["Properties"]["Environment"]["Variables"][ENV_SEND_BUDGET_TABLE]
        for f in functions.values()
        if f["Properties"]["Handler"] == HANDLER
    ]
    assert budget_tables == [{"Ref": table_id}] * 2
    warnings = [
        entry["data"]
        for entries in composition_metadata(composition).values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning" and "budget" in str(entry["data"])
    ]
    assert warnings == []
