"""SendBounceBudget: one table per account and region, imported elsewhere, and grants scoped to
the budget's item (UpdateItem/GetItem with dynamodb:LeadingKeys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from construct.synth_helpers import (
    ACCOUNT,
    ENV,
    REGION,
    Synthesized,
    cfn_lint_findings,
    resources_of_type,
    synthesize,
)

from bounce_runtime.contract import (
    DEFAULT_SEND_BUDGET_ID,
    ENV_SEND_BUDGET_ID,
    ENV_SEND_BUDGET_TABLE,
    ENV_SEND_RATE_PER_SECOND,
    SEND_BUDGET_KEY_ATTRIBUTE,
)
from cdk_ses_bounce import BounceProcessor
from cdk_ses_bounce.budget import SendBounceBudget, note_budget_use

IMPORTED_TABLE = "shared-send-budget"
IMPORTED_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{IMPORTED_TABLE}"


def role(scope: cdk.Stack, name: str) -> iam.Role:
    return iam.Role(scope, name, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))


@pytest.fixture(scope="module")
def budgets(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Stack `Shared`: a budget and two processors' roles granted on it. Stack `Elsewhere`: the
    same budget imported by name and by ARN, each granted to a role."""
    outdir: Path = tmp_path_factory.mktemp("budget")
    app = cdk.App(outdir=str(outdir))
    shared = cdk.Stack(app, "Shared", env=ENV)
    budget = SendBounceBudget(shared, "Budget")
    for name in ("FirstProcessorRole", "SecondProcessorRole"):
        budget.grant_take_slots(role(shared, name))

    elsewhere = cdk.Stack(app, "Elsewhere", env=ENV)
    by_name = SendBounceBudget.from_budget_attributes(
        elsewhere, "ByName", table_name=IMPORTED_TABLE, budget_id="eu-bounces"
    )
    by_name.grant_take_slots(role(elsewhere, "ByNameRole"))
    by_arn = SendBounceBudget.from_budget_attributes(
        elsewhere, "ByArn", table_arn=IMPORTED_ARN, budget_id="eu-bounces", rate_per_second=0.5
    )
    by_arn.grant_take_slots(role(elsewhere, "ByArnRole"))
    return synthesize(app, outdir)


def statements_of(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Role logical id -> the statements of the policies attached to it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        for attached in policy["Properties"]["Roles"]:
            found.setdefault(attached["Ref"], []).extend(
                policy["Properties"]["PolicyDocument"]["Statement"]
            )
    return found


def test_one_table_on_demand_encrypted_keyed_by_budget_id(budgets: Synthesized) -> None:
    tables = resources_of_type(budgets.templates["Shared"], "AWS::DynamoDB::Table")
    assert len(tables) == 1
    (table,) = tables.values()
    assert table["Properties"] == {
        "AttributeDefinitions": [
            {"AttributeName": SEND_BUDGET_KEY_ATTRIBUTE, "AttributeType": "S"}
        ],
        "KeySchema": [{"AttributeName": SEND_BUDGET_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"SSEEnabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False},
    }
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Delete"
    assert resources_of_type(budgets.templates["Elsewhere"], "AWS::DynamoDB::Table") == {}


def leading_key_condition(budget_id: str) -> dict[str, Any]:
    return {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [budget_id]}}


def test_each_grant_allows_only_updateitem_and_getitem_on_the_budget_item(
    budgets: Synthesized,
) -> None:
    template = budgets.templates["Shared"]
    (table_id,) = resources_of_type(template, "AWS::DynamoDB::Table")
    statements = statements_of(template)
    assert len(statements) == 2  # the two processors' roles, one statement each
    for role_statements in statements.values():
        assert role_statements == [
            {
                "Action": ["dynamodb:UpdateItem", "dynamodb:GetItem"],
                "Condition": leading_key_condition(DEFAULT_SEND_BUDGET_ID),
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
            }
        ]


def test_imported_budgets_grant_on_the_named_table_and_their_own_item(
    budgets: Synthesized,
) -> None:
    by_role = statements_of(budgets.templates["Elsewhere"])
    (by_name,) = next(group for role_id, group in by_role.items() if "ByName" in role_id)
    (by_arn,) = next(group for role_id, group in by_role.items() if "ByArn" in role_id)
    for statement in (by_name, by_arn):
        assert statement["Action"] == ["dynamodb:UpdateItem", "dynamodb:GetItem"]
        assert statement["Condition"] == leading_key_condition("eu-bounces")
    assert by_arn["Resource"] == IMPORTED_ARN
    assert by_name["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":dynamodb:{REGION}:{ACCOUNT}:table/{IMPORTED_TABLE}",
            ],
        ]
    }


