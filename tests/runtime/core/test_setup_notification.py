"""SES's setup notification is recognised by its message id alone, in a raw body or an SNS
envelope, whatever else it carries; nothing else is taken for it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bounce_runtime.core.setup_notification import is_setup_notification
from support.events import notification, sns_envelope

SETUP_ID = "AMAZON_SES_SETUP_NOTIFICATION"


@pytest.mark.parametrize(
    "body",
    [
        {"mail": {"messageId": SETUP_ID}},
        {"notificationType": "Received", "mail": {"messageId": SETUP_ID}, "receipt": {}},
        notification(message_id=SETUP_ID),
        notification(message_id=SETUP_ID, recipients=[]),
        sns_envelope({"notificationType": "Received", "mail": {"messageId": SETUP_ID}}),
        sns_envelope(notification(message_id=SETUP_ID)),
        # A raw notification that also has a "Type" field is read as raw (as the parser does).
        {"Type": "Notification", "notificationType": "Received", "mail": {"messageId": SETUP_ID}},
    ],
)
def test_the_setup_notification_is_recognised(body: dict[str, Any]) -> None:
    assert is_setup_notification(json.dumps(body)) is True


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(notification()),
        json.dumps(sns_envelope(notification())),
        json.dumps({"mail": {"messageId": SETUP_ID.lower()}}),
        json.dumps({"mail": {"messageId": [SETUP_ID]}}),
        json.dumps({"mail": SETUP_ID}),
        json.dumps({"messageId": SETUP_ID}),
        json.dumps({"Type": "Notification", "Message": {"mail": {"messageId": SETUP_ID}}}),
        json.dumps({"Type": "Notification", "Message": "not json"}),
        json.dumps([{"mail": {"messageId": SETUP_ID}}]),
        "not json",
        "",
    ],
)
def test_anything_else_is_left_to_the_strict_parser(text: str) -> None:
    assert is_setup_notification(text) is False


def test_json_nested_too_deep_is_left_to_the_strict_parser() -> None:
    assert is_setup_notification("[" * 100_000) is False
