"""The sender guard and the header guards against the forms RFC 5321 and RFC 5322 allow: a
quoted or source-routed daemon, a null path with spaces, header names with surrounding spaces."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bounce_runtime.core.decision import plan_message
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import default_policy
from support.events import notification

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def plan(**overrides: Any) -> tuple[str, str]:
    message = parse_notification_body(json.dumps(notification(**overrides)))
    result = plan_message(message, default_policy(), now=NOW)
    return result.outcome, result.reason


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("< >", "null-sender"),
        ("<\t>", "null-sender"),
        (" ", "null-sender"),
        ('"mailer-daemon"@example.net', "daemon-sender"),
        ('"MAILER-DAEMON"@example.net', "daemon-sender"),
        ('<"postmaster"@example.net>', "daemon-sender"),
        ('"mailer\\-daemon"@example.net', "daemon-sender"),
        ("@relay.example.net:mailer-daemon@example.net", "daemon-sender"),
        ("<@a.example,@b.example:Postmaster@example.net>", "daemon-sender"),
        ("< mailer-daemon@example.net >", "daemon-sender"),
        ("postmaster", "daemon-sender"),
    ],
)
def test_daemon_and_null_senders_in_every_reverse_path_form(source: str, reason: str) -> None:
    assert plan(source=source) == ("suppress", reason)


@pytest.mark.parametrize(
    "source",
    [
        "sender@example.net",
        '"mailer-daemon-fan"@example.net',
        "@relay.example.net:daemon@example.net",
        "mailer-daemon.team@example.net",
    ],
)
def test_people_are_not_taken_for_daemons(source: str) -> None:
    assert plan(source=source) == ("bounce", "policy")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        (" Auto-Submitted ", "auto-replied", "auto-submitted"),
        ("Auto-Submitted ", "auto-generated", "auto-submitted"),
        ("\tPrecedence\t", "bulk", "list-traffic"),
        (" List-Id", "<news.example.net>", "list-traffic"),
        ("List-Unsubscribe  ", "<mailto:u@example.net>", "list-traffic"),
        (" X-Auto-Response-Suppress ", "All", "no-ndr-requested"),
        (" X-Autoreply ", "yes", "auto-submitted"),
    ],
)
def test_header_names_with_surrounding_spaces_are_matched(
    name: str, value: str, reason: str
) -> None:
    assert plan(extra_headers=[(name, value)]) == ("suppress", reason)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("bulk\r\n x", "list-traffic"),  # found by tests/runtime/core/test_headers_generated.py
        ("bulk \x00", "list-traffic"),
        ("list, junk", "list-traffic"),
        ("auto_reply\r\n\t(vacation) x", "auto-submitted"),
    ],
)
def test_a_precedence_keyword_with_more_text_folded_onto_it_still_counts(
    value: str, reason: str
) -> None:
    assert plan(extra_headers=[("Precedence", value)]) == ("suppress", reason)


def test_a_precedence_that_names_no_keyword_is_no_guard() -> None:
    assert plan(extra_headers=[("Precedence", "first-class (bulky)")]) == ("bounce", "policy")
