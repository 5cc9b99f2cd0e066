"""Limits at their exact values, and the messages that name what is refused (found by mutation
testing, ``make mutation``): the longest MTA name and extension value SES takes, a header folded
with a bare CR, a mail object id that cannot be this processor's."""

from __future__ import annotations

import json

from bounce_runtime.core.headers import parse_raw_headers
from bounce_runtime.core.notification import Header, parse_notification_body
from bounce_runtime.core.ownership import mail_object_problem
from bounce_runtime.core.vocabulary import extension_value_problem, mta_problem
from support.events import notification


def test_an_mta_name_of_a_253_character_host_is_the_longest_accepted() -> None:
    longest = "dns; " + ".".join(["a" * 63] * 3 + ["a" * 61])
    assert len(longest) == 5 + 253
    assert mta_problem(longest) is None
    assert mta_problem(longest + ".aaaaaaa") == (
        "is not an MTA name of the form 'dns; mail.example.com' (an ASCII host name of at most "
        "253 characters)"
    )


def test_an_extension_value_of_2048_characters_is_the_longest_accepted() -> None:
    assert extension_value_problem("x" * 2048) is None
    assert extension_value_problem("x" * 2049) == (
        "is 2049 characters long: at most 2048 are allowed"
    )


def test_a_header_folded_with_a_bare_cr_is_one_line() -> None:
    assert parse_raw_headers(b"Subject: a\r b\r\nX-A: 1\r\n\r\nbody").fields == (
        Header("Subject", "a  b"),
        Header("X-A", "1"),
    )


def test_a_message_id_that_is_no_key_name_is_refused_saying_why() -> None:
    parsed = parse_notification_body(json.dumps(notification(message_id="../m-1")))
    assert mail_object_problem(parsed, bucket=parsed.receipt.action.bucket_name, prefix="") == (
        "mail.messageId '../m-1' is not an SES message id (ASCII letters, digits, '.', '_' and "
        "'-'): it cannot name an object under this processor's prefix"
    )
