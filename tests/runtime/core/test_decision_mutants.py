"""Guards against backscatter in the forms senders and headers really take, and the verdicts
reaching the policy's rules (found by mutation testing, ``make mutation``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bounce_runtime.core.decision import MessagePlan, plan_message
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import BouncePolicy, default_policy
from support.events import notification

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def plan(policy: BouncePolicy | None = None, **fields: Any) -> MessagePlan:
    body = json.dumps(notification(**fields))
    return plan_message(parse_notification_body(body), policy or default_policy(), now=NOW)


@pytest.mark.parametrize(
    "source",
    ["<MAILER-DAEMON@mx.example.net>", "<postmaster>", " <Postmaster@example.net> "],
)
def test_a_daemon_sender_in_angle_brackets_is_never_bounced(source: str) -> None:
    result = plan(source=source)
    assert (result.outcome, result.reason) == ("suppress", "daemon-sender")


def test_a_precedence_with_several_parameters_is_list_traffic() -> None:
    result = plan(extra_headers=[("Precedence", "bulk; x=1; y=2")])
    assert (result.outcome, result.reason) == ("suppress", "list-traffic")


def test_a_rule_on_verdicts_sees_the_messages_verdicts() -> None:
    policy = BouncePolicy.from_dict(
        {"rules": [{"match": {"verdicts": {"spf": ["PASS"]}}, "action": {"type": "accept"}}]}
    )
    assert [d.rule for d in plan(policy).decisions] == ["rules[0]"]
    assert plan(policy).outcome == "accept"
    assert plan(policy, spf="GRAY", dkim="PASS").outcome != "accept"
