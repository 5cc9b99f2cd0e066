"""Each operator grant holds exactly the IAM actions its command declares
(`bounce_runtime.operations.permissions`), each on the resource the declaration names and nothing
wider: the queues, the prefix's objects, the send claims, the stack, the function and its role,
the budget table, and `*` only for actions without a resource type (none of them writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from bounce_runtime.operations import permissions
from bounce_runtime.operations.permissions import COMMAND_PERMISSIONS
from cdk_ses_bounce import BounceProcessor

GRANTS = {
    "dead-letters list": BounceProcessor.grant_list_dead_letters,
    "dead-letters replay": BounceProcessor.grant_replay_dead_letters,
    "preflight": BounceProcessor.grant_preflight,
}
# Read actions that may have `*` (the Service Authorization Reference gives them no resource type).
WRITE_PREFIXES = ("Delete", "Send", "Put", "Update", "Create", "Change", "Set")


@pytest.fixture(scope="module")
def granted() -> tuple[cdk.Stack, BounceProcessor, dict[str, list[dict[str, Any]]]]:
    app = cdk.App()
    stack = cdk.Stack(app, "Ops", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    processor = BounceProcessor(
        stack,
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        bucket=s3.Bucket.from_bucket_name(stack, "Mail", "mail"),
        object_key_prefix="in/",
    )
    statements = {}
    for command, grant in GRANTS.items():
        role = iam.Role(stack, command.replace(" ", "-"), assumed_by=iam.AccountRootPrincipal())
        assert grant(processor, role).success
        policy = role.node.find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        statements[command] = stack.resolve(policy.document.to_json())["Statement"]
    return stack, processor, statements


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _expected_arns(stack: cdk.Stack, processor: BounceProcessor) -> dict[str, Any]:
    role = processor.function.role
    assert role is not None
    return {
        permissions.DEAD_LETTER_QUEUE: stack.resolve(processor.dead_letter_queue.queue_arn),
        permissions.QUEUE: stack.resolve(processor.queue.queue_arn),
        permissions.MAIL_OBJECTS: {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::mail/in/*"]]
        },
        permissions.SEND_CLAIMS: {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::mail/in/*.bounce-claim"]]
        },
        permissions.FUNCTION: stack.resolve(processor.function.function_arn),
        permissions.FUNCTION_ROLE: stack.resolve(role.role_arn),
        permissions.BUDGET_TABLE: stack.resolve(processor.budget.table.table_arn),
        permissions.STACK: {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":cloudformation:eu-west-1:123456789012:stack/Ops/*",
                ],
            ]
        },
        permissions.ANY_RESOURCE: "*",
    }


@pytest.mark.parametrize("command", sorted(GRANTS))
def test_each_grant_holds_exactly_the_declared_actions_on_the_declared_resources(
    granted: tuple[cdk.Stack, BounceProcessor, dict[str, list[dict[str, Any]]]], command: str
) -> None:
    stack, processor, statements = granted
    arns = _expected_arns(stack, processor)
    expected: dict[str, set[str]] = {}
    for permission in COMMAND_PERMISSIONS[command]:
        key = repr(arns[permission.resource])
        expected.setdefault(key, set()).update(permission.actions)
    got: dict[str, set[str]] = {}
    for statement in statements[command]:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for resource in _resources(statement):
            got.setdefault(repr(resource), set()).update(_actions(statement))
    assert got == expected


@pytest.mark.parametrize("command", sorted(GRANTS))
def test_no_write_action_is_granted_on_every_resource(
    granted: tuple[cdk.Stack, BounceProcessor, dict[str, list[dict[str, Any]]]], command: str
) -> None:
    _, _, statements = granted
    for statement in statements[command]:
        if "*" in _resources(statement):
            for action in _actions(statement):
                assert not action.split(":", 1)[1].startswith(WRITE_PREFIXES), action


def test_replay_may_delete_only_send_claims_not_mail(
    granted: tuple[cdk.Stack, BounceProcessor, dict[str, list[dict[str, Any]]]],
) -> None:
    """The issue 14 gap: replay deletes `<key>.bounce-claim`; the grant allows that, only that."""
    stack, processor, statements = granted
    arns = _expected_arns(stack, processor)
    deleting = [s for s in statements["dead-letters replay"] if "s3:DeleteObject" in _actions(s)]
    assert [_resources(s) for s in deleting] == [[arns[permissions.SEND_CLAIMS]]]


def test_preflight_grant_writes_nothing(
    granted: tuple[cdk.Stack, BounceProcessor, dict[str, list[dict[str, Any]]]],
) -> None:
    _, _, statements = granted
    for statement in statements["preflight"]:
        for action in _actions(statement):
            verb = action.split(":", 1)[1]
            assert verb.startswith(("Get", "Describe", "List", "Simulate")), action


def test_a_command_without_aws_calls_grants_nothing(new_stack: Callable[..., cdk.Stack]) -> None:
    stack = new_stack()
    processor = BounceProcessor(
        stack, "Bounces", recipients=["old.example.com"], bounce_sender="b@example.com"
    )
    role = iam.Role(stack, "Planner", assumed_by=iam.AccountRootPrincipal())
    assert not processor.grant_operator_command(role, "plan").success
    assert role.node.try_find_child("DefaultPolicy") is None
    with pytest.raises(ValueError, match="'deploy' is unknown; commands: dead-letters list"):
        processor.grant_operator_command(role, "deploy")