def test_budget_stacks_pass_cdk_nag_and_cfn_lint(budgets: Synthesized) -> None:
    assert budgets.nag_violations == []
    for name, template in budgets.templates.items():
        assert cfn_lint_findings(template) == [], name


def test_environment_names_the_table_item_and_rate(new_stack: Any) -> None:
    stack = new_stack()
    budget = SendBounceBudget(stack, "Budget", rate_per_second=0.5, budget_id="acct-1:eu-west-1")
    environment = stack.resolve(budget.environment())
    assert environment == {
        ENV_SEND_BUDGET_TABLE: {"Ref": stack.get_logical_id(budget.table.node.default_child)},  # type: ignore[arg-type]
        ENV_SEND_BUDGET_ID: "acct-1:eu-west-1",
        ENV_SEND_RATE_PER_SECOND: "0.5",
    }
    imported = SendBounceBudget.from_budget_attributes(stack, "Imported", table_name=IMPORTED_TABLE)
    assert stack.resolve(imported.environment()) == {
        ENV_SEND_BUDGET_TABLE: IMPORTED_TABLE,
        ENV_SEND_BUDGET_ID: DEFAULT_SEND_BUDGET_ID,
        ENV_SEND_RATE_PER_SECOND: "1.0",
    }


def test_removal_policy_can_retain_the_table(new_stack: Any) -> None:
    stack = new_stack()
    SendBounceBudget(stack, "Budget", removal_policy=cdk.RemovalPolicy.RETAIN)
    (table,) = resources_of_type(
        cdk.assertions.Template.from_stack(stack).to_json(), "AWS::DynamoDB::Table"
    ).values()
    assert table["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("rate", [0, -1.0, 1000.5, float("nan"), float("inf")])
def test_rate_out_of_range_is_refused_naming_the_value(new_stack: Any, rate: float) -> None:
    with pytest.raises(ValueError) as caught:
        SendBounceBudget(new_stack(), "Budget", rate_per_second=rate)
    assert str(caught.value).startswith(f"rate_per_second is {rate!r}: a number of SendBounce")
    assert "<= 1000" in str(caught.value)


@pytest.mark.parametrize("budget_id", ["", "-leading-dash", "has space", "x" * 129, "é"])
def test_bad_budget_id_is_refused_naming_the_value(new_stack: Any, budget_id: str) -> None:
    with pytest.raises(ValueError) as caught:
        SendBounceBudget(new_stack(), "Budget", budget_id=budget_id)
    assert str(caught.value).startswith(f"budget_id is {budget_id!r}: 1 to 128 characters")


def test_unresolved_budget_id_is_not_checked_at_synth(new_stack: Any) -> None:
    stack = new_stack()
    token = cdk.Fn.ref("AWS::StackName")
    assert SendBounceBudget(stack, "Budget", budget_id=token).budget_id == token


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({}, "table_name is None and table_arn is None: exactly one of them is required"),
        (
            {"table_name": "a", "table_arn": IMPORTED_ARN},
            "table_name is 'a' and table_arn is",
        ),
        (
            {"table_arn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"},
            "its region 'us-east-1' is not the stack's 'eu-west-1'",
        ),
        (
            {"table_arn": f"arn:aws:dynamodb:{REGION}:222222222222:table/t"},
            "its account '222222222222' is not the stack's '111111111111'",
        ),
        ({"table_arn": "arn:aws:s3:::bucket"}, "a DynamoDB table ARN"),
        ({"table_name": "t", "rate_per_second": 0}, "rate_per_second is 0"),
        ({"table_name": "t", "budget_id": "a b"}, "budget_id is 'a b'"),
    ],
)
def test_bad_import_is_refused(new_stack: Any, attributes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        SendBounceBudget.from_budget_attributes(new_stack(), "Imported", **attributes)
    assert message in str(caught.value)


def warnings_of(stack: cdk.Stack) -> list[str]:
    """The stack's warnings, but for the one every processor without an alarm_action gets."""
    return [
        str(message.entry.data)
        for message in cdk.assertions.Annotations.from_stack(stack).find_warning(
            "*", cdk.assertions.Match.any_value()
        )
        if "cdk-ses-bounce:noAlarmAction" not in str(message.entry.data)
    ]


def test_processors_sharing_one_budget_get_no_warning(new_stack: Any) -> None:
    stack = new_stack()
    imported_twice = [
        SendBounceBudget.from_budget_attributes(stack, f"Import{n}", table_name=IMPORTED_TABLE)
        for n in range(2)
    ]
    note_budget_use(role(stack, "A"), imported_twice[0])
    note_budget_use(role(stack, "B"), imported_twice[1])
    other_stack = new_stack()
    shared = SendBounceBudget(other_stack, "Budget")
    note_budget_use(role(other_stack, "C"), shared)
    note_budget_use(role(other_stack, "D"), shared)
    assert warnings_of(stack) == []
    assert warnings_of(other_stack) == []


def test_two_budgets_in_one_account_and_region_warn_at_synth(new_stack: Any) -> None:
    stack = new_stack()
    first = SendBounceBudget(stack, "First")
    second = SendBounceBudget(stack, "Second")
    note_budget_use(role(stack, "A"), first)
    note_budget_use(role(stack, "B"), second)
    (warning,) = warnings_of(stack)
    assert "share one SendBounceBudget" in warning
    assert f"{ACCOUNT}/{REGION}" in warning


# BounceProcessor and its budget ------------------------------------------------------------------


def processor(stack: cdk.Stack, name: str, **options: Any) -> BounceProcessor:
    return BounceProcessor(
        stack, name, recipients=[f"{name.lower()}.example.com"], bounce_sender="b@example.com",
        **options,
    )  # fmt: skip


def test_a_processor_without_a_budget_creates_its_own_at_one_per_second(new_stack: Any) -> None:
    stack = new_stack()
    own = processor(stack, "Alone")
    assert isinstance(own.budget, SendBounceBudget)
    assert own.budget.node.path == "Test/Alone/SendBudget"
    assert own.budget.rate_per_second == 1.0
    assert warnings_of(stack) == []


def test_rate_per_second_with_a_budget_is_refused(new_stack: Any) -> None:
    stack = new_stack()
    budget = SendBounceBudget(stack, "Budget", rate_per_second=0.5)
    with pytest.raises(ValueError, match=r"rate_per_second is 2 and a budget is passed") as caught:
        processor(stack, "Both", budget=budget, rate_per_second=2)
    assert "set rate_per_second on the SendBounceBudget" in str(caught.value)


def test_rate_per_second_alone_is_deprecated_and_sets_the_own_budgets_rate(
    new_stack: Any,
) -> None:
    stack = new_stack()
    old_style = processor(stack, "OldStyle", rate_per_second=0.5)
    assert old_style.budget.rate_per_second == 0.5
    (warning,) = warnings_of(stack)
    assert "cdk-ses-bounce:ratePerSecondDeprecated" in warning
    assert "set rate_per_second on SendBounceBudget and pass budget=" in warning


def test_two_processors_with_budgets_of_their_own_warn(new_stack: Any) -> None:
    stack = new_stack()
    processor(stack, "First")
    processor(stack, "Second")
    (warning,) = warnings_of(stack)
    assert "share one SendBounceBudget" in warning


def test_the_budget_alarm_fires_only_when_unavailability_persists(new_stack: Any) -> None:
    stack = new_stack()
    alarm = processor(stack, "Alarmed").alarms.send_budget_unavailable
    template = cdk.assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "SendBudgetUnavailable",
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 3,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Period": 300,
        },
    )
    assert alarm.node.id == "SendBudgetUnavailableAlarm"


