"""Every AWS call preflight makes is an action its declaration (and so `grant_preflight`) holds,
and every declared action is one it makes: recorded at the botocore layer while preflight runs
every path (found by stack, by names, with the IAM simulation allowed and denied, with another
account's identity)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from operations.preflight_world import World, healthy, moto_server, run, world

from bounce_runtime.operations.permissions import actions_of

__all__ = ["moto_server", "world"]

FOREIGN = "arn:aws:ses:eu-west-1:210987654321:identity/example.com"
# The stack lookup's calls, recorded by tests/operations/test_preflight_command.py's stack tests.
BY_STACK = {"cloudformation:GetTemplate", "cloudformation:DescribeStackResource"}


@pytest.fixture(scope="module")
def recorded() -> set[str]:
    return set()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"simulation": ()},
        {"bounce_sender_arn": FOREIGN, "identity_policies": {"p": "{}"}},
        {"active_rule_set": "SomeoneElses"},
    ],
    ids=["healthy", "no-simulation", "foreign-identity", "inactive-rule-set"],
)
def test_every_call_is_declared(
    world: Callable[..., World], recorded: set[str], changes: dict[str, object]
) -> None:
    built = world(healthy(**changes))
    built.actions.clear()  # the calls that built the account are not preflight's
    run(built)
    made = set(built.actions)
    assert made <= actions_of("preflight"), made - actions_of("preflight")
    recorded |= made


def test_every_declared_action_is_called_on_some_path(recorded: set[str]) -> None:
    assert recorded, "runs after test_every_call_is_declared"
    assert actions_of("preflight") - BY_STACK == recorded
