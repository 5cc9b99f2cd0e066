"""The SendBounce request: every recipient bounced once, none dropped, dates in UTC, and the
validator naming each field that breaks an SES constraint (found by mutation testing,
``make mutation``)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bounce_runtime.core.decision import plan_message
from bounce_runtime.core.dsn import (
    SenderIdentity,
    build_send_bounce_request,
    format_timestamp,
    validate_send_bounce_request,
)
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import default_policy
from bounce_runtime.errors import InvalidBounceRequest
from support.events import notification

Accepts = Callable[[Mapping[str, Any]], None]
NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
DSN = "BouncedRecipientInfoList[1].RecipientDsnFields"
VALID: dict[str, Any] = {
    "OriginalMessageId": "msg-1",
    "BounceSender": "mailer-daemon@example.com",
    "MessageDsn": {
        "ReportingMta": "dns; example.com",
        "ExtensionFields": [{"Name": "X-A", "Value": "1"}],
    },
    "BouncedRecipientInfoList": [
        {"Recipient": "r@example.com", "BounceType": "DoesNotExist"},
        {
            "Recipient": "s@example.com",
            "RecipientDsnFields": {
                "Action": "failed",
                "Status": "5.1.1",
                "ExtensionFields": [{"Name": "X-B", "Value": "2"}],
            },
        },
    ],
}
BARE_FORM = (
    "one bare address local@domain is required (ASCII, an IDN domain as xn--; no display "
    "name, spaces or angle brackets)"
)


def edited(path: str, value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    """VALID with the field at ``path`` (dotted, list indices as numbers) set or deleted."""
    data = copy.deepcopy(VALID)
    *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
    target: Any = data
    for key in parents:
        target = target[key]
    if delete:
        del target[last]
    else:
        target[last] = value
    return data


def test_the_base_request_is_valid_without_a_final_recipient(botocore_accepts: Accepts) -> None:
    # FinalRecipient is optional: SES fills it in from Recipient.
    validate_send_bounce_request(VALID)
    botocore_accepts(VALID)


@pytest.mark.parametrize(
    ("request_data", "message"),
    [
        (
            edited("MessageDsn", "dns; example.com"),
            "MessageDsn: 'dns; example.com' is not an object",
        ),
        (
            edited("BouncedRecipientInfoList.0", "r@example.com"),
            "BouncedRecipientInfoList[0]: 'r@example.com' is not an object",
        ),
        (
            edited("BouncedRecipientInfoList.1.RecipientDsnFields", []),
            f"{DSN}: [] is not an object",
        ),
        (
            edited("MessageDsn.ExtensionFields", {"Name": "X-A", "Value": "1"}),
            "MessageDsn.ExtensionFields: {'Name': 'X-A', 'Value': '1'} is not a list of "
            "{Name, Value} objects",
        ),
        (
            edited("MessageDsn.ExtensionFields.0", "X-A: 1"),
            "MessageDsn.ExtensionFields[0]: 'X-A: 1' is not an object",
        ),
        (
            edited("MessageDsn.ExtensionFields.0.Name", delete=True),
            "MessageDsn.ExtensionFields[0].Name: missing; it is required",
        ),
        (
            edited("MessageDsn.ExtensionFields.0.Value", delete=True),
            "MessageDsn.ExtensionFields[0].Value: None is not a string",
        ),
        (
            edited("BouncedRecipientInfoList.1.RecipientDsnFields.ExtensionFields.0.Value", 2),
            f"{DSN}.ExtensionFields[0].Value: 2 is not a string",
        ),
        (
            edited("BouncedRecipientInfoList.1.RecipientDsnFields.ExtensionFields.0.Name", ""),
            f"{DSN}.ExtensionFields[0].Name: '' is not a non-empty string",
        ),
        (edited("OriginalMessageId", ""), "OriginalMessageId: '' is not a non-empty string"),
        (edited("OriginalMessageId", 5), "OriginalMessageId: 5 is not a non-empty string"),
        (
            edited("BouncedRecipientInfoList.0.Recipient", ""),
            "BouncedRecipientInfoList[0].Recipient: '' is not a non-empty string",
        ),
        (
            edited("BouncedRecipientInfoList.0.Recipient", "@example.com"),
            "BouncedRecipientInfoList[0].Recipient: '@example.com' has the local part '': 1 to 64 "
            "characters of A-Z, a-z, 0-9 and !#$%&'*+/=?^_`{|}~- in dot-separated runs is "
            "required",
        ),
        (
            edited("BouncedRecipientInfoList.0.Recipient", "r@@"),
            f"BouncedRecipientInfoList[0].Recipient: 'r@@' has 2 '@': {BARE_FORM}",
        ),
        (
            edited("BouncedRecipientInfoList.0.Recipient", "nobody"),
            f"BouncedRecipientInfoList[0].Recipient: 'nobody' has 0 '@': {BARE_FORM}",
        ),
        (
            edited("BounceSender", "bounces\r\n@example.com"),
            "BounceSender: 'bounces\\r\\n@example.com' has a display name, a space, a control "
            "character or angle brackets: one bare address local@domain is required (ASCII, an "
            "IDN domain as xn--; no display name, spaces or angle brackets)",
        ),
        (edited("BounceSender", delete=True), "BounceSender: missing; it is required"),
        (
            edited("BouncedRecipientInfoList.1.RecipientDsnFields.Status", delete=True),
            f"{DSN}.Status: missing; it is required",
        ),
    ],
)
def test_a_request_breaking_an_ses_constraint_is_refused_naming_the_field(
    request_data: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidBounceRequest) as raised:
        validate_send_bounce_request(request_data)
    assert str(raised.value) == message


def test_an_address_of_254_characters_is_the_longest_accepted() -> None:
    # RFC 5321 4.5.3.1: a path of at most 256 octets, so an address of at most 254.
    longest = "l" * 64 + "@" + ".".join(["d" * 61] * 3)[: 254 - 65 - 4] + ".com"
    assert len(longest) == 254
    validate_send_bounce_request(edited("BouncedRecipientInfoList.0.Recipient", longest))
    with pytest.raises(InvalidBounceRequest):
        validate_send_bounce_request(edited("BouncedRecipientInfoList.0.Recipient", "a" + longest))


def test_a_duplicate_recipient_does_not_drop_the_recipients_after_it() -> None:
    data = notification(recipients=["a@example.com", "A@Example.com", "b@example.com"])
    plan = plan_message(parse_notification_body(json.dumps(data)), default_policy(), now=NOW)
    request = build_send_bounce_request(plan, SenderIdentity("mailer-daemon@example.com"))
    assert request is not None
    recipients = [info["Recipient"] for info in request["BouncedRecipientInfoList"]]
    assert recipients == ["a@example.com", "b@example.com"]


def test_a_recipient_arn_is_found_for_a_parent_domain_two_levels_up() -> None:
    sender = SenderIdentity("b@example.com", recipient_arns={"example.com": "arn"})
    assert sender.recipient_arn("x@mx.eu.example.com") == "arn"
    assert sender.recipient_arn("x@example.org") is None


def test_a_recipient_arn_is_looked_up_by_the_domain_after_the_last_at() -> None:
    sender = SenderIdentity("b@example.com", recipient_arns={"example.com": "arn"})
    assert sender.recipient_arn('"a@b"@example.com') == "arn"


def test_timestamps_are_written_in_utc_whatever_the_local_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset here: the local time zone cannot be changed")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        eastern = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=-4)))
        assert format_timestamp(eastern) == "2024-05-01T12:00:00.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()
