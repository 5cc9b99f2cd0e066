"""cdk-nag (AwsSolutions and Serverless), cfn-lint and parliament on every synthesized template."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import parliament
import pytest
from construct.synth_helpers import (
    ACCOUNT,
    REGION,
    Synthesized,
    cfn_lint_findings,
    resources_of_type,
)

from cdk_ses_bounce import BounceProcessor

SYNTHESIZED_APPS = [
    f"{app}{flags}"
    for app in ("example", "full_options", "composition", "dashboards")
    for flags in ("", "_recommended")
]
ARN_OF_TYPE = {
    "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{{}}:*",
    "AWS::S3::Bucket": "arn:aws:s3:::{}",
    "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{}}",
    "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{}}",
}


@pytest.mark.parametrize("app", SYNTHESIZED_APPS)
def test_cdk_nag_aws_solutions_and_serverless_find_nothing(
    app: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(app)
    assert synthesized.nag_violations == []


@pytest.mark.parametrize("app", SYNTHESIZED_APPS)
def test_cfn_lint_finds_nothing(app: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(app)
    assert synthesized.templates
    for name, template in synthesized.templates.items():
        assert cfn_lint_findings(template) == [], name


def test_construct_carries_its_acknowledgements_with_reasons(
    new_stack: Callable[..., cdk.Stack],
) -> None:
    stack = new_stack()
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        activate_rule_set=True,
    )
    bucket_id = stack.get_logical_id(processor.bucket.node.default_child)  # type: ignore[arg-type]
    acknowledged: dict[str, dict[str, Any]] = {}
    for construct in processor.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged.setdefault(construct.node.path, {}).update(entry.data)
    assert sorted(acknowledged) == [
        "Test/Bounces/DeadLetterQueue",
        "Test/Bounces/Function",
        "Test/Bounces/FunctionRole",
        "Test/Bounces/RuleSetActivation/Function",
        "Test/Bounces/RuleSetActivation/Role",
        "Test/Bounces/SendBudget/Table",  # DDB3: no point-in-time recovery for one timestamp
    ]
    function_ids = list(acknowledged["Test/Bounces/FunctionRole"])
    bucket_arn = f"<{stack.resolve(bucket_id)}.Arn>"
    assert function_ids == [
        f"Annotation::AwsSolutions-IAM5[Resource::{bucket_arn}/inbound/*]",
        f"Annotation::AwsSolutions-IAM5[Resource::{bucket_arn}/inbound/*.bounce-claim]",
    ]
    assert list(acknowledged["Test/Bounces/RuleSetActivation/Role"]) == [
        "Annotation::AwsSolutions-IAM5[Resource::*]"
    ]
    assert list(acknowledged["Test/Bounces/DeadLetterQueue"]) == [
        "Annotation::Serverless-SQSRedrivePolicy"
    ]
    assert list(acknowledged["Test/Bounces/Function"]) == [
        "Annotation::Serverless-LambdaDLQ",
        "Annotation::Serverless-LambdaTracing",
        "Annotation::Serverless-LambdaEventSourceMappingDestination",
    ]
    assert list(acknowledged["Test/Bounces/RuleSetActivation/Function"]) == [
        "Annotation::Serverless-LambdaDLQ",
        "Annotation::Serverless-LambdaTracing",
        "Annotation::Serverless-LambdaAsyncFailureDestination",
    ]
    reasons = [r for data in acknowledged.values() for r in data.values()]
    assert all(len(str(reason)) > 40 for reason in reasons)


def concrete(value: Any, template: dict[str, Any]) -> Any:
    """A policy value with the template's intrinsics replaced by example ARNs."""
    if isinstance(value, list):
        return [concrete(item, template) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        delimiter, items = value["Fn::Join"]
        return delimiter.join(concrete(item, template) for item in items)
    if value.keys() == {"Ref"}:
        return {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT}[value["Ref"]]
    if value.keys() == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        resource_type = template["Resources"][logical_id]["Type"]
        return ARN_OF_TYPE[resource_type].format(logical_id.lower())
    return {key: concrete(item, template) for key, item in value.items()}


@pytest.mark.parametrize(
    ("app", "stack"),
    [
        ("example", "SesBounceExample"),
        ("example_recommended", "SesBounceExample"),
        ("full_options", "Full"),
        ("full_options_recommended", "Full"),
    ],
)
def test_parliament_finds_nothing_in_the_role_policies(
    app: str, stack: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(app).templates[stack]
    policies = resources_of_type(template, "AWS::IAM::Policy")
    assert policies
    for logical_id, policy in policies.items():
        document = concrete(policy["Properties"]["PolicyDocument"], template)
        findings = parliament.analyze_policy_string(json.dumps(document)).findings
        assert [(f.issue, f.detail) for f in findings] == [], logical_id
