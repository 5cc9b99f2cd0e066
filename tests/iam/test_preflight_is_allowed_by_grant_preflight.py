"""`cdk-ses-bounce preflight`, run end to end in a passing account (tests/operations'
preflight world: moto in server mode where moto implements the call, botocore's Stubber where it
does not), with every AWS call it makes, with its real parameters, evaluated against a role
built ONLY from `grant_preflight` in the example stack. Found by `--stack/--processor` (the
CloudFormation calls, answered from the template this session synthesized) and by names (with
the IAM simulation denied, so the budget item is read; with another account's sending identity,
so its policies are read). Together the runs reach every action preflight declares."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from iam.helpers import (
    LIST_ROLE,
    PREFLIGHT_ROLE,
    PROCESSOR,
    STACK,
    TRIAGE_ROLE,
    dead_letter_queue_id,
    deployed_as,
    evaluate,
    logical_id,
    main_queue_id,
    requests_of_role,
)
from operations.preflight_world import (
    ACCOUNT,
    FUNCTION,
    REGION,
    RULE,
    RULE_SET,
    TABLE,
    World,
    healthy,
    moto_server,
    run,
    world,
)

from bounce_runtime import cli
from bounce_runtime.operations import preflight
from bounce_runtime.operations.permissions import actions_of
from support.iam_calls import Deployment, RecordedCall, record_calls
from support.iam_simulator import IamRequest, IamSimulator, assert_all_allowed, assert_all_denied

__all__ = ["moto_server", "world"]

FOREIGN = "arn:aws:ses:eu-west-1:210987654321:identity/example.com"
# The foreign identity's sending authorization policy, naming a role of the world's account.
AUTHORIZED = {
    "bounces": json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Bounces"},
                    "Action": ["ses:SendBounce"],
                    "Resource": FOREIGN,
                }
            ],
        }
    )
}
FUNCTION_ROLE = "FunctionRole"  # the preflight world's function role


@pytest.fixture(scope="module")
def evaluated_actions() -> set[str]:
    """The IAM actions of the calls evaluated in this module (asserted complete at the end)."""
    return set()


@pytest.fixture
def deployed(template: dict[str, Any]) -> Deployment:
    """The example stack deployed with the preflight world's names."""
    base = deployed_as(template, {})
    function_id = logical_id(base, "AWS::Lambda::Function", "Function")
    role_id = base.resolver.resource(function_id)["Properties"]["Role"]["Fn::GetAtt"][0]
    return deployed_as(
        template,
        {
            main_queue_id(base): "Bounces-Queue",
            dead_letter_queue_id(base): "Bounces-DLQ",
            function_id: FUNCTION,
            role_id: FUNCTION_ROLE,
            logical_id(base, "AWS::DynamoDB::Table"): TABLE,
        },
    )


def _by_path(template: dict[str, Any], suffix: str) -> str:
    (found,) = [
        logical
        for logical, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(f"{PROCESSOR}/{suffix}")
    ]
    return found


