"""The rule set activation custom resource: its logic against moto's SES, and its wiring."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from construct.synth_helpers import REGION, Synthesized, resources_of_type
from moto import mock_aws

from cdk_ses_bounce import rule_set_activation
from cdk_ses_bounce.activation import HANDLER_SOURCE, RESOURCE_TYPE


@pytest.fixture
def ses() -> Iterator[Any]:
    """A moto SES client with two rule sets, `ours` and `theirs`, neither active."""
    with mock_aws():
        client = boto3.client("ses", region_name=REGION)
        client.create_receipt_rule_set(RuleSetName="ours")
        client.create_receipt_rule_set(RuleSetName="theirs")
        yield client


def active(ses: Any) -> str | None:
    name: str | None = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    return name


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_activate_the_rule_set(ses: Any, request_type: str) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    rule_set_activation.apply(ses, request_type, "ours")
    assert active(ses) == "ours"


def test_delete_deactivates_the_rule_set_that_is_still_active(ses: Any) -> None:
    rule_set_activation.apply(ses, "Create", "ours")
    rule_set_activation.apply(ses, "Delete", "ours")
    assert active(ses) is None
    ses.delete_receipt_rule_set(RuleSetName="ours")  # an active rule set could not be deleted


def test_delete_never_clobbers_another_active_rule_set(ses: Any) -> None:
    rule_set_activation.apply(ses, "Create", "ours")
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    rule_set_activation.apply(ses, "Delete", "ours")
    assert active(ses) == "theirs"


def test_delete_with_nothing_active_changes_nothing(ses: Any) -> None:
    rule_set_activation.apply(ses, "Delete", "ours")
    assert active(ses) is None


class FakeCfnResponse(types.ModuleType):
    """Stands in for the `cfnresponse` module that Lambda provides to inline code."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    def __init__(self) -> None:
        super().__init__("cfnresponse")
        self.sent: list[tuple[str, str, str | None]] = []

    def send(
        self,
        event: dict[str, Any],
        context: Any,
        status: str,
        data: dict[str, Any],
        physical_id: str,
        reason: str | None = None,
    ) -> None:
        self.sent.append((status, physical_id, reason))


@pytest.fixture
def cfnresponse(monkeypatch: pytest.MonkeyPatch) -> FakeCfnResponse:
    fake = FakeCfnResponse()
    monkeypatch.setitem(sys.modules, "cfnresponse", fake)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return fake


def event(request_type: str, rule_set_name: str) -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": {"RuleSetName": rule_set_name}}


def test_handler_reports_success_with_the_rule_set_as_physical_id(
    ses: Any, cfnresponse: FakeCfnResponse
) -> None:
    rule_set_activation.handler(event("Create", "ours"), None)
    assert cfnresponse.sent == [("SUCCESS", "ours", None)]
    assert active(ses) == "ours"


def test_handler_reports_failure_with_the_reason(ses: Any, cfnresponse: FakeCfnResponse) -> None:
    rule_set_activation.handler(event("Create", "missing"), None)
    ((status, physical_id, reason),) = cfnresponse.sent
    assert (status, physical_id) == ("FAILED", "missing")
    assert reason is not None and "Rule set does not exist: missing" in reason
    assert active(ses) is None


def test_inline_source_fits_the_cloudformation_zipfile_limit() -> None:
    assert len(HANDLER_SOURCE.read_text(encoding="utf-8")) < 4096


def test_custom_resource_present_with_activation(full_options: Synthesized) -> None:
    template = full_options.templates["Full"]
    (custom,) = resources_of_type(template, RESOURCE_TYPE).values()
    rules = resources_of_type(template, "AWS::SES::ReceiptRule")
    (rule_id,) = [k for k in rules if k.startswith("Bounces")]
    (rule_set_id,) = resources_of_type(template, "AWS::SES::ReceiptRuleSet")
    functions = resources_of_type(template, "AWS::Lambda::Function")
    (function_id,) = [
        k for k, f in functions.items() if f["Properties"]["Handler"] == "index.handler"
    ]
    assert custom["Properties"] == {
        "ServiceToken": {"Fn::GetAtt": [function_id, "Arn"]},
        "RuleSetName": {"Ref": rule_set_id},
    }
    assert rule_id in custom["DependsOn"]
    function = functions[function_id]["Properties"]
    assert function["Code"] == {"ZipFile": HANDLER_SOURCE.read_text(encoding="utf-8")}
    assert (function["Runtime"], function["Architectures"]) == ("python3.14", ["arm64"])
    role_id = function["Role"]["Fn::GetAtt"][0]
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
