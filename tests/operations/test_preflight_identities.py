"""preflight finds unverified identities and missing sending authorization: the bounce sender
(address or its domain), each recipient domain or address (moto's identities), and the policies of
another account's identity used through an ARN (Stubber: moto has no identity policies)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from operations.preflight_world import ACCOUNT, World, healthy, moto_server, run, world

from bounce_runtime.operations.preflight_account_checks import policy_allows_send_bounce
from bounce_runtime.operations.preflight_checks import OK, PROBLEM, UNKNOWN

__all__ = ["moto_server", "world"]

FOREIGN_SENDER = "arn:aws:ses:eu-west-1:210987654321:identity/example.com"


def test_an_unverified_bounce_sender_is_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy(verified=("example.org",))))["bounce-sender-identity"]
    assert check["status"] == PROBLEM
    assert "bounces@example.com is not a verified identity" in check["meaning"]
    assert "ses-rejected:MessageRejected" in check["meaning"]


def test_a_verified_address_is_enough_for_the_bounce_sender(world: Callable[..., World]) -> None:
    checks = run(world(healthy(verified=("bounces@example.com", "example.org", "old.example.com"))))
    assert checks["bounce-sender-identity"]["status"] == OK
    assert "(identity bounces@example.com)" in checks["bounce-sender-identity"]["meaning"]


def test_each_unverified_recipient_is_named(world: Callable[..., World]) -> None:
    check = run(world(healthy(verified=("example.com",))))["recipient-identities"]
    assert check["status"] == PROBLEM
    assert "retired@example.org" in check["meaning"]
    assert "old.example.com" not in check["meaning"]  # verified through example.com


def test_another_accounts_identity_without_a_policy_for_this_account_is_a_problem(
    world: Callable[..., World],
) -> None:
    policy = _policy("arn:aws:iam::999999999999:root")
    account = healthy(bounce_sender_arn=FOREIGN_SENDER, identity_policies={"other": policy})
    check = run(world(account))["sending-authorization"]
    assert check["status"] == PROBLEM
    assert f"account {ACCOUNT}" in check["meaning"] and FOREIGN_SENDER in check["meaning"]


def test_another_accounts_identity_with_a_policy_for_this_account_is_ok(
    world: Callable[..., World],
) -> None:
    policy = _policy(f"arn:aws:iam::{ACCOUNT}:role/Bounces")
    account = healthy(bounce_sender_arn=FOREIGN_SENDER, identity_policies={"bounces": policy})
    checks = run(world(account))
    assert checks["sending-authorization"]["status"] == OK
    assert checks["bounce-sender-identity"]["status"] == OK  # another account verifies it


def test_policies_only_the_owner_can_read_are_unknown(world: Callable[..., World]) -> None:
    check = run(world(healthy(bounce_sender_arn=FOREIGN_SENDER)))["sending-authorization"]
    assert check["status"] == UNKNOWN
    assert "AccessDenied" in check["meaning"]


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ({"Principal": {"AWS": ACCOUNT}, "Action": "ses:SendBounce"}, True),
        ({"Principal": "*", "Action": ["ses:*"]}, True),
        (
            {"Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]}, "Action": "SES:SendBounce"},
            True,
        ),
        ({"Principal": {"AWS": ACCOUNT}, "Action": "ses:SendEmail"}, False),
        ({"Principal": {"AWS": ACCOUNT}, "Action": "ses:SendBounce", "Effect": "Deny"}, False),
        ({"Principal": {"Service": "ses.amazonaws.com"}, "Action": "ses:SendBounce"}, False),
    ],
)
def test_policy_reading(statement: dict[str, object], allowed: bool) -> None:
    document = json.dumps({"Statement": [{"Effect": "Allow", "Resource": "*", **statement}]})
    assert policy_allows_send_bounce(document, ACCOUNT) is allowed
    assert policy_allows_send_bounce("not json", ACCOUNT) is False


def _policy(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": ["ses:SendBounce"],
                    "Resource": FOREIGN_SENDER,
                }
            ],
        }
    )
