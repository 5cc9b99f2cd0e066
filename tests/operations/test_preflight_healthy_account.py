"""A processor deployed as it should be passes every check of preflight (moto-backed account):
each check runs, answers ok, and says what it found."""

from __future__ import annotations

from collections.abc import Callable

from operations.preflight_world import RULE, RULE_SET, World, healthy, moto_server, run, world

from bounce_runtime.operations.preflight_checks import CHECK_NAMES, OK

__all__ = ["moto_server", "world"]

EVERY_CHECK = list(CHECK_NAMES)


def test_a_healthy_processor_passes_every_check_in_report_order(
    world: Callable[..., World],
) -> None:
    checks = run(world(healthy()))
    assert list(checks) == EVERY_CHECK
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(EVERY_CHECK, OK)
    assert RULE_SET in checks["rule-set-active"]["meaning"]
    assert RULE in checks["rule"]["meaning"]
    assert (
        "bounces@example.com is verified (identity example.com)"
        in (checks["bounce-sender-identity"]["meaning"])
    )