# Sizing: every container sharing the budget counts ------------------------------------------------


def sizing_warnings(stack: cdk.Stack) -> dict[str, str]:
    """The batchOutlastsTimeout warnings after synth, by construct path."""
    return {
        message.id: str(message.entry.data)
        for message in cdk.assertions.Annotations.from_stack(stack).find_warning(
            "*", cdk.assertions.Match.string_like_regexp("batchOutlastsTimeout")
        )
    }


def test_a_batch_that_fit_alone_warns_once_later_processors_share_the_budget(
    new_stack: Any,
) -> None:
    """0.3.0 counted only the processor's own max_concurrency: 2 processors x 10 containers on
    one budget stayed silent while each invocation sent 4 of its 10 records."""
    stack = new_stack()
    budget = SendBounceBudget(stack, "Budget")
    # Alone (2 containers) a batch of 4 fits: 4 x 2 x 1.02 s + 39 s <= 120 s.
    processor(stack, "First", budget=budget, batch_size=4)
    # Then 18 more containers join: 4 x 20 x 1.02 s + 39 s = 120.6 s > 120 s.
    processor(stack, "Second", budget=budget, batch_size=1, max_concurrency=18)

    assert budget.expected_containers == 20
    assert sizing_warnings(stack) == {
        f"/{stack.stack_name}/First": (
            "A batch of 4 bounces needs at least 81.6 s: 20 containers share the send budget "
            f"(max_concurrency of {stack.stack_name}/First (2), {stack.stack_name}/Second (18)), "
            "so each gets one SendBounce slot every 20.4 s (20 x (1/1 + 0.02) s); with the "
            "runtime's 39 s margin that is more than function_timeout 120 s. The rest of each "
            "full batch returns to the queue unsent and uses up receives (max_receive_count "
            "10); lower batch_size to 3 or raise function_timeout "
            "[ack: cdk-ses-bounce:batchOutlastsTimeout]"
        )
    }


