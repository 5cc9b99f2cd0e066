"""Per-recipient decisions: policy, anti-backscatter guards and the 24-hour window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bounce_runtime.core.decision import (
    MessagePlan,
    RecipientDecision,
    needs_full_headers,
    plan_message,
)
from bounce_runtime.core.headers import HeaderBlock
from bounce_runtime.core.notification import Header, ReceivedNotification, parse_notification_body
from bounce_runtime.core.policy import BounceAction, BouncePolicy, default_policy
from support.events import load_event, notification

ARRIVAL = datetime(2015, 9, 11, 20, 32, 33, 936000, tzinfo=UTC)
SOON = ARRIVAL + timedelta(minutes=5)
NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def parsed(data: dict[str, Any]) -> ReceivedNotification:
    return parse_notification_body(json.dumps(data))


def plan_fixture(name: str, policy: BouncePolicy | None = None, **kwargs: Any) -> MessagePlan:
    return plan_message(
        parsed(load_event(name)), policy or default_policy(), now=kwargs.pop("now", SOON), **kwargs
    )


def test_clean_message_is_bounced() -> None:
    plan = plan_fixture("received-clean")
    assert plan.outcome == "bounce"
    assert plan.reason == "policy"
    assert plan.decisions == (
        RecipientDecision(
            "recipient@example.com", "bounce", "default-rule", "default", BounceAction()
        ),
    )
    assert plan.bounced == plan.decisions


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("received-null-sender", "null-sender"),
        ("received-spf-fail", "failed-authentication:spf"),
        ("received-auto-reply", "auto-submitted"),
        ("received-list", "list-traffic"),
    ],
)
def test_guards_on_fixtures(fixture: str, reason: str) -> None:
    plan = plan_fixture(fixture)
    assert plan.outcome == "suppress"
    assert plan.reason == reason
    assert [(d.action, d.reason, d.bounce) for d in plan.decisions] == [("suppress", reason, None)]
    assert plan.bounced == ()


@pytest.mark.parametrize(
    ("overrides", "reason", "guard"),
    [
        ({"source": "<>"}, "null-sender", "null_sender"),
        ({"source": "MAILER-DAEMON@mx.example.net"}, "daemon-sender", "null_sender"),
        ({"source": "postmaster@example.net"}, "daemon-sender", "null_sender"),
        ({"virus": "FAIL"}, "virus-verdict", "spam_or_virus"),
        ({"spam": "FAIL"}, "spam-verdict", "spam_or_virus"),
        ({"dkim": "FAIL"}, "failed-authentication:dkim", "failed_authentication"),
        ({"dmarc": "FAIL"}, "failed-authentication:dmarc", "failed_authentication"),
        (
            {"extra_headers": [("Auto-Submitted", "Auto-Generated; owner=x")]},
            "auto-submitted",
            "auto_submitted",
        ),
        (
            {"extra_headers": [("Auto-Submitted", "(vacation) auto-replied")]},
            "auto-submitted",
            "auto_submitted",
        ),
        ({"extra_headers": [("Precedence", " Bulk ")]}, "list-traffic", "list_traffic"),
        ({"extra_headers": [("precedence", "junk")]}, "list-traffic", "list_traffic"),
        ({"extra_headers": [("Precedence", "list (mailing)")]}, "list-traffic", "list_traffic"),
        ({"extra_headers": [("Precedence", "junk;")]}, "list-traffic", "list_traffic"),
        ({"extra_headers": [("Precedence", "(x) bulk; y=z")]}, "list-traffic", "list_traffic"),
        ({"extra_headers": [("List-Unsubscribe", "<mailto:x@y>")]}, "list-traffic", "list_traffic"),
        ({"extra_headers": [("list-id", "<a.b>")]}, "list-traffic", "list_traffic"),
    ],
)
def test_each_guard_and_turning_it_off(overrides: dict[str, Any], reason: str, guard: str) -> None:
    message = parsed(notification(**overrides))
    guarded = plan_message(message, default_policy(), now=NOW)
    assert (guarded.outcome, guarded.reason) == ("suppress", reason)
    off = BouncePolicy.from_dict({"guards": {guard: False}})
    assert plan_message(message, off, now=NOW).outcome == "bounce"


@pytest.mark.parametrize(
    "overrides",
    [
        {"extra_headers": [("Auto-Submitted", "no")]},
        {"extra_headers": [("Auto-Submitted", " No (manual)")]},
        # RFC 3834 5.1: parameters follow the keyword; `no` with two of them is still `no`.
        {"extra_headers": [("Auto-Submitted", "no; owner=x; reason=y")]},
        {"extra_headers": [("Precedence", "first-class")]},
        {"extra_headers": [("Precedence", "first-class (bulk)")]},
        {"spam": "GRAY", "dkim": "GRAY", "dmarc": None},
        {"source": "daemon-fan@example.net"},
    ],
)
def test_not_guarded(overrides: dict[str, Any]) -> None:
    assert plan_message(parsed(notification(**overrides)), default_policy(), now=NOW).outcome == (
        "bounce"
    )


def test_guards_leave_accepted_and_suppressed_recipients_alone() -> None:
    policy = BouncePolicy.from_dict(
        {
            "rules": [
                {"match": {"recipients": ["a@example.com"]}, "action": {"type": "accept"}},
                {
                    "match": {"recipients": ["b@example.com"]},
                    "action": {"type": "suppress", "reason": "legal-hold"},
                },
            ]
        }
    )
    message = parsed(
        notification(recipients=["a@example.com", "b@example.com", "c@example.com"], spam="FAIL")
    )
    plan = plan_message(message, policy, now=NOW)
    assert [(d.recipient, d.action, d.reason, d.rule) for d in plan.decisions] == [
        ("a@example.com", "accept", "matched-rule", "rules[0]"),
        ("b@example.com", "suppress", "legal-hold", "rules[1]"),
        ("c@example.com", "suppress", "spam-verdict", "default"),
    ]
    assert (plan.outcome, plan.reason) == ("suppress", "spam-verdict")


def test_outcomes_accept_and_policy_suppress() -> None:
    accept_all = BouncePolicy.from_dict({"default": {"type": "accept"}})
    suppress_all = BouncePolicy.from_dict({"default": {"type": "suppress"}})
    message = parsed(notification())
    assert plan_message(message, accept_all, now=NOW).outcome == "accept"
    plan = plan_message(message, suppress_all, now=NOW)
    assert (plan.outcome, plan.reason, plan.decisions[0].reason) == ("suppress", "policy", "policy")


def test_mixed_message_bounces_only_the_bounced() -> None:
    policy = BouncePolicy.from_dict(
        {"rules": [{"match": {"recipients": ["keep@example.com"]}, "action": {"type": "accept"}}]}
    )
    plan = plan_message(
        parsed(notification(recipients=["keep@example.com", "gone@example.com"])), policy, now=NOW
    )
    assert plan.outcome == "bounce"
    assert [d.recipient for d in plan.bounced] == ["gone@example.com"]


@pytest.mark.parametrize(
    ("age", "outcome"),
    [
        (timedelta(hours=24) - timedelta(microseconds=1), "bounce"),
        (timedelta(hours=24), "expired"),
        (timedelta(days=30), "expired"),
    ],
)
def test_twenty_four_hour_window(age: timedelta, outcome: str) -> None:
    plan = plan_fixture("received-clean", now=ARRIVAL + age)
    assert plan.outcome == outcome
    if outcome == "expired":
        assert plan.reason == "expired"
        assert [(d.action, d.reason, d.rule) for d in plan.decisions] == [
            ("suppress", "expired", "default")
        ]
        assert plan.bounced == ()


def test_old_message_without_bounces_is_not_expired() -> None:
    late = ARRIVAL + timedelta(days=2)
    assert plan_fixture("received-spf-fail", now=late).outcome == "suppress"
    accept = BouncePolicy.from_dict({"default": {"type": "accept"}})
    assert plan_fixture("received-clean", accept, now=late).outcome == "accept"


def test_needs_full_headers() -> None:
    truncated = parsed(load_event("received-headers-truncated"))
    assert needs_full_headers(truncated, default_policy()) is True
    header_guards_off = BouncePolicy.from_dict(
        {"guards": {"auto_submitted": False, "list_traffic": False}}
    )
    assert needs_full_headers(truncated, header_guards_off) is False
    assert needs_full_headers(parsed(load_event("received-clean")), default_policy()) is False


def test_full_headers_are_guarded_with_the_notification_headers() -> None:
    truncated = parsed(load_event("received-headers-truncated"))
    assert plan_message(truncated, default_policy(), now=SOON).outcome == "bounce"
    full = HeaderBlock(
        (Header("From", "x@example.net"), Header("List-Id", "<news.example.net>")), complete=True
    )
    plan = plan_message(truncated, default_policy(), now=SOON, headers=full)
    assert (plan.outcome, plan.reason) == ("suppress", "list-traffic")
    # A guard header that SES listed still counts when the block read from S3 lacks it.
    auto = parsed(load_event("received-auto-reply"))
    block = HeaderBlock((Header("From", "x@y.org"),), complete=True)
    plan = plan_message(auto, default_policy(), now=SOON, headers=block)
    assert (plan.outcome, plan.reason) == ("suppress", "auto-submitted")


def test_size_rule_gets_the_object_size() -> None:
    policy = BouncePolicy.from_dict(
        {
            "rules": [
                {
                    "match": {"min_size_bytes": 1000},
                    "action": {"type": "bounce", "bounce_type": "MessageTooLarge"},
                }
            ],
            "default": {"type": "accept"},
        }
    )
    message = parsed(notification())
    big = plan_message(message, policy, now=NOW, object_size=1000)
    assert big.bounced[0].bounce == BounceAction("MessageTooLarge")
    assert plan_message(message, policy, now=NOW, object_size=999).outcome == "accept"
    with pytest.raises(ValueError) as caught:
        plan_message(message, policy, now=NOW)
    assert str(caught.value) == "object_size is required: the policy matches on message size"


def test_now_must_be_time_zone_aware() -> None:
    with pytest.raises(ValueError) as caught:
        plan_message(parsed(notification()), default_policy(), now=datetime(2024, 5, 1, 12))
    assert str(caught.value) == "now must be time-zone aware, got 2024-05-01T12:00:00"


# Backscatter: a bounce goes to the envelope sender, so only a sender that a verdict authenticates
# is bounced (by default an SPF PASS, which covers the MAIL FROM domain).
@pytest.mark.parametrize(
    "overrides",
    [
        {"spf": "GRAY", "dkim": "GRAY", "dmarc": "GRAY"},
        {"spf": "PROCESSING_FAILED", "dkim": "PROCESSING_FAILED", "dmarc": "PROCESSING_FAILED"},
        {"spf": None, "dkim": None, "dmarc": None},
        {"scan": False},
        {"spf": "GRAY", "dkim": "PASS", "dmarc": "PASS"},
        {"spf": None, "dkim": "PASS", "dmarc": None},
    ],
)
def test_unauthenticated_sender_is_not_bounced(overrides: dict[str, Any]) -> None:
    plan = plan_message(parsed(notification(**overrides)), default_policy(), now=NOW)
    assert (plan.outcome, plan.reason) == ("suppress", "unauthenticated-sender")
    assert [(d.action, d.reason, d.bounce) for d in plan.decisions] == [
        ("suppress", "unauthenticated-sender", None)
    ]


def test_no_scan_fixture_is_not_bounced() -> None:
    plan = plan_fixture("received-no-scan")
    assert (plan.outcome, plan.reason) == ("suppress", "unauthenticated-sender")


def test_spf_pass_alone_authenticates_the_sender() -> None:
    message = parsed(notification(spf="PASS", dkim=None, dmarc=None, spam=None, virus=None))
    assert plan_message(message, default_policy(), now=NOW).outcome == "bounce"


def test_spf_fail_is_still_failed_authentication() -> None:
    plan = plan_message(parsed(notification(spf="FAIL", dkim="PASS")), default_policy(), now=NOW)
    assert (plan.outcome, plan.reason) == ("suppress", "failed-authentication:spf")
    relaxed = BouncePolicy.from_dict({"guards": {"failed_authentication": False}})
    assert plan_message(parsed(notification(spf="FAIL", dkim="PASS")), relaxed, now=NOW).reason == (
        "unauthenticated-sender"
    )


@pytest.mark.parametrize(
    ("methods", "verdicts", "outcome"),
    [
        (["dkim"], {"spf": "GRAY", "dkim": "PASS", "dmarc": None}, "bounce"),
        (["dkim"], {"spf": "PASS", "dkim": "GRAY", "dmarc": None}, "suppress"),
        (["dmarc"], {"spf": None, "dkim": None, "dmarc": "PASS"}, "bounce"),
        (["dmarc"], {"spf": "PASS", "dkim": "PASS", "dmarc": "GRAY"}, "suppress"),
        (["spf", "dkim"], {"spf": "GRAY", "dkim": "PASS", "dmarc": None}, "bounce"),
        (["spf", "dkim"], {"spf": "GRAY", "dkim": "GRAY", "dmarc": "PASS"}, "suppress"),
    ],
)
def test_sender_authentication_names_what_counts(
    methods: list[str], verdicts: dict[str, str | None], outcome: str
) -> None:
    policy = BouncePolicy.from_dict({"guards": {"sender_authentication": methods}})
    plan = plan_message(parsed(notification(**verdicts)), policy, now=NOW)
    assert plan.outcome == outcome
    if outcome == "suppress":
        assert plan.reason == "unauthenticated-sender"


def test_unauthenticated_sender_guard_off_bounces_any_sender() -> None:
    off = BouncePolicy.from_dict({"guards": {"unauthenticated_sender": False}})
    for overrides in ({"scan": False}, {"spf": "GRAY"}, {"spf": "PROCESSING_FAILED"}):
        assert plan_message(parsed(notification(**overrides)), off, now=NOW).outcome == "bounce"


def test_unauthenticated_sender_comes_after_failed_authentication_before_auto_submitted() -> None:
    message = parsed(
        notification(spf="GRAY", dkim="FAIL", extra_headers=[("Auto-Submitted", "auto-replied")])
    )
    assert plan_message(message, default_policy(), now=NOW).reason == "failed-authentication:dkim"
    no_failed = BouncePolicy.from_dict({"guards": {"failed_authentication": False}})
    assert plan_message(message, no_failed, now=NOW).reason == "unauthenticated-sender"
    no_auth = BouncePolicy.from_dict(
        {"guards": {"failed_authentication": False, "unauthenticated_sender": False}}
    )
    assert plan_message(message, no_auth, now=NOW).reason == "auto-submitted"
