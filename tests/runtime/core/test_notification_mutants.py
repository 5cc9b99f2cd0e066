"""The notification parser names the exact field and value that is wrong, takes what SES may
leave empty, and reads every field it keeps (found by mutation testing, ``make mutation``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bounce_runtime.core.notification import (
    CommonHeaders,
    Header,
    ReceivedNotification,
    parse_notification_body,
)
from bounce_runtime.errors import MalformedNotification
from support.events import notification, sns_envelope

Edit = Callable[[dict[str, Any]], None]


def parse(data: Any) -> ReceivedNotification:
    return parse_notification_body(json.dumps(data))


def edited(edit: Edit) -> dict[str, Any]:
    data = notification()
    edit(data)
    return data


def set_at(path: str, value: Any) -> Edit:
    """An edit setting the field at the dotted ``path`` (``mail.commonHeaders.from``)."""
    *parents, last = path.split(".")

    def edit(data: dict[str, Any]) -> None:
        for name in parents:
            data = data[name]
        data[last] = value

    return edit


def delete_at(path: str) -> Edit:
    *parents, last = path.split(".")

    def edit(data: dict[str, Any]) -> None:
        for name in parents:
            data = data[name]
        del data[last]

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (set_at("mail", []), "mail: expected an object, got []"),
        (delete_at("mail.headersTruncated"), "mail.headersTruncated: missing"),
        (delete_at("mail.headers"), "mail.headers: missing"),
        (
            set_at("mail.headers", "Subject: hi"),
            'mail.headers: expected a list of name/value objects, got "Subject: hi"',
        ),
        (
            set_at("mail.headers", ["Subject: hi"]),
            'mail.headers[0]: expected an object with name and value, got "Subject: hi"',
        ),
        (set_at("mail.headers", [{"value": "hi"}]), "mail.headers[0].name: missing"),
        (set_at("mail.source", None), "mail.source: expected a string, got null"),
        (delete_at("mail.destination"), "mail.destination: missing"),
        (delete_at("receipt.recipients"), "receipt.recipients: missing"),
        (set_at("mail.destination", "a"), 'mail.destination: expected a list of strings, got "a"'),
        (set_at("mail.timestamp", 5), "mail.timestamp: expected a non-empty string, got 5"),
        (
            set_at("receipt.spamVerdict", "PASS"),
            'receipt.spamVerdict: expected an object, got "PASS"',
        ),
        (set_at("receipt.dkimVerdict", {}), "receipt.dkimVerdict.status: missing"),
        (set_at("receipt.action", "S3"), 'receipt.action: expected an object, got "S3"'),
        (delete_at("receipt.action.type"), "receipt.action.type: missing"),
        (
            set_at("receipt.action.bucketName", ""),
            'receipt.action.bucketName: expected a non-empty string, got ""',
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_field_is_named_with_its_value(edit: Edit, message: str) -> None:
    with pytest.raises(MalformedNotification) as raised:
        parse(edited(edit))
    assert str(raised.value) == message


def test_what_ses_may_leave_empty_is_accepted() -> None:
    data = edited(set_at("mail.headers", [{"name": "X-Empty", "value": ""}]))
    data["mail"]["source"] = ""
    data["mail"]["destination"] = []
    data["mail"]["commonHeaders"] = {"from": [], "returnPath": "", "subject": None}
    parsed = parse(data)
    assert parsed.mail.headers == (Header("X-Empty", ""),)
    assert (parsed.mail.source, parsed.mail.destination) == ("", ())
    assert parsed.mail.common_headers == CommonHeaders(return_path="")


def test_every_common_header_is_read() -> None:
    common = {
        "returnPath": "bounces@example.net",
        "from": ["Sender <sender@example.net>"],
        "to": ["recipient@example.com", "other@example.com"],
        "date": "Wed, 1 May 2024 12:00:00 +0000",
        "messageId": "<abc@example.net>",
        "subject": "Quarterly numbers",
    }
    parsed = parse(edited(set_at("mail.commonHeaders", common)))
    assert parsed.mail.common_headers == CommonHeaders(
        from_=("Sender <sender@example.net>",),
        to=("recipient@example.com", "other@example.com"),
        return_path="bounces@example.net",
        date="Wed, 1 May 2024 12:00:00 +0000",
        message_id="<abc@example.net>",
        subject="Quarterly numbers",
    )


def test_the_dmarc_policy_and_topic_are_read() -> None:
    data = edited(set_at("receipt.dmarcPolicy", "reject"))
    parsed = parse(data)
    assert parsed.receipt.verdicts.dmarc_policy == "reject"
    assert parsed.receipt.action.topic_arn == data["receipt"]["action"]["topicArn"]


def test_a_bad_value_is_shown_in_ascii_cut_to_sixty_characters() -> None:
    with pytest.raises(MalformedNotification) as raised:
        parse(edited(set_at("mail", "é" + "x" * 52)))  # as JSON: 60 characters
    assert str(raised.value) == 'mail: expected an object, got "\\u00e9' + "x" * 52 + '"'
    with pytest.raises(MalformedNotification) as raised:
        parse(edited(set_at("mail", "é" + "x" * 53)))
    assert str(raised.value) == 'mail: expected an object, got "\\u00e9' + "x" * 50 + "..."


def test_a_value_too_deep_to_render_is_described_by_its_type() -> None:
    from bounce_runtime.core.notification import _describe

    circular: list[Any] = []
    circular.append(circular)
    assert _describe(circular) == "a deeply nested list"


def test_a_long_json_error_is_cut_to_eighty_characters() -> None:
    body = "{" + " " * 99_998 + "x"
    with pytest.raises(MalformedNotification) as raised:
        parse_notification_body(body)
    problem = "Expecting property name enclosed in double quotes: line 1 column 100000 (char 99999)"
    assert str(raised.value) == f"body: not JSON (JSONDecodeError: {problem[:80]})"


def test_the_last_timestamp_whose_window_can_end_is_accepted() -> None:
    latest = "9999-12-29T23:59:59.999999+00:00"  # two days before the last date
    parsed = parse(notification(timestamp=latest))
    assert parsed.mail.timestamp == datetime(9999, 12, 29, 23, 59, 59, 999999, tzinfo=UTC)
    with pytest.raises(MalformedNotification) as raised:
        parse(notification(timestamp="9999-12-30T00:00:00+00:00"))
    assert str(raised.value) == (
        "mail.timestamp: expected an ISO 8601 timestamp with a time zone, got "
        '"9999-12-30T00:00:00+00:00"'
    )


def test_a_notification_with_a_type_field_is_not_taken_for_an_envelope() -> None:
    data = notification()
    data["Type"] = "Notification"
    assert parse(data).sns_message_id is None


def test_an_envelope_message_id_that_is_not_a_string_is_dropped() -> None:
    envelope = sns_envelope(notification())
    envelope["MessageId"] = 5
    assert parse(envelope).sns_message_id is None


def test_an_envelope_whose_message_is_not_an_object_is_named() -> None:
    with pytest.raises(MalformedNotification) as raised:
        parse(sns_envelope('"just text"'))
    assert str(raised.value) == 'Message: expected a JSON object, got "just text"'
