"""preflight finds an account that cannot send (paused, sandbox, quota used up: Stubber, moto has
no GetAccountSendingEnabled), a send budget the function's role may not use (Stubber for the
IAM simulation; moto's DynamoDB for the read when the caller may not simulate), dead letters and
a backlog in the queues, and the function's recent errors (moto's SQS and CloudWatch)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from operations.preflight_world import (
    PRODUCTION_QUOTA,
    TABLE,
    World,
    healthy,
    moto_server,
    run,
    world,
)

from bounce_runtime.operations.preflight_checks import OK, PROBLEM, UNKNOWN

__all__ = ["moto_server", "world"]


def test_a_paused_account_is_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy(sending_enabled=False)))["account-sending"]
    assert check["status"] == PROBLEM
    assert "paused" in check["meaning"]


def test_a_sandbox_account_is_a_problem_saying_what_is_not_documented(
    world: Callable[..., World],
) -> None:
    sandbox = {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
    check = run(world(healthy(quota=sandbox)))["account-sending"]
    assert check["status"] == PROBLEM
    assert "sandbox" in check["meaning"] and "is not documented" in check["meaning"]
    assert "production access" in check["fix"]


def test_a_used_up_quota_is_a_problem(world: Callable[..., World]) -> None:
    used_up = {**PRODUCTION_QUOTA, "SentLast24Hours": PRODUCTION_QUOTA["Max24HourSend"]}
    check = run(world(healthy(quota=used_up)))["account-sending"]
    assert check["status"] == PROBLEM
    assert "used up" in check["meaning"]


def test_a_production_account_is_ok(world: Callable[..., World]) -> None:
    check = run(world(healthy()))["account-sending"]
    assert check["status"] == OK
    assert "50000 per 24 h, 14/s" in check["meaning"]


def test_a_role_the_simulation_denies_is_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy(simulation=("allowed", "implicitDeny"))))["send-budget"]
    assert check["status"] == PROBLEM
    assert "dynamodb:UpdateItem: implicitDeny" in check["meaning"]
    assert "dynamodb:GetItem" not in check["meaning"]


def test_without_simulation_a_read_of_the_table_stands_in(world: Callable[..., World]) -> None:
    check = run(world(healthy(simulation=())))["send-budget"]
    assert check["status"] == OK
    assert "were not simulated" in check["meaning"]


def test_without_simulation_a_missing_table_is_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy(simulation=(), budget_table_exists=False)))["send-budget"]
    assert check["status"] == PROBLEM
    assert f"budget table {TABLE} does not exist" in check["meaning"]


def test_dead_letters_are_a_problem_with_the_command_that_lists_them(
    world: Callable[..., World],
) -> None:
    check = run(world(healthy(dead_letters=3)))["dead-letters"]
    assert check["status"] == PROBLEM
    assert check["meaning"].startswith("3 dead letters")
    assert "dead-letters list" in check["fix"]


@pytest.mark.parametrize(("age", "status"), [(3599.0, OK), (3600.0, PROBLEM), (None, OK)])
def test_a_backlog_an_hour_old_is_a_problem(
    world: Callable[..., World], age: float | None, status: str
) -> None:
    check = run(world(healthy(oldest_age_s=age)))["queue-backlog"]
    assert check["status"] == status
    if status == PROBLEM:
        assert "1.0 h" in check["meaning"] and "24 h" in check["meaning"]


def test_recent_function_errors_are_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy(function_errors=(2.0, 0.0, 1.0))))["function-errors"]
    assert check["status"] == PROBLEM
    assert check["meaning"].startswith("3 function errors in the last 24 h")


def test_an_unknown_function_is_a_problem_and_leaves_its_checks_unknown(
    world: Callable[..., World],
) -> None:
    checks = run(world(healthy()), function="NoSuchFunction")
    assert checks["function"]["status"] == PROBLEM
    for name in ("bounce-sender-identity", "recipient-identities", "mx-records", "send-budget"):
        assert checks[name]["status"] == UNKNOWN, name