@pytest.fixture
def by_stack(
    world: Callable[..., World], template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """A passing account whose CloudFormation (Stubber) answers with the example stack's
    synthesized template and the world's physical names."""
    built = world(healthy())
    client = built.session.client("cloudformation")
    stub = Stubber(client)
    stub.add_response("get_template", {"TemplateBody": json.dumps(template)}, {"StackName": STACK})
    rule_set_id = template["Resources"][_by_path(template, "Rule/Resource")]["Properties"][
        "RuleSetName"
    ]["Ref"]
    for logical, physical in (
        (_by_path(template, "Function/Resource"), FUNCTION),
        (_by_path(template, "Rule/Resource"), RULE),
        (_by_path(template, "Queue/Resource"), built.queue_url),
        (_by_path(template, "DeadLetterQueue/Resource"), built.dead_letter_queue_url),
        (rule_set_id, RULE_SET),
    ):
        stub.add_response(
            "describe_stack_resource",
            {
                "StackResourceDetail": {
                    "LogicalResourceId": logical,
                    "PhysicalResourceId": physical,
                    "ResourceType": template["Resources"][logical]["Type"],
                    "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
            },
            {"StackName": STACK, "LogicalResourceId": logical},
        )
    stub.activate()
    built.stubs["cloudformation"] = stub
    monkeypatch.setattr(preflight, "new_clients", lambda profile, region: (built.clients, REGION))
    monkeypatch.setattr(preflight, "lookup_mx", built.resolve_mx)
    yield built
    stub.assert_no_pending_responses()


def _as_preflight(
    deployed: Deployment, calls: list[RecordedCall], evaluated_actions: set[str]
) -> list[IamRequest]:
    requests = requests_of_role(deployed, calls, _role(deployed, PREFLIGHT_ROLE))
    evaluated_actions.update(r.action for r in requests)
    return requests


def _role(deployed: Deployment, name: str) -> str:
    return logical_id(deployed, "AWS::IAM::Role", name)


def test_preflight_by_stack_is_allowed_by_grant_preflight(
    by_stack: World,
    deployed: Deployment,
    simulator: IamSimulator,
    evaluated_actions: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with record_calls() as calls:
        status = cli.main(["preflight", "--stack", STACK, "--processor", PROCESSOR])
    out, err = capsys.readouterr()

    assert (status, err) == (0, ""), out + err
    assert out.splitlines()[-1].endswith(" ok, 0 problem, 0 unknown"), out
    assert {c.describe() for c in calls} == {
        "cloudformation.GetTemplate",
        "cloudformation.DescribeStackResource",
        "lambda.GetFunctionConfiguration",
        "ses.DescribeActiveReceiptRuleSet",
        "ses.GetAccountSendingEnabled",
        "ses.GetIdentityVerificationAttributes",
        "ses.GetSendQuota",
        "sqs.GetQueueAttributes",
        "iam.SimulatePrincipalPolicy",
        "cloudwatch.GetMetricStatistics",
    }
    requests = _as_preflight(deployed, calls, evaluated_actions)
    stack_arn = f"arn:aws:cloudformation:{deployed.region}:{deployed.account}:stack/{STACK}/"
    on_stack = [r for r in requests if r.action.startswith("cloudformation:")]
    assert on_stack and all(r.resource.startswith(stack_arn) for r in on_stack)
    assert_all_allowed(evaluate(simulator, deployed, requests))


@pytest.mark.parametrize(
    ("changes", "reaches", "statuses"),
    [
        ({"simulation": ()}, {"dynamodb.GetItem"}, {"ok"}),
        (
            {"bounce_sender_arn": FOREIGN, "identity_policies": AUTHORIZED},
            {"ses.ListIdentityPolicies", "ses.GetIdentityPolicies"},
            {"ok"},
        ),
        # Another rule set is active: preflight reads the processor's own rule set to say so.
        ({"active_rule_set": "SomeoneElses"}, {"ses.DescribeReceiptRuleSet"}, None),
    ],
    ids=["simulation-denied", "foreign-identity", "inactive-rule-set"],
)
def test_preflight_by_names_is_allowed_by_grant_preflight(
    changes: dict[str, object],
    reaches: set[str],
    statuses: set[str] | None,
    world: Callable[..., World],
    deployed: Deployment,
    simulator: IamSimulator,
    evaluated_actions: set[str],
) -> None:
    built = world(healthy(**changes))
    with record_calls() as calls:
        checks = run(built)

    # The account passes (an inactive rule set is a problem: the run is there for its call).
    if statuses is not None:
        assert {c["status"] for c in checks.values()} == statuses, checks
    assert {c.describe() for c in calls} >= reaches
    requests = _as_preflight(deployed, calls, evaluated_actions)
    assert_all_allowed(evaluate(simulator, deployed, requests))


def test_every_action_preflight_declares_was_evaluated(evaluated_actions: set[str]) -> None:
    assert evaluated_actions, "runs after the preflight runs above"
    assert evaluated_actions == actions_of("preflight")


@pytest.mark.parametrize("role", [LIST_ROLE, TRIAGE_ROLE])
def test_another_commands_grant_is_denied_what_only_preflight_calls(
    role: str,
    world: Callable[..., World],
    deployed: Deployment,
    simulator: IamSimulator,
) -> None:
    built = world(healthy(simulation=(), bounce_sender_arn=FOREIGN, identity_policies=AUTHORIZED))
    with record_calls() as calls:
        run(built)

    requests = requests_of_role(deployed, calls, _role(deployed, role))
    # What the dead-letter grants also hold (the dead-letter queue's attributes) is not at issue.
    only_preflight = actions_of("preflight") - actions_of("dead-letters replay")
    preflight_only = [r for r in requests if r.action in only_preflight]
    assert {r.action for r in preflight_only} >= {
        "ses:GetSendQuota",
        "iam:SimulatePrincipalPolicy",
        "dynamodb:GetItem",
        "cloudwatch:GetMetricStatistics",
    }
    assert_all_denied(evaluate(simulator, deployed, preflight_only))


def test_over_plain_http_only_calls_on_a_tls_only_resource_are_denied(
    world: Callable[..., World], deployed: Deployment, simulator: IamSimulator
) -> None:
    # The queues' policies deny any request without aws:SecureTransport; grant_preflight's
    # identity policy has no such condition (an identity policy usually has none), and the
    # other services preflight reads have no resource policy here: their twins stay allowed.
    # (AWS's endpoints for these APIs answer HTTPS only.)
    built = world(healthy(simulation=()))
    with record_calls() as calls:
        run(built)

    twins = [r.insecure() for r in _as_preflight(deployed, calls, set())]
    on_tls_only = [r for r in twins if r.resource_policy is not None]
    assert {r.action for r in on_tls_only} == {"sqs:GetQueueAttributes"}
    assert_all_denied(evaluate(simulator, deployed, on_tls_only))
    assert_all_allowed(evaluate(simulator, deployed, [r for r in twins if r not in on_tls_only]))
