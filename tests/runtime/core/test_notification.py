"""Parsing the SES "Received" notification (S3 action), raw and in an SNS envelope."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.core.notification import (
    Header,
    ReceivedNotification,
    S3Action,
    Verdicts,
    parse_notification_body,
)
from bounce_runtime.errors import MalformedNotification
from support.events import load_event, notification, sns_envelope

FIXTURES = [
    "received-clean",
    "received-spf-fail",
    "received-auto-reply",
    "received-list",
    "received-headers-truncated",
    "received-null-sender",
    "received-multi-recipient",
    "received-no-scan",
    "sns-envelope-clean",
]


def parse(data: Any) -> ReceivedNotification:
    return parse_notification_body(json.dumps(data))


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_parses(name: str) -> None:
    parsed = parse(load_event(name))
    assert parsed.mail.timestamp == datetime(2015, 9, 11, 20, 32, 33, 936000, tzinfo=UTC)
    assert parsed.receipt.action.bucket_name == "example-inbound-bucket"
    assert parsed.receipt.action.object_key == "inbound/" + parsed.mail.message_id


def test_clean_fixture_fields() -> None:
    parsed = parse(load_event("received-clean"))
    assert parsed.mail.message_id == "d6iitobk75ur44p8kdnnp7g2n800"
    assert parsed.mail.source == "61967230-7A45-4A9D-BEC9-87CBCF2211C9@example.net"
    assert parsed.mail.destination == ("recipient@example.com",)
    assert parsed.mail.headers_truncated is False
    assert parsed.mail.headers[0] == Header(
        "Return-Path", "<61967230-7A45-4A9D-BEC9-87CBCF2211C9@example.net>"
    )
    assert parsed.mail.common_headers.subject == "Quarterly numbers"
    assert parsed.receipt.recipients == ("recipient@example.com",)
    assert parsed.receipt.processing_time_millis == 574
    assert parsed.receipt.verdicts == Verdicts("PASS", "PASS", "PASS", "PASS", "PASS", None)
    assert parsed.receipt.action == S3Action(
        bucket_name="example-inbound-bucket",
        object_key="inbound/d6iitobk75ur44p8kdnnp7g2n800",
        topic_arn="arn:aws:sns:us-east-1:012345678912:example-topic",
    )
    assert parsed.sns_message_id is None


def test_sns_envelope_gives_the_same_notification() -> None:
    raw = parse(load_event("received-clean"))
    wrapped = parse(load_event("sns-envelope-clean"))
    assert wrapped.sns_message_id == "e3c3f8ad-6b54-5b1c-b1ea-3bc7ad4b3b1f"
    assert (wrapped.mail, wrapped.receipt) == (raw.mail, raw.receipt)


def test_failed_spf_verdicts_and_dmarc_policy() -> None:
    verdicts = parse(load_event("received-spf-fail")).receipt.verdicts
    assert (verdicts.spf, verdicts.dmarc, verdicts.dmarc_policy) == ("FAIL", "FAIL", "reject")


def test_missing_verdicts_are_none() -> None:
    assert parse(load_event("received-no-scan")).receipt.verdicts == Verdicts()


def test_recipients_kept_as_given() -> None:
    parsed = parse(load_event("received-multi-recipient"))
    assert parsed.receipt.recipients == (
        "Alice@Example.com",
        "bob+news@example.com",
        "carol@sub.example.org",
    )
    assert len(parsed.mail.destination) == 4


def test_timestamp_with_offset_becomes_utc() -> None:
    parsed = parse(notification(timestamp="2024-05-01T14:00:00+02:00"))
    assert parsed.mail.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parsed.mail.timestamp.utcoffset() is not None


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target.pop(path[-1], None)
    return data


def _with(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


BASE = notification()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "body: not JSON (JSONDecodeError: Expecting value: line 1 column 1 (char 0))"),
        ("[1, 2]", "body: expected a JSON object, got [1, 2]"),
        ("{}", "notificationType: missing"),
        (
            json.dumps(_with(BASE, "Bounce", "notificationType")),
            'notificationType: expected "Received", got "Bounce"',
        ),
        (json.dumps(_without(BASE, "mail", "messageId")), "mail.messageId: missing"),
        (
            json.dumps(_with(BASE, "", "mail", "messageId")),
            'mail.messageId: expected a non-empty string, got ""',
        ),
        (
            json.dumps(_with(BASE, 3, "receipt", "recipients")),
            "receipt.recipients: expected a non-empty list of strings, got 3",
        ),
        (
            json.dumps(_with(BASE, [], "receipt", "recipients")),
            "receipt.recipients: expected a non-empty list of strings, got []",
        ),
        (
            json.dumps(_with(BASE, "2024-05-01T12:00:00", "mail", "timestamp")),
            "mail.timestamp: expected an ISO 8601 timestamp with a time zone, "
            'got "2024-05-01T12:00:00"',
        ),
        (
            json.dumps(_with(BASE, "yesterday", "receipt", "timestamp")),
            'receipt.timestamp: expected an ISO 8601 timestamp with a time zone, got "yesterday"',
        ),
        (
            json.dumps(_with(BASE, "SNS", "receipt", "action", "type")),
            'receipt.action.type: expected "S3" (the runtime reads the message the S3 action '
            'stored), got "SNS"',
        ),
        (
            json.dumps(_without(BASE, "receipt", "action", "objectKey")),
            "receipt.action.objectKey: missing",
        ),
        (
            json.dumps(_with(BASE, {"status": "MAYBE"}, "receipt", "spfVerdict")),
            'receipt.spfVerdict.status: "MAYBE" is not one of PASS, FAIL, GRAY, PROCESSING_FAILED',
        ),
        (
            json.dumps(_with(BASE, "no", "mail", "headersTruncated")),
            'mail.headersTruncated: expected true or false, got "no"',
        ),
        (
            json.dumps(_with(BASE, [{"name": "X"}], "mail", "headers")),
            "mail.headers[0].value: missing",
        ),
        (
            json.dumps(_with(BASE, "x" * 100, "receipt", "recipients")),
            'receipt.recipients: expected a non-empty list of strings, got "' + "x" * 56 + "...",
        ),
        (
            json.dumps({"Type": "SubscriptionConfirmation", "Message": "{}"}),
            'Type: expected "Notification" (an SNS envelope), got "SubscriptionConfirmation"',
        ),
        (json.dumps({"Type": "Notification"}), "Message: missing"),
        (
            json.dumps({"Type": "Notification", "Message": "{"}),
            "Message: not JSON (JSONDecodeError: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1))",
        ),
        (
            json.dumps(sns_envelope(_without(BASE, "receipt"))),
            "receipt: missing",
        ),
    ],
)
def test_malformed_notification_names_the_field(body: str, message: str) -> None:
    with pytest.raises(MalformedNotification) as caught:
        parse_notification_body(body)
    assert str(caught.value) == message
    assert caught.value.reason == "malformed-notification"


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedNotification, match=r"^body: not JSON \(RecursionError"):
        parse_notification_body("[" * 100_000)


def _assert_classified(body: str) -> None:
    try:
        parse_notification_body(body)
    except MalformedNotification as error:
        assert error.reason == "malformed-notification"
        assert ": " in str(error)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_or_is_malformed(body: str) -> None:
    _assert_classified(body)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    ("notificationType",),
    ("mail",),
    ("mail", "messageId"),
    ("mail", "timestamp"),
    ("mail", "source"),
    ("mail", "destination"),
    ("mail", "headersTruncated"),
    ("mail", "headers"),
    ("mail", "commonHeaders"),
    ("mail", "commonHeaders", "from"),
    ("receipt",),
    ("receipt", "timestamp"),
    ("receipt", "recipients"),
    ("receipt", "spamVerdict"),
    ("receipt", "dmarcPolicy"),
    ("receipt", "action"),
    ("receipt", "action", "type"),
    ("receipt", "action", "bucketName"),
]


@settings(max_examples=400, deadline=None)
@given(
    path=st.sampled_from(PATHS),
    value=JSON_VALUES,
    envelope=st.booleans(),
    drop=st.booleans(),
)
def test_any_field_replaced_or_dropped_parses_or_is_malformed(
    path: tuple[str, ...], value: Any, envelope: bool, drop: bool
) -> None:
    data = _without(BASE, *path) if drop else _with(BASE, value, *path)
    body = json.dumps(sns_envelope(data) if envelope else data)
    _assert_classified(body)


@settings(max_examples=200, deadline=None)
@given(
    timestamp=st.datetimes(timezones=st.timezones()),
    recipients=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5),
    source=st.text(max_size=40),
)
def test_valid_notifications_round_trip(
    timestamp: datetime, recipients: list[str], source: str
) -> None:
    data = notification(timestamp=timestamp.isoformat(), recipients=recipients, source=source)
    try:
        parsed = parse(data)
    except MalformedNotification as error:
        # Only a time zone offset that moves the time out of datetime's range may fail.
        assert str(error).startswith("mail.timestamp: ")
        return
    # The instant the text names: for a local time in a DST gap, `timestamp` itself is ambiguous.
    assert parsed.mail.timestamp == datetime.fromisoformat(timestamp.isoformat())
    assert parsed.mail.timestamp.tzinfo is UTC
    assert parsed.receipt.recipients == tuple(recipients)
    assert parsed.mail.source == source


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"mail": {"messageId": "abc\ud800"}}, "mail.messageId"),
        ({"mail": {"source": "x\udcff@example.com"}}, "mail.source"),
        ({"receipt": {"recipients": ["ok@example.com", "b\ud83d@example.com"]}},
         "receipt.recipients[1]"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_is_malformed_naming_the_field(change: dict[str, Any], path: str) -> None:
    data = notification()
    for section, fields in change.items():
        data[section].update(fields)
    body = json.dumps(data)  # ASCII escapes, as SNS would carry them
    with pytest.raises(MalformedNotification) as raised:
        parse_notification_body(body)
    assert str(raised.value).startswith(f"{path}: contains a lone surrogate (U+")
    assert raised.value.reason == "malformed-notification"


def test_non_ascii_text_that_is_valid_unicode_is_fine() -> None:
    data = notification()
    data["mail"]["source"] = "jürgen@example.com"
    assert parse_notification_body(json.dumps(data)).mail.source == "jürgen@example.com"


def test_an_ses_message_id_is_at_most_100_characters() -> None:
    assert parse_notification_body(json.dumps(notification(message_id="m" * 100))).mail
    with pytest.raises(MalformedNotification) as raised:
        parse_notification_body(json.dumps(notification(message_id="m" * 101)))
    assert str(raised.value) == (
        "mail.messageId: expected an SES message id of at most 100 characters, got 101 "
        f'characters ("{"m" * 56}...)'
    )