def test_the_budgets_expected_containers_count_other_apps_too(new_stack: Any) -> None:
    stack = new_stack()
    created = SendBounceBudget(stack, "Budget", expected_containers=20)
    processor(stack, "Own", budget=created)  # batch 10, timeout 120 s: 10 x 20.4 s > 81 s
    other = new_stack()
    imported = SendBounceBudget.from_budget_attributes(
        other, "Shared", table_name=IMPORTED_TABLE, expected_containers=60
    )
    processor(other, "Elsewhere", budget=imported, batch_size=1)  # 61.2 s + 39 s fits

    (own,) = sizing_warnings(stack).values()
    assert "20 containers share the send budget (the budget's expected_containers)" in own
    assert "lower batch_size to 3" in own
    assert created.expected_containers == imported.expected_containers - 40 == 20
    assert sizing_warnings(other) == {}
    tight = new_stack()
    processor(
        tight,
        "Tight",
        budget=SendBounceBudget(tight, "Budget", expected_containers=100),
        batch_size=1,
        function_timeout=cdk.Duration.seconds(60),
    )
    (advice,) = sizing_warnings(tight).values()
    assert "raise function_timeout to at least 141 s" in advice


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "20"])
def test_expected_containers_must_be_a_whole_number_of_at_least_one(
    new_stack: Any, value: Any
) -> None:
    stack = new_stack()
    with pytest.raises(ValueError, match=r"expected_containers is .*: a whole number >= 1"):
        SendBounceBudget(stack, "Budget", expected_containers=value)
    with pytest.raises(ValueError, match=r"expected_containers is .*: a whole number >= 1"):
        SendBounceBudget.from_budget_attributes(
            stack, "Imported", table_name=IMPORTED_TABLE, expected_containers=value
        )
