"""Fields the runtime never uses never make a message ``malformed-notification``: a form SES or an
older AWS guide gives them is read or left empty, and the message is decided as usual. The fields
the runtime uses stay strict."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.core.decision import plan_message
from bounce_runtime.core.notification import CommonHeaders, parse_notification_body
from bounce_runtime.core.policy import default_policy
from bounce_runtime.errors import MalformedNotification
from support.events import notification

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def with_field(path: str, value: Any) -> str:
    data = notification()
    *parents, last = path.split(".")
    target = data
    for name in parents:
        target = target[name]
    target[last] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("receipt.dmarcPolicy", {"status": "reject"}),  # an object, as an older guide shows it
        ("receipt.dmarcPolicy", ["reject"]),
        ("receipt.dmarcPolicy", 5),
        ("receipt.dmarcPolicy", "\ud800"),  # text no one downstream could carry
        ("receipt.processingTimeMillis", "574"),  # "a string", says the SES developer guide
        ("receipt.processingTimeMillis", "574 ms"),
        ("receipt.processingTimeMillis", 1.5),
        ("receipt.processingTimeMillis", True),
        ("mail.commonHeaders", []),
        ("mail.commonHeaders", {"from": "a@example.net", "to": [1], "subject": 5, "date": {}}),
        ("receipt.action.topicArn", 5),
    ],
)
def test_an_unused_field_of_another_form_is_read_and_the_message_decided(
    path: str, value: Any
) -> None:
    parsed = parse_notification_body(with_field(path, value))
    plan = plan_message(parsed, default_policy(), now=NOW)
    assert (plan.outcome, plan.reason) == ("bounce", "policy")


def test_what_has_the_documented_form_is_kept() -> None:
    parsed = parse_notification_body(with_field("receipt.processingTimeMillis", "574"))
    assert parsed.receipt.processing_time_millis == 574
    parsed = parse_notification_body(with_field("receipt.dmarcPolicy", {"status": "reject"}))
    assert parsed.receipt.verdicts.dmarc_policy is None
    common = {"from": ["a@example.net", 5], "subject": "hi", "date": 7}
    parsed = parse_notification_body(with_field("mail.commonHeaders", common))
    assert parsed.mail.common_headers == CommonHeaders(from_=("a@example.net",), subject="hi")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("mail.messageId", 5, "mail.messageId: expected a non-empty string, got 5"),
        ("mail.source", ["a@example.net"], 'mail.source: expected a string, got ["a@example.net"]'),
        ("receipt.recipients", [], "receipt.recipients: expected a non-empty list of strings, "
         "got []"),
        ("receipt.spfVerdict", {"status": "ok"}, 'receipt.spfVerdict.status: "ok" is not one of '
         "PASS, FAIL, GRAY, PROCESSING_FAILED"),
        ("receipt.timestamp", 1714564800, "receipt.timestamp: expected a non-empty string, got "
         "1714564800"),
        ("receipt.action.bucketName", 5, "receipt.action.bucketName: expected a non-empty string, "
         "got 5"),
        ("receipt.action.objectKey", None, "receipt.action.objectKey: expected a non-empty string, "
         "got null"),
        ("mail.headers", {"Subject": "hi"}, 'mail.headers: expected a list of name/value objects, '
         'got {"Subject": "hi"}'),
    ],
)  # fmt: skip
def test_the_fields_the_runtime_uses_stay_strict(path: str, value: Any, message: str) -> None:
    with pytest.raises(MalformedNotification) as raised:
        parse_notification_body(with_field(path, value))
    assert str(raised.value) == message


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
UNUSED = [
    "receipt.dmarcPolicy",
    "receipt.processingTimeMillis",
    "mail.commonHeaders",
    "mail.commonHeaders.from",
    "mail.commonHeaders.subject",
    "receipt.action.topicArn",
]


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(UNUSED), value=JSON_VALUES)
def test_any_value_of_an_unused_field_parses(path: str, value: Any) -> None:
    parsed = parse_notification_body(with_field(path, value))
    assert plan_message(parsed, default_policy(), now=NOW).outcome == "bounce"
