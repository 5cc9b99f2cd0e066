"""Puts a record that can never succeed on the dead-letter queue, with its reason."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bounce_runtime.contract import (
    DLQ_ATTR_DETAIL,
    DLQ_ATTR_REASON,
    DLQ_ATTR_SES_MESSAGE_ID,
    DLQ_ATTR_SQS_MESSAGE_ID,
    DLQ_DETAIL_MAX_CHARS,
)

if TYPE_CHECKING:
    from bounce_runtime.adapters.protocols import SendMessageClient

# Characters SQS refuses in message attribute values (outside XML 1.0 Char).
# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
_NOT_SQS_TEXT = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"


def _attribute_text(value: str, limit: int | None = None) -> str:
    text = re.sub(_NOT_SQS_TEXT, "\ufffd", value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


class DeadLetterQueue:
    """Sends the original SQS body, unchanged, with attributes that say why it failed."""

    def __init__(self, client: SendMessageClient, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(
        self,
        *,
        body: str,
        reason: str,
        detail: str,
        sqs_message_id: str,
        ses_message_id: str | None = None,
    ) -> None:
        """Send one dead letter; attributes ``reason``, ``detail``, ``sqs-message-id`` and
        ``ses-message-id`` (when known). Empty values are left out (SQS refuses them)."""
        values = {
            DLQ_ATTR_REASON: _attribute_text(reason),
            DLQ_ATTR_DETAIL: _attribute_text(detail or reason, DLQ_DETAIL_MAX_CHARS),
            DLQ_ATTR_SQS_MESSAGE_ID: _attribute_text(sqs_message_id),
            DLQ_ATTR_SES_MESSAGE_ID: _attribute_text(ses_message_id or ""),
        }
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in values.items()
            if value
        }
        self._client.send_message(
            QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes
        )
