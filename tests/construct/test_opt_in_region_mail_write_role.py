"""In an opt-in region SES writes mail to S3 only through the S3 action's IAM role (IamRoleArn):
the processor creates `MailWriteRole`, scoped to its rule, prefix, topic and key, and names it on
the rule; elsewhere no role, and the resource policies let SES in for this rule only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cfnlint
import pytest
from aws_cdk import assertions
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint
from construct.synth_helpers import (
    ACCOUNT,
    CFN_LINT_IGNORED,
    Synthesized,
    resources_of_type,
    synthesize,
)

from cdk_ses_bounce import BounceProcessor, defaults
from cdk_ses_bounce.receiving import rule_name

OPT_IN_REGION = "ap-southeast-3"  # Jakarta: an opt-in region where SES receives mail
STACK = "OptIn"


def build(outdir: Path, region: str, **props: Any) -> Synthesized:
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, STACK, env=cdk.Environment(account=ACCOUNT, region=region))
    BounceProcessor(
        stack,
        "Bounces",
        recipients=["retired.example.com"],
        bounce_sender="mailer-daemon@example.com",
        alarm_action=None,
        **props,
    )
    cdk.Annotations.of(stack).acknowledge_warning("cdk-ses-bounce:noAlarmAction", "test")
    return synthesize(app, outdir)


@pytest.fixture(scope="module")
def opt_in(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return build(tmp_path_factory.mktemp("opt_in"), OPT_IN_REGION)


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = resources_of_type(template, resource_type).items()
    return found


def the_role(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, r)
        for k, r in resources_of_type(template, "AWS::IAM::Role").items()
        if k.startswith("BouncesMailWriteRole")
    ]
    return found


def service_statements(document: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if s.get("Principal") == {"Service": service}]


def test_the_rule_writes_through_the_role(opt_in: Synthesized) -> None:
    template = opt_in.templates[STACK]
    role_id, _ = the_role(template)
    _, rule = only(template, "AWS::SES::ReceiptRule")
    (action,) = rule["Properties"]["Rule"]["Actions"]
    assert action["S3Action"]["IamRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    # SES test-writes when the rule is saved: the role and its policy exist first.
    policies = resources_of_type(template, "AWS::IAM::Policy")
    (role_policy_id,) = [
        k for k, p in policies.items() if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    assert {role_id, role_policy_id} <= set(rule["DependsOn"])


def test_only_ses_for_this_rule_may_assume_the_role(opt_in: Synthesized) -> None:
    template = opt_in.templates[STACK]
    _, role = the_role(template)
    rule_set_id, _ = only(template, "AWS::SES::ReceiptRuleSet")
    _, rule = only(template, "AWS::SES::ReceiptRule")
    name = rule["Properties"]["Rule"]["Name"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": ACCOUNT,
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                f":ses:{OPT_IN_REGION}:{ACCOUNT}:receipt-rule-set/",
                                {"Ref": rule_set_id},
                                f":receipt-rule/{name}",
                            ],
                        ]
                    },
                }
            },
            "Effect": "Allow",
            "Principal": {"Service": "ses.amazonaws.com"},
        }
    ]


def test_the_role_may_write_under_the_prefix_publish_and_use_the_topic_key_only(
    opt_in: Synthesized,
) -> None:
    template = opt_in.templates[STACK]
    role_id, _ = the_role(template)
    (policy,) = [
        p
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    (bucket_id,) = [
        k for k in resources_of_type(template, "AWS::S3::Bucket") if k.startswith("BouncesMail")
    ]
    topic_id, _ = only(template, "AWS::SNS::Topic")
    key_id, key = only(template, "AWS::KMS::Key")
    granted = {
        json.dumps(sorted(s["Action"]) if isinstance(s["Action"], list) else [s["Action"]]): s[
            "Resource"
        ]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    assert granted == {
        '["s3:PutObject"]': {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/inbound/*"]]},
        '["sns:Publish"]': {"Ref": topic_id},
        '["kms:Decrypt", "kms:GenerateDataKey*"]': {"Fn::GetAtt": [key_id, "Arn"]},
    }
    # "The role (and only the role) is used": no resource policy lets the SES principal in.
    assert not service_statements(key["Properties"]["KeyPolicy"], "ses.amazonaws.com")
    for policy_type in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
        for resource_policy in resources_of_type(template, policy_type).values():
            document = resource_policy["Properties"]["PolicyDocument"]
            assert not service_statements(document, "ses.amazonaws.com")


def test_the_template_is_valid_for_the_region_and_clean_for_cdk_nag(opt_in: Synthesized) -> None:
    template = opt_in.templates[STACK]
    matches = lint(
        json.dumps(template),
        config=ManualArgs(regions=[OPT_IN_REGION], ignore_checks=CFN_LINT_IGNORED),
    )
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
    assert opt_in.nag_violations == []


def test_cfn_lint_knows_iam_role_arn_on_the_s3_action() -> None:
    # The escape hatch writes a property the L2 action lacks: it must be one CloudFormation's
    # schema has, or cfn-lint above would not be checking anything about it.
    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    providers = json.loads((schemas / "providers" / f"{OPT_IN_REGION}.json").read_text())
    schema = json.loads(
        (schemas / "resources" / f"{providers['AWS::SES::ReceiptRule']}.json").read_text()
    )
    assert "IamRoleArn" in schema["definitions"]["S3Action"]["properties"]
    assert schema["definitions"]["S3Action"]["additionalProperties"] is False


def test_no_role_where_ses_writes_itself(new_stack: Callable[..., cdk.Stack]) -> None:
    stack = new_stack()
    processor = BounceProcessor(
        stack, "Bounces", recipients=["old.example.com"], bounce_sender="b@example.com"
    )
    assert processor.mail_write_role is None
    template = assertions.Template.from_stack(stack).to_json()
    (rule,) = resources_of_type(template, "AWS::SES::ReceiptRule").values()
    assert "IamRoleArn" not in rule["Properties"]["Rule"]["Actions"][0]["S3Action"]
    roles = resources_of_type(template, "AWS::IAM::Role")
    assert roles and not [k for k in roles if k.startswith("BouncesMailWriteRole")]


def test_the_role_on_request_in_any_region(new_stack: Callable[..., cdk.Stack]) -> None:
    stack = new_stack()
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        mail_write_role=True,
    )
    assert processor.mail_write_role is not None
    template = assertions.Template.from_stack(stack).to_json()
    (rule,) = resources_of_type(template, "AWS::SES::ReceiptRule").values()
    role_arn = stack.resolve(processor.mail_write_role.role_arn)
    assert rule["Properties"]["Rule"]["Actions"][0]["S3Action"]["IamRoleArn"] == role_arn
    assert rule_name(processor).startswith("Test-Bounces-")


def test_refusing_the_role_in_an_opt_in_region_fails_at_synth(
    new_stack: Callable[..., cdk.Stack],
) -> None:
    stack = new_stack(env=cdk.Environment(account=ACCOUNT, region=OPT_IN_REGION))
    with pytest.raises(ValueError) as raised:
        BounceProcessor(
            stack,
            "Bounces",
            recipients=["old.example.com"],
            bounce_sender="b@example.com",
            mail_write_role=False,
        )
    assert f"mail_write_role=False in {OPT_IN_REGION!r}, an opt-in region" in str(raised.value)
    assert "IamRoleArn" in str(raised.value)


def test_every_opt_in_region_that_receives_by_default_gets_the_role() -> None:
    from cdk_ses_bounce.receiving import needs_mail_write_role

    assert OPT_IN_REGION in defaults.RECEIVING_REGIONS
    for region in defaults.RECEIVING_REGIONS:
        assert needs_mail_write_role(region, None) == (region in defaults.OPT_IN_REGIONS)
    assert needs_mail_write_role(cdk.Aws.REGION, None) is False
    assert needs_mail_write_role("eu-west-1", True) is True


def test_an_imported_bucket_needs_no_policy_change_with_the_role(
    new_stack: Callable[..., cdk.Stack],
) -> None:
    stack = new_stack(env=cdk.Environment(account=ACCOUNT, region=OPT_IN_REGION))
    bucket = s3.Bucket.from_bucket_name(stack, "Existing", "existing-mail")
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        bucket=bucket,
    )
    warnings = [
        str(entry.data)
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:warning" and "importedBucket" in str(entry.data)
    ]
    assert warnings == []  # the role's own policy lets SES write (same account)
    assert processor.mail_write_role is not None
    template = assertions.Template.from_stack(stack).to_json()
    statements = [
        s
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:PutObject"
    ]
    assert [stack.resolve(s["Resource"]) for s in statements] == [
        {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":s3:::existing-mail/inbound/*"],
            ]
        }
    ]
