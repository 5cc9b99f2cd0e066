"""SES's setup notification: published through the receipt rule's topic when the rule is saved.

Its ``mail.messageId`` is ``AMAZON_SES_SETUP_NOTIFICATION`` (the id other projects' handlers
skip); its shape is not documented, so nothing else in it is trusted or required: no recipients,
verdicts or headers are assumed, and whatever it carries is never acted on. Recognised before the
strict notification parser, in a raw SQS body or inside an SNS envelope.

Pure: standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

SETUP_NOTIFICATION_MESSAGE_ID: Final = "AMAZON_SES_SETUP_NOTIFICATION"


def is_setup_notification(body: str) -> bool:
    """True when ``body`` (an SQS body) is SES's setup notification: its ``mail.messageId``,
    directly or in an SNS envelope's ``Message``, is ``AMAZON_SES_SETUP_NOTIFICATION``.
    Anything that is not JSON, or has another id, is False (the strict parser judges it)."""
    data = _json(body)
    if isinstance(data, Mapping) and "notificationType" not in data and "Type" in data:
        message = data.get("Message")
        data = _json(message) if isinstance(message, str) else None
    if not isinstance(data, Mapping):
        return False
    mail = data.get("mail")
    return isinstance(mail, Mapping) and mail.get("messageId") == SETUP_NOTIFICATION_MESSAGE_ID


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
