"""A stored header block with an unreadable line: not bounced while a header guard is on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bounce_runtime.core.decision import plan_message
from bounce_runtime.core.headers import parse_raw_headers
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import BouncePolicy
from support.events import notification

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
TRUNCATED = parse_notification_body(json.dumps(notification(headers_truncated=True)))
UNREADABLE = parse_raw_headers(b"Subject: hi\r\nX\x00Mailer: x\r\nX-Other: y\r\n\r\nbody")


@pytest.mark.parametrize(
    ("guards", "outcome", "reason"),
    [
        ({}, "suppress", "header-block-unreadable"),
        ({"auto_submitted": False}, "suppress", "header-block-unreadable"),
        ({"list_traffic": False}, "suppress", "header-block-unreadable"),
        ({"auto_submitted": False, "list_traffic": False}, "bounce", "policy"),
    ],
)
def test_an_unreadable_block_is_not_bounced_while_a_header_guard_is_on(
    guards: dict[str, bool], outcome: str, reason: str
) -> None:
    assert (UNREADABLE.complete, UNREADABLE.unreadable_at) == (False, 13)
    policy = BouncePolicy.from_dict({"guards": guards})
    plan = plan_message(TRUNCATED, policy, now=NOW, headers=UNREADABLE)
    assert (plan.outcome, plan.reason) == (outcome, reason)


def test_a_marker_after_the_unreadable_line_names_its_own_reason() -> None:
    block = parse_raw_headers(b"X\x00Mailer: x\r\nList-Id: <l.example.net>\r\n\r\nbody")
    policy = BouncePolicy.from_dict({})
    plan = plan_message(TRUNCATED, policy, now=NOW, headers=block)
    assert (plan.outcome, plan.reason) == ("suppress", "list-traffic")
