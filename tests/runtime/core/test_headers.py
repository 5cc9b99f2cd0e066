"""Reading the header block of a stored message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES
from bounce_runtime.core.headers import HeaderBlock, header_block_ends, parse_raw_headers
from bounce_runtime.core.notification import Header
from support.header_blocks import fields_of

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
    assert parse_raw_headers(MESSAGE).fields == (
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
    assert parse_raw_headers(raw).fields == (
        Header("From", "a@example.net"),
        Header("Precedence", "bulk"),
    )


def test_block_without_body_or_empty_input() -> None:
    assert parse_raw_headers(b"List-Id: <x.example.net>") == HeaderBlock(
        (Header("List-Id", "<x.example.net>"),), complete=True
    )
    assert parse_raw_headers(b"") == HeaderBlock((), complete=True)


def test_a_line_that_is_not_a_field_makes_the_block_incomplete_and_reading_goes_on() -> None:
    raw = b"Subject: hi\r\nthis is not a header\r\nList-Id: <x>\r\n\r\nX-Body: 1\r\n"
    assert parse_raw_headers(raw) == HeaderBlock(
        (Header("Subject", "hi"), Header("List-Id", "<x>")), complete=False, unreadable_at=13
    )


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (b"X-Mailer : x", "X-Mailer"),  # RFC 5322 4.5 obs-optional: WSP before the colon
        (b"X-Mailer\t: x", "X-Mailer"),
        (b"X-Mailer \t \t: x", "X-Mailer"),
        (b"X-Mailer:x", "X-Mailer"),
        (b"!#$%&'*+-/=?^_`{|}~: x", "!#$%&'*+-/=?^_`{|}~"),  # 3.6.8: any printable but the colon
    ],
)
def test_the_obsolete_and_rare_field_forms_are_fields(line: bytes, name: str) -> None:
    raw = b"Received: from a\r\n" + line + b"\r\nAuto-Submitted: auto-replied\r\n\r\nbody"
    assert parse_raw_headers(raw) == HeaderBlock(
        (Header("Received", "from a"), Header(name, "x"), Header("Auto-Submitted", "auto-replied")),
        complete=True,
    )


@pytest.mark.parametrize(
    "line",
    [
        b"X Mailer: x",  # a space inside the name
        b"X\x00Mailer: x",  # NUL
        b"X-Mail\xe9r: x",  # an 8-bit byte (Latin-1)
        b"X-Mail\xc3\xa9r: x",  # an 8-bit byte (UTF-8)
        b"X\x7fMailer: x",  # DEL
        b"X\x01Mailer: x",  # a control character
        b": x",  # no name
        b"no colon at all",
        b" leading white space with nothing to continue",
    ],
)
def test_a_line_that_is_neither_field_nor_continuation_is_unreadable(line: bytes) -> None:
    raw = line + b"\r\nPrecedence: bulk\r\n\r\nbody"
    assert parse_raw_headers(raw) == HeaderBlock(
        (Header("Precedence", "bulk"),), complete=False, unreadable_at=0
    )


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"])
def test_each_line_end_ends_a_line_and_folds(end: bytes) -> None:
    raw = end.join([b"A: 1", b"B: 2", b"\t3", b"List-Id: <x>", b""]) + b"\n\nbody"
    fields = parse_raw_headers(raw).fields
    assert [field.name for field in fields] == ["A", "B", "List-Id"]
    assert fields[1].value in ("2\t3", "2 \t3")  # CR LF / LF removed; a bare CR made a space


def test_empty_lines_of_bare_crs_do_not_end_the_block_and_are_skipped() -> None:
    raw = b"X-Mailer: x\r\rAuto-Submitted: yes\r\r\nList-Id: <l>\r\n\r\nbody"
    assert parse_raw_headers(raw) == HeaderBlock(
        (Header("X-Mailer", "x"), Header("Auto-Submitted", "yes"), Header("List-Id", "<l>")),
        complete=True,
    )


def test_a_line_cut_by_the_cap_is_not_called_unreadable() -> None:
    raw = fields_of(HEADER_BLOCK_MAX_BYTES - 4) + b"Auto-Submitted: yes\r\n\r\n"
    block = parse_raw_headers(raw)
    assert (block.complete, block.unreadable_at) == (False, None)
    assert block.fields[-1].name == "X-Pad"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_headers_without_line_breaks(raw: bytes) -> None:
    for header in parse_raw_headers(raw).fields:
        assert "\r" not in header.value and "\n" not in header.value
        assert header.name


# The cap: the Lambda reads at most HEADER_BLOCK_MAX_BYTES of the stored message.
CAP = HEADER_BLOCK_MAX_BYTES


def test_fields_of_has_the_size_asked_for() -> None:
    assert [len(fields_of(size)) for size in (64, 1000, CAP)] == [64, 1000, CAP]
    assert {field.name for field in parse_raw_headers(fields_of(1000)).fields} == {
        "Received",
        "X-Pad",
    }


def test_a_block_ending_within_the_cap_is_complete() -> None:
    raw = fields_of(CAP - 200) + b"Auto-Submitted: auto-replied\r\n\r\nList-Id: <body>\r\n"
    block = parse_raw_headers(raw + b"x" * CAP)
    assert block.complete is True
    assert block.fields[-1] == Header("Auto-Submitted", "auto-replied")


def test_the_empty_line_may_end_exactly_at_the_cap() -> None:
    raw = fields_of(CAP - 2) + b"\r\n" + b"List-Id: <in the body>\r\n"
    block = parse_raw_headers(raw)
    assert block.complete is True
    assert block.fields[-1].name == "X-Pad"


def test_an_empty_line_straddling_the_cap_is_not_seen() -> None:
    raw = fields_of(CAP - 1) + b"\r\nbody"  # the empty line's CR is the cap's last byte
    block = parse_raw_headers(raw)
    assert block.complete is False
    assert block.fields[-1].name == "X-Pad"


def test_a_block_going_past_the_cap_is_incomplete_and_read_to_the_cap_only() -> None:
    raw = fields_of(CAP) + b"List-Id: <after.the.cap>\r\n\r\nbody"
    block = parse_raw_headers(raw)
    assert block.complete is False
    assert block.fields == parse_raw_headers(fields_of(CAP)).fields  # those before the cap


def test_a_message_of_header_fields_alone_is_complete_when_it_ends_within_the_cap() -> None:
    assert parse_raw_headers(fields_of(CAP)).complete is True
    assert parse_raw_headers(fields_of(CAP) + b"X").complete is False
    # Only the message's first bytes: without an empty line, nothing says the block ended.
    assert parse_raw_headers(fields_of(1000), whole_message=False).complete is False
    assert parse_raw_headers(fields_of(1000) + b"\n\n", whole_message=False).complete is True


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b"A: b\r\n\r", b"\nbody"),  # CR LF CR | LF
        (b"A: b\r\n", b"\r\nbody"),  # CR LF | CR LF
        (b"A: b\r", b"\n\r\nbody"),  # CR | LF CR LF
        (b"A: b\n", b"\nbody"),  # LF | LF
        (b"A: b", b"\r\n\r\n"),  # | CR LF CR LF
    ],
)
def test_an_empty_line_split_between_two_reads_is_found(first: bytes, second: bytes) -> None:
    assert header_block_ends(first, 0) is False
    assert header_block_ends(first + second, len(first)) is True


def test_no_empty_line_means_the_block_goes_on() -> None:
    assert header_block_ends(b"A: b\r\nC: d\r\n", 6) is False
    assert header_block_ends(b"A: b\r\n\tfolded\r\n", 0) is False


# Bytes of CR, LF, "a" and ":" only: line breaks and empty lines everywhere.
LINE_BREAKY = bytes(b"\r\na:"[i % 4] for i in range(256))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda b: b.translate(LINE_BREAKY)), st.integers(0, 60))
def test_searching_from_the_last_read_finds_what_a_full_search_finds(
    raw: bytes, split: int
) -> None:
    """Read by read (as the store reads), resuming the search where the previous read ended."""
    split = min(split, len(raw))
    if header_block_ends(raw[:split], 0):  # the store would have stopped at the earlier read
        return
    assert header_block_ends(raw, split) is header_block_ends(raw, 0)
