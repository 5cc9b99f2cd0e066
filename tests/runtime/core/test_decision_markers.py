"""Loop guards: the auto-reply markers in common use, the sender's request for no non-delivery
report, and a stored header block too large to read to its end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES
from bounce_runtime.core.decision import MessagePlan, plan_message
from bounce_runtime.core.headers import HeaderBlock, parse_raw_headers
from bounce_runtime.core.notification import Header, ReceivedNotification, parse_notification_body
from bounce_runtime.core.policy import BouncePolicy, default_policy
from support.events import notification

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
AUTO_SUBMITTED_OFF = BouncePolicy.from_dict({"guards": {"auto_submitted": False}})
HEADER_GUARDS_OFF = BouncePolicy.from_dict(
    {"guards": {"auto_submitted": False, "list_traffic": False}}
)


def parsed(**overrides: Any) -> ReceivedNotification:
    return parse_notification_body(json.dumps(notification(**overrides)))


def plan_with(
    headers: list[tuple[str, str]], policy: BouncePolicy | None = None, **overrides: Any
) -> MessagePlan:
    """The plan of a message whose notification (SES's ``mail.headers``) lists ``headers``."""
    message = parsed(extra_headers=headers, **overrides)
    return plan_message(message, policy or default_policy(), now=NOW)


MARKERS = [
    # Older auto-reply markers: any keyword but "no", like Auto-Submitted.
    ("X-Autoreply", "yes", "auto-submitted"),
    ("x-autoreply", "YES", "auto-submitted"),
    ("X-AutoReply", "true (vacation)", "auto-submitted"),
    ("X-Autoreply", "", "auto-submitted"),
    ("X-Autorespond", "Out of office", "auto-submitted"),
    ("X-AUTORESPOND", "1", "auto-submitted"),
    ("Precedence", "auto_reply", "auto-submitted"),
    ("Precedence", " AUTO_REPLY ", "auto-submitted"),
    ("Precedence", "(vacation) auto_reply; x=y", "auto-submitted"),
    ("Auto-Submitted", "auto-replied\r\n (folded)", "auto-submitted"),
    # Microsoft's request for no automatic response: All, DR or NDR anywhere in the list.
    ("X-Auto-Response-Suppress", "All", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "all", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "NDR", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "DR, OOF, AutoReply", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "DR, RN, NRN, OOF, AutoReply", "no-ndr-requested"),
    ("x-auto-response-suppress", "oof,autoreply,ndr", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", " RN ,\tNDR ", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "OOF;DR", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "(set by Exchange) All", "no-ndr-requested"),
    ("X-Auto-Response-Suppress", "OOF,\r\n\tNDR", "no-ndr-requested"),
]


@pytest.mark.parametrize(("name", "value", "reason"), MARKERS)
def test_each_marker_in_the_notifications_headers_suppresses(
    name: str, value: str, reason: str
) -> None:
    plan = plan_with([(name, value)])
    assert (plan.outcome, plan.reason) == ("suppress", reason)
    assert [(d.action, d.reason, d.bounce) for d in plan.decisions] == [("suppress", reason, None)]
    # The auto_submitted guard switches every one of them.
    assert plan_with([(name, value)], AUTO_SUBMITTED_OFF).outcome == "bounce"


@pytest.mark.parametrize(("name", "value", "reason"), MARKERS)
def test_each_marker_in_the_stored_header_block_suppresses(
    name: str, value: str, reason: str
) -> None:
    raw = f"From: a@example.net\r\n{name}: {value}\r\nSubject: hi\r\n\r\nbody\r\n".encode()
    truncated = parsed(headers_truncated=True)
    plan = plan_message(truncated, default_policy(), now=NOW, headers=parse_raw_headers(raw))
    assert (plan.outcome, plan.reason) == ("suppress", reason)
    assert plan_message(truncated, default_policy(), now=NOW).outcome == "bounce"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # Read notices, out-of-office notices and other auto-replies: a bounce is none of them.
        ("X-Auto-Response-Suppress", "OOF"),
        ("X-Auto-Response-Suppress", "AutoReply"),
        ("X-Auto-Response-Suppress", "RN, NRN"),
        ("X-Auto-Response-Suppress", "OOF, AutoReply, RN, NRN"),
        ("X-Auto-Response-Suppress", "None"),
        ("X-Auto-Response-Suppress", ""),
        # A comment is not a value; a longer word is not DR, NDR or All.
        ("X-Auto-Response-Suppress", "OOF (but no NDR please)"),
        ("X-Auto-Response-Suppress", "NDRs, DRAFT, Allow"),
        ("X-Autoreply", "no"),
        ("X-Autorespond", " No (a person wrote this)"),
        ("Precedence", "auto_replied"),
        ("X-Autoreply-Suppress", "yes"),
    ],
)
def test_what_does_not_forbid_a_bounce(name: str, value: str) -> None:
    assert plan_with([(name, value)]).outcome == "bounce"


