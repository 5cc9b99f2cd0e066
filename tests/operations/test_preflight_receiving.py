"""preflight finds why SES does not hand mail to the processor: a region without receiving, the
rule set not active, the rule disabled or changed by hand, an earlier rule that stops processing
(moto's receipt rules; Stubber for the InvalidAction a non-receiving region answers)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from operations.preflight_world import RULE_SET, World, healthy, moto_server, run, world

from bounce_runtime.operations.preflight_checks import OK, PROBLEM, UNKNOWN

__all__ = ["moto_server", "world"]


def test_a_region_without_receiving_is_a_problem_and_skips_the_rule_checks(
    world: Callable[..., World],
) -> None:
    checks = run(world(healthy(receives_mail=False)))
    region = checks["receiving-region"]
    assert region["status"] == PROBLEM
    assert "SES does not receive mail in eu-west-1" in region["meaning"]
    assert "Unavailable Operation" in region["meaning"]
    assert "rule-set-active" not in checks and "rule" not in checks


@pytest.mark.parametrize("active", ["SomeoneElses", None])
def test_an_inactive_rule_set_is_named_with_what_is_active_and_how_to_activate(
    world: Callable[..., World], active: str | None
) -> None:
    checks = run(world(healthy(active_rule_set=active)))
    check = checks["rule-set-active"]
    assert check["status"] == PROBLEM
    now = "'SomeoneElses' is active" if active else "no rule set is active"
    assert now in check["meaning"]
    assert f"set-active-receipt-rule-set --rule-set-name {RULE_SET}" in check["fix"]
    # The rule is still read from the processor's own set; an earlier stop rule cannot matter.
    assert checks["rule"]["status"] == OK
    assert "earlier-stop-rule" not in checks


def test_a_disabled_rule_is_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy(rule_enabled=False)))["rule"]
    assert check["status"] == PROBLEM
    assert "is disabled" in check["meaning"]


def test_a_rule_whose_recipients_drifted_from_the_construct_is_a_problem(
    world: Callable[..., World],
) -> None:
    check = run(world(healthy(rule_recipients=["old.example.com"])))["rule"]
    assert check["status"] == PROBLEM
    assert "['old.example.com']" in check["meaning"]
    assert "retired@example.org" in check["meaning"]


def test_a_missing_rule_is_a_problem(world: Callable[..., World]) -> None:
    check = run(world(healthy()), rule="NoSuchRule")["rule"]
    assert check["status"] == PROBLEM
    assert "'NoSuchRule' is not in rule set" in check["meaning"]


@pytest.mark.parametrize(
    ("stop_recipients", "caught"),
    [
        ([], "old.example.com, retired@example.org"),  # no recipients: every message
        (["example.org"], "retired@example.org"),  # the address's domain
        ([".example.com"], "old.example.com"),  # a subdomain entry
        (["OLD.example.com"], "old.example.com"),  # case does not matter
    ],
)
def test_an_earlier_stop_rule_catching_the_recipients_is_named(
    world: Callable[..., World], stop_recipients: list[str], caught: str
) -> None:
    check = run(world(healthy(earlier_stop_recipients=stop_recipients)))["earlier-stop-rule"]
    assert check["status"] == PROBLEM
    assert "'EarlierStop'" in check["meaning"]
    assert f"(StopAction) for {caught}:" in check["meaning"]


@pytest.mark.parametrize("stop_recipients", [["other.example.com"], ["x@example.com"]])
def test_an_earlier_stop_rule_for_other_recipients_is_ok(
    world: Callable[..., World], stop_recipients: list[str]
) -> None:
    assert (
        run(world(healthy(earlier_stop_recipients=stop_recipients)))["earlier-stop-rule"]["status"]
        == OK
    )


def test_without_the_rule_set_name_the_rule_checks_are_unknown(
    world: Callable[..., World],
) -> None:
    checks = run(world(healthy()), rule_set=None)
    assert checks["rule-set-active"]["status"] == UNKNOWN
    assert checks["rule-set-active"]["fix"] == "give --rule-set"
