"""Reading the header block of a stored message."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.core.headers import parse_raw_headers
from bounce_runtime.core.notification import Header

MESSAGE = (
    b"Return-Path: <sender@example.net>\r\n"
    b"Received: from mail.example.net by inbound-smtp.us-east-1.amazonaws.com\r\n"
    b"\twith SMTP id abc;\r\n"
    b"  Fri, 11 Sep 2015 20:32:33 +0000\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"X-Latin1: caf\xe9\r\n"
    b"\r\n"
    b"List-Id: this is the body, not a header\r\n"
)


def test_fields_in_order_unfolded_and_raw() -> None:
    assert parse_raw_headers(MESSAGE) == (
        Header("Return-Path", "<sender@example.net>"),
        Header(
            "Received",
            "from mail.example.net by inbound-smtp.us-east-1.amazonaws.com\twith SMTP id abc;"
            "  Fri, 11 Sep 2015 20:32:33 +0000",
        ),
        Header("Subject", "=?utf-8?q?caf=C3=A9?="),
        Header("Auto-Submitted", "auto-replied"),
        Header("X-Latin1", "caf\ufffd"),
    )


def test_bare_lf_line_endings() -> None:
    raw = b"From: a@example.net\nPrecedence: bulk\n\nbody\n"
    assert parse_raw_headers(raw) == (
        Header("From", "a@example.net"),
        Header("Precedence", "bulk"),
    )


def test_block_without_body_or_empty_input() -> None:
    assert parse_raw_headers(b"List-Id: <x.example.net>") == (Header("List-Id", "<x.example.net>"),)
    assert parse_raw_headers(b"") == ()


def test_a_line_that_is_not_a_field_ends_the_block() -> None:
    raw = b"Subject: hi\r\nthis is not a header\r\nList-Id: <x>\r\n\r\n"
    assert parse_raw_headers(raw) == (Header("Subject", "hi"),)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_headers_without_line_breaks(raw: bytes) -> None:
    for header in parse_raw_headers(raw):
        assert "\r" not in header.value and "\n" not in header.value
        assert header.name