def test_markers_are_checked_in_order() -> None:
    both = [("X-Auto-Response-Suppress", "All"), ("Auto-Submitted", "auto-replied")]
    assert plan_with(both).reason == "auto-submitted"
    listed = [("List-Id", "<news.example.net>"), ("X-Auto-Response-Suppress", "DR")]
    assert plan_with(listed).reason == "no-ndr-requested"
    assert plan_with(listed, AUTO_SUBMITTED_OFF).reason == "list-traffic"
    # The sender guards come first.
    assert plan_with(both, source="<>").reason == "null-sender"


def test_one_marker_among_many_fields_is_found() -> None:
    fields = [(f"X-Trace-{i}", f"hop {i}") for i in range(200)]
    assert plan_with([*fields, ("X-Autorespond", "yes"), *fields]).reason == "auto-submitted"


# The stored header block did not end within the cap ---------------------------------------------

PARTIAL = HeaderBlock((Header("From", "a@example.net"), Header("Received", "from x")), False)


def test_a_header_block_past_the_cap_is_not_bounced() -> None:
    truncated = parsed(headers_truncated=True, recipients=["a@example.com", "b@example.com"])
    plan = plan_message(truncated, default_policy(), now=NOW, headers=PARTIAL)
    assert (plan.outcome, plan.reason) == ("suppress", "header-block-too-large")
    assert [(d.recipient, d.action, d.reason, d.bounce) for d in plan.decisions] == [
        ("a@example.com", "suppress", "header-block-too-large", None),
        ("b@example.com", "suppress", "header-block-too-large", None),
    ]
    assert plan.bounced == ()
    complete = PARTIAL._replace(complete=True)
    assert plan_message(truncated, default_policy(), now=NOW, headers=complete).outcome == (
        "bounce"
    )


def test_from_a_raw_message_past_the_cap() -> None:
    raw = b"X-Pad: " + b"p" * HEADER_BLOCK_MAX_BYTES + b"\r\n\r\nbody"
    truncated = parsed(headers_truncated=True)
    plan = plan_message(truncated, default_policy(), now=NOW, headers=parse_raw_headers(raw))
    assert plan.reason == "header-block-too-large"


def test_a_marker_seen_before_the_cap_names_the_reason() -> None:
    partial = PARTIAL._replace(fields=(*PARTIAL.fields, Header("X-Autoreply", "yes")))
    plan = plan_message(parsed(headers_truncated=True), default_policy(), now=NOW, headers=partial)
    assert plan.reason == "auto-submitted"
    listed = PARTIAL._replace(fields=(Header("List-Id", "<l.example.net>"),))
    plan = plan_message(parsed(headers_truncated=True), default_policy(), now=NOW, headers=listed)
    assert plan.reason == "list-traffic"


@pytest.mark.parametrize(
    ("guards", "reason"),
    [
        ({"auto_submitted": False}, "header-block-too-large"),
        ({"list_traffic": False}, "header-block-too-large"),
        ({"auto_submitted": False, "list_traffic": False}, "policy"),
    ],
)
def test_the_cap_is_a_header_guard(guards: dict[str, bool], reason: str) -> None:
    """With no header guard on, nothing reads the header block: what it holds cannot matter."""
    policy = BouncePolicy.from_dict({"guards": guards})
    plan = plan_message(parsed(headers_truncated=True), policy, now=NOW, headers=PARTIAL)
    assert plan.reason == reason
    assert plan.outcome == ("bounce" if reason == "policy" else "suppress")


def test_earlier_guards_and_non_bounces_come_first() -> None:
    spam = parsed(headers_truncated=True, spam="FAIL")
    assert plan_message(spam, default_policy(), now=NOW, headers=PARTIAL).reason == "spam-verdict"
    accept = BouncePolicy.from_dict({"default": {"type": "accept"}})
    plan = plan_message(parsed(headers_truncated=True), accept, now=NOW, headers=PARTIAL)
    assert (plan.outcome, plan.reason) == ("accept", "policy")


def test_header_guards_off_ignore_every_marker() -> None:
    markers = [(name, value) for name, value, _ in MARKERS] + [("List-Id", "<l>")]
    assert plan_with(markers, HEADER_GUARDS_OFF).outcome == "bounce"
