"""The rule set activation custom resource's wiring: the inlined handler is the tested file, its
time bounds fit inside each other, its permissions. Its behaviour: tests/deploy/."""

from __future__ import annotations

import ast
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ses as ses
from construct.synth_helpers import ENV, Synthesized, resources_of_type

from cdk_ses_bounce import RuleSetActivation, rule_set_activation
from cdk_ses_bounce.activation import (
    FUNCTION_TIMEOUT,
    HANDLER_SOURCE,
    MAX_EVENT_AGE,
    RESOURCE_TYPE,
    SERVICE_TIMEOUT,
    WORST_CASE_SECONDS,
)


def activation_parts(template: dict[str, Any]) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """(custom resource id, its resource, function id, the function's resource)."""
    ((custom_id, custom),) = resources_of_type(template, RESOURCE_TYPE).items()
    function_id = custom["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    return custom_id, custom, function_id, template["Resources"][function_id]


def test_custom_resource_present_with_activation(full_options: Synthesized) -> None:
    template = full_options.templates["Full"]
    _, custom, function_id, function = activation_parts(template)
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    (rule_id,) = [k for k in rules if k.startswith("Bounces")]
    (rule_set_id,) = resources_of_type(template, "AWS::SES::ReceiptRuleSet")
    assert custom["Properties"] == {
        "ServiceToken": {"Fn::GetAtt": [function_id, "Arn"]},
        "RuleSetName": {"Ref": rule_set_id},
        "ServiceTimeout": str(int(SERVICE_TIMEOUT.to_seconds())),
    }
    assert rule_id in custom["DependsOn"]
    properties = function["Properties"]
    assert properties["Code"] == {"ZipFile": HANDLER_SOURCE.read_text(encoding="utf-8")}
    assert (properties["Runtime"], properties["Architectures"]) == ("python3.14", ["arm64"])
    assert properties["Handler"] == "index.handler"
    assert properties["Timeout"] == FUNCTION_TIMEOUT.to_seconds()
    (invoke_config,) = [
        c["Properties"]
        for c in resources_of_type(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert invoke_config["MaximumRetryAttempts"] == 0
    assert invoke_config["MaximumEventAgeInSeconds"] == MAX_EVENT_AGE.to_seconds()


def test_the_time_bounds_nest() -> None:
    """The handler's worst case (every SES call with every retry, then the answer) fits the
    Lambda timeout; the oldest invocation Lambda still starts ends before CloudFormation gives
    up; and that is minutes, not CloudFormation's default hour."""
    assert FUNCTION_TIMEOUT.to_seconds() >= WORST_CASE_SECONDS
    assert FUNCTION_TIMEOUT.to_seconds() / 4 > rule_set_activation.ANSWER_RESERVE_SECONDS
    assert (
        MAX_EVENT_AGE.to_seconds() + FUNCTION_TIMEOUT.to_seconds() <= SERVICE_TIMEOUT.to_seconds()
    )
    assert SERVICE_TIMEOUT.to_seconds() <= 600


def test_the_inline_handler_answers_by_itself_with_the_standard_library_and_boto3() -> None:
    """No `cfnresponse` (CloudFormation adds it only for that exact import statement, and not
    at all outside ZipFile); nothing Lambda's Python lacks."""
    tree = ast.parse(HANDLER_SOURCE.read_text(encoding="utf-8"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {
        "__future__",
        "json",
        "signal",
        "time",
        "urllib",
        "typing",
        "boto3",
        "botocore",
    }
    assert "cfnresponse" not in imported


def test_the_previous_rule_set_is_an_attribute() -> None:
    stack = cdk.Stack(cdk.App(), "Attr", env=ENV)
    activation = RuleSetActivation(
        stack, "Activation", rule_set=ses.ReceiptRuleSet(stack, "RuleSet")
    )
    custom_id = stack.get_logical_id(activation.resource.node.default_child)  # type: ignore[arg-type]
    assert stack.resolve(activation.previous_rule_set_name) == {
        "Fn::GetAtt": [custom_id, "PreviousRuleSetName"]
    }
    assert [c.node.id for c in activation.node.children] == [
        "LogGroup",
        "Role",
        "Function",
        "Resource",
    ]


def test_the_role_may_only_read_and_set_the_active_rule_set(full_options: Synthesized) -> None:
    template = full_options.templates["Full"]
    _, _, _, function = activation_parts(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": ["ses:SetActiveReceiptRuleSet", "ses:DescribeActiveReceiptRuleSet"],
        "Effect": "Allow",
        "Resource": "*",
    } in statements
    assert len(statements) == 2  # and writing to its own log group
    assert template["Resources"][role_id]["Properties"].get("ManagedPolicyArns") is None


def test_no_custom_resource_by_default(example: Synthesized, composition: Synthesized) -> None:
    for synthesized in (example, composition):
        for template in synthesized.templates.values():
            assert resources_of_type(template, RESOURCE_TYPE) == {}
            assert not [
                s
                for p in resources_of_type(template, "AWS::IAM::Policy").values()
                for s in p["Properties"]["PolicyDocument"]["Statement"]
                if "ses:SetActiveReceiptRuleSet" in s["Action"]
            ]
