"""No backscatter through the real Lambda handler when SES truncated the headers: the stored header
block is read as RFC 5322 writes it (obsolete forms, odd lines), and a guard header anywhere in it
stops the bounce (moto S3 and SQS, the local SES over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bounce_runtime.handler import handler
from support.events import BUCKET, OBJECT_KEY_PREFIX, notification, sqs_event, sqs_record
from support.handler_world import Context, World, handler_world

# 400 Received lines: far more than the 10 KB that make SES truncate the notification's headers.
RECEIVED_400 = b"".join(
    b"Received: from relay%d.example.net by mx.example.com; Fri, 11 Sep 2015\r\n" % number
    for number in range(400)
)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with handler_world(monkeypatch) as created:
        yield created


def deliver(world: World, message_id: str, stored: bytes, **fields: Any) -> None:
    """Store ``stored`` as the mail object and hand the handler its truncated notification."""
    world.s3.put_object(Bucket=BUCKET, Key=OBJECT_KEY_PREFIX + message_id, Body=stored)
    received = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    fields.setdefault("headers_truncated", True)
    fields.setdefault("headers", [("Received", "from relay0.example.net by mx.example.com")])
    body = notification(message_id=message_id, timestamp=received.replace("+00:00", "Z"), **fields)
    assert handler(sqs_event([sqs_record(body, message_id="sqs-" + message_id)]), Context()) == {
        "batchItemFailures": []
    }


def suppressed_reasons(output: str) -> dict[str, int]:
    """RecipientsSuppressed by Reason, from the EMF lines the handler printed."""
    found: dict[str, int] = {}
    for line in output.splitlines():
        record = json.loads(line)
        if "_aws" in record and "Reason" in record and "RecipientsSuppressed" in record:
            reason = record["Reason"]
            found[reason] = found.get(reason, 0) + record["RecipientsSuppressed"]
    return found


@pytest.mark.parametrize(
    ("guard", "reason"),
    [
        (b"Auto-Submitted: auto-replied", "auto-submitted"),
        (b"Precedence: bulk", "list-traffic"),
        (b"List-Id: <news.example.net>", "list-traffic"),
        (b"X-Auto-Response-Suppress: All", "no-ndr-requested"),
    ],
)
@pytest.mark.parametrize(
    "odd_line",
    [b"X-Mailer : x", b"X-Mailer\t: x", b"X-Mailer: x\r\r"],
    ids=["space-before-colon", "tab-before-colon", "bare-cr-cr"],
)
def test_a_guard_header_behind_an_obsolete_form_stops_the_bounce(
    world: World, capsys: pytest.CaptureFixture[str], odd_line: bytes, guard: bytes, reason: str
) -> None:
    stored = RECEIVED_400 + odd_line + b"\r\n" + guard + b"\r\n\r\nHello\r\n"
    deliver(world, "mail-g", stored)
    assert world.bounced_ids() == []
    assert suppressed_reasons(capsys.readouterr().out) == {reason: 1}


@pytest.mark.parametrize(
    "odd_line",
    [b"X\x00Mailer: x", b"X-Mail\xe9r: x", b"this line is no header field"],
    ids=["nul-in-name", "8-bit-in-name", "no-colon"],
)
def test_a_guard_header_behind_an_unreadable_line_stops_the_bounce(
    world: World, capsys: pytest.CaptureFixture[str], odd_line: bytes
) -> None:
    stored = RECEIVED_400 + odd_line + b"\r\nAuto-Submitted: auto-generated\r\n\r\nHello\r\n"
    deliver(world, "mail-u", stored)
    assert world.bounced_ids() == []
    assert suppressed_reasons(capsys.readouterr().out) == {"auto-submitted": 1}


def test_an_unreadable_line_alone_stops_the_bounce(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = RECEIVED_400 + b"X\x00Mailer: x\r\nSubject: hi\r\n\r\nHello\r\n"
    deliver(world, "mail-n", stored)
    assert world.bounced_ids() == []
    assert suppressed_reasons(capsys.readouterr().out) == {"header-block-unreadable": 1}


def test_the_obsolete_forms_without_a_guard_header_are_bounced(world: World) -> None:
    """The control: the same block read whole, nothing forbids the bounce, and it goes out."""
    stored = RECEIVED_400 + b"X-Mailer : x\r\nX-Other\t: y\r\nSubject: hi\r\n\r\nHello\r\n"
    deliver(world, "mail-b", stored)
    assert world.bounced_ids() == ["mail-b"]


@pytest.mark.parametrize(
    "source",
    ['"mailer-daemon"@example.net', "@relay.example.net:mailer-daemon@example.net", "< >"],
)
def test_daemon_and_null_senders_in_every_reverse_path_form_are_not_bounced(
    world: World, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    deliver(world, "mail-s", b"Subject: hi\r\n\r\nHello\r\n", source=source)
    assert world.bounced_ids() == []
    expected = "null-sender" if source == "< >" else "daemon-sender"
    assert suppressed_reasons(capsys.readouterr().out) == {expected: 1}


@pytest.mark.parametrize(
    ("name", "reason"),
    [(" Auto-Submitted ", "auto-submitted"), ("List-Id ", "list-traffic")],
)
def test_a_notification_header_name_with_surrounding_spaces_is_matched(
    world: World, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    headers = [("From", "sender@example.net"), (name, "auto-replied")]
    deliver(world, "mail-h", b"", headers_truncated=False, headers=headers)
    assert world.bounced_ids() == []
    assert suppressed_reasons(capsys.readouterr().out) == {reason: 1}


def test_a_notification_whose_unused_fields_have_another_form_is_bounced(world: World) -> None:
    """processingTimeMillis as a string (as the SES developer guide calls it) and dmarcPolicy as
    an object: fields the runtime never uses do not dead-letter the message."""
    received = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    body = notification(message_id="mail-f", timestamp=received.replace("+00:00", "Z"))
    body["receipt"]["processingTimeMillis"] = "574"
    body["receipt"]["dmarcPolicy"] = {"status": "none"}
    world.s3.put_object(
        Bucket=BUCKET, Key=OBJECT_KEY_PREFIX + "mail-f", Body=b"Subject: hi\r\n\r\n"
    )
    response = handler(sqs_event([sqs_record(body, message_id="sqs-mail-f")]), Context())
    assert response == {"batchItemFailures": []}
    assert world.bounced_ids() == ["mail-f"]
    assert world.dead_letters() == []
