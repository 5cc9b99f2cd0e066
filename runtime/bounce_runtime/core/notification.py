"""Parses the SES "Received" notification that a receipt rule's S3 action publishes.

The body is the notification itself (SNS raw message delivery) or an SNS envelope whose
``Message`` is the notification as a JSON string. Anything else raises ``MalformedNotification``
whose message starts with the field path that is wrong, e.g. ``mail.messageId: missing``.

Strict only where the runtime uses a field: the ids, recipients, source, timestamps, verdicts,
headers and the S3 action's type, bucket and key (and ``mail.destination``, a list of strings).
Fields it never uses (``processingTimeMillis``, ``dmarcPolicy``, ``mail.commonHeaders``,
``receipt.action.topicArn``) are read when they have the documented form and otherwise left
empty: a form SES or an older guide gives them (the SES developer guide calls
``processingTimeMillis`` "a string") never turns a message into ``malformed-notification``.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

from bounce_runtime.errors import MalformedNotification

VERDICT_NAMES = ("spam", "virus", "spf", "dkim", "dmarc")
VERDICT_STATUSES = ("PASS", "FAIL", "GRAY", "PROCESSING_FAILED")
_VERDICT_FIELDS = {
    "spam": "spamVerdict",
    "virus": "virusVerdict",
    "spf": "spfVerdict",
    "dkim": "dkimVerdict",
    "dmarc": "dmarcVerdict",
}
_DESCRIBE_MAX_CHARS = 60
# An SES message id: one S3 key segment of ASCII letters, digits, '.', '_' and '-'. The ids of
# received mail in the SES developer guide's examples have 28 and 40 characters; SES documents no
# bound. 100 leaves room for a longer form and keeps the object key (a prefix of at most 900
# characters, as the construct allows, + the id) within S3's 1,024 bytes.
SES_MESSAGE_ID_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]*"
SES_MESSAGE_ID_MAX_CHARS: Final = 100
# A timestamp must leave room for its SendBounce window (24 h) and margins after it.
_LATEST_OFFSET = timedelta(days=2)


class Header(NamedTuple):
    """One header field as SES lists it (``mail.headers``) or as read from the stored message."""

    name: str
    value: str


class CommonHeaders(NamedTuple):
    """``mail.commonHeaders``: SES's parsed copy of a few headers (absent fields are empty)."""

    from_: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    return_path: str | None = None
    date: str | None = None
    message_id: str | None = None
    subject: str | None = None


class Verdicts(NamedTuple):
    """Scan results; each is PASS, FAIL, GRAY or PROCESSING_FAILED, or None when not scanned."""

    spam: str | None = None
    virus: str | None = None
    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None
    dmarc_policy: str | None = None


class S3Action(NamedTuple):
    """``receipt.action``: where the S3 action stored the message (the key includes the prefix)."""

    bucket_name: str
    object_key: str
    topic_arn: str | None = None


class Receipt(NamedTuple):
    """``receipt``: the envelope recipients this rule matched, verdicts and the S3 action."""

    timestamp: datetime
    recipients: tuple[str, ...]
    verdicts: Verdicts
    action: S3Action
    processing_time_millis: int | None = None


class Mail(NamedTuple):
    """``mail``: the message as SES received it."""

    message_id: str
    timestamp: datetime
    source: str
    destination: tuple[str, ...]
    headers_truncated: bool
    headers: tuple[Header, ...]
    common_headers: CommonHeaders = CommonHeaders()


class ReceivedNotification(NamedTuple):
    """A parsed "Received" notification; ``sns_message_id`` is set when it came in an envelope."""

    mail: Mail
    receipt: Receipt
    sns_message_id: str | None = None


def _describe(value: object) -> str:
    """A short JSON rendering of a bad value for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=True, default=str)
    except (ValueError, RecursionError):
        text = f"a deeply nested {type(value).__name__}"
    if len(text) > _DESCRIBE_MAX_CHARS:
        text = text[: _DESCRIBE_MAX_CHARS - 3] + "..."
    return text


def _fail(path: str, problem: str) -> MalformedNotification:
    return MalformedNotification(f"{path}: {problem}")


def _object(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = _required(data, key, path)
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_describe(value)}")
    return value


def _required(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise _fail(path, "missing")
    return data[key]


def _string(data: Mapping[str, Any], key: str, path: str, *, non_empty: bool = True) -> str:
    value = _required(data, key, path)
    if not isinstance(value, str) or (non_empty and not value):
        kind = "a non-empty string" if non_empty else "a string"
        raise _fail(path, f"expected {kind}, got {_describe(value)}")
    _require_unicode(value, path)
    return value


def _require_unicode(text: str, path: str) -> None:
    """Refuse text UTF-8 cannot encode (a lone surrogate, from a JSON escape such as "\\ud800"):
    nothing downstream (SES, SQS, the logs) could carry it."""
    if text.isascii():  # O(1): the common case (and the vocabulary is not imported for it)
        return
    from bounce_runtime.core.vocabulary import unicode_problem

    problem = unicode_problem(text)
    if problem is not None:
        raise _fail(path, problem)


def _valid_text(value: object) -> bool:
    """Whether ``value`` is a string UTF-8 can encode (for the fields the runtime never uses)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    from bounce_runtime.core.vocabulary import unicode_problem

    return unicode_problem(value) is None


def _unused_string(data: Mapping[str, Any], key: str) -> str | None:
    """A field the runtime never uses: its text, or None when it is absent or of another form."""
    value = data.get(key)
    return value if _valid_text(value) else None


def _unused_strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list field the runtime never uses: its strings (others dropped), or () when it is absent
    or not a list."""
    value = data.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if _valid_text(item))


def _unused_integer(data: Mapping[str, Any], key: str) -> int | None:
    """An integer field the runtime never uses, also when written as a string of digits (``"574"``);
    None when it is absent or of another form."""
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _string_list(
    data: Mapping[str, Any], key: str, path: str, *, non_empty: bool
) -> tuple[str, ...]:
    value = _required(data, key, path)
    if (
        not isinstance(value, list)
        or (non_empty and not value)
        or not all(isinstance(item, str) for item in value)
    ):
        kind = "a non-empty list of strings" if non_empty else "a list of strings"
        raise _fail(path, f"expected {kind}, got {_describe(value)}")
    for index, item in enumerate(value):
        _require_unicode(item, f"{path}[{index}]")
    return tuple(value)


def _timestamp(data: Mapping[str, Any], key: str, path: str) -> datetime:
    text = _string(data, key, path)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        moment = parsed.astimezone(UTC)
        if moment > datetime.max.replace(tzinfo=UTC) - _LATEST_OFFSET:
            raise OverflowError("the end of its SendBounce window is past the last date")
        return moment
    except (ValueError, OverflowError):
        raise _fail(
            path, f"expected an ISO 8601 timestamp with a time zone, got {_describe(text)}"
        ) from None


def _headers(mail: Mapping[str, Any]) -> tuple[Header, ...]:
    value = _required(mail, "headers", "mail.headers")
    if not isinstance(value, list):
        raise _fail(
            "mail.headers", f"expected a list of name/value objects, got {_describe(value)}"
        )
    headers = []
    for index, item in enumerate(value):
        path = f"mail.headers[{index}]"
        if not isinstance(item, dict):
            raise _fail(path, f"expected an object with name and value, got {_describe(item)}")
        headers.append(
            Header(
                name=_string(item, "name", f"{path}.name"),
                value=_string(item, "value", f"{path}.value", non_empty=False),
            )
        )
    return tuple(headers)


def _common_headers(mail: Mapping[str, Any]) -> CommonHeaders:
    """``mail.commonHeaders`` (never used by the runtime): what has the documented form."""
    common = mail.get("commonHeaders")
    if not isinstance(common, dict):
        return CommonHeaders()
    return CommonHeaders(
        from_=_unused_strings(common, "from"),
        to=_unused_strings(common, "to"),
        return_path=_unused_string(common, "returnPath"),
        date=_unused_string(common, "date"),
        message_id=_unused_string(common, "messageId"),
        subject=_unused_string(common, "subject"),
    )


def _mail(notification: Mapping[str, Any]) -> Mail:
    mail = _object(notification, "mail", "mail")
    truncated = _required(mail, "headersTruncated", "mail.headersTruncated")
    if not isinstance(truncated, bool):
        raise _fail("mail.headersTruncated", f"expected true or false, got {_describe(truncated)}")
    message_id = _string(mail, "messageId", "mail.messageId")
    if len(message_id) > SES_MESSAGE_ID_MAX_CHARS:
        raise _fail(
            "mail.messageId",
            f"expected an SES message id of at most {SES_MESSAGE_ID_MAX_CHARS} characters, got "
            f"{len(message_id)} characters ({_describe(message_id)})",
        )
    return Mail(
        message_id=message_id,
        timestamp=_timestamp(mail, "timestamp", "mail.timestamp"),
        source=_string(mail, "source", "mail.source", non_empty=False),
        destination=_string_list(mail, "destination", "mail.destination", non_empty=False),
        headers_truncated=truncated,
        headers=_headers(mail),
        common_headers=_common_headers(mail),
    )


def _verdicts(receipt: Mapping[str, Any]) -> Verdicts:
    statuses: dict[str, str | None] = {}
    for name, key in _VERDICT_FIELDS.items():
        path = f"receipt.{key}"
        if receipt.get(key) is None:
            statuses[name] = None
            continue
        verdict = _object(receipt, key, path)
        status = _string(verdict, "status", f"{path}.status")
        if status not in VERDICT_STATUSES:
            raise _fail(
                f"{path}.status",
                f"{_describe(status)} is not one of {', '.join(VERDICT_STATUSES)}",
            )
        statuses[name] = status
    return Verdicts(
        **statuses,
        dmarc_policy=_unused_string(receipt, "dmarcPolicy"),
    )


def _action(receipt: Mapping[str, Any]) -> S3Action:
    action = _object(receipt, "action", "receipt.action")
    action_type = _required(action, "type", "receipt.action.type")
    if action_type != "S3":
        raise _fail(
            "receipt.action.type",
            f'expected "S3" (the runtime reads the message the S3 action stored), '
            f"got {_describe(action_type)}",
        )
    return S3Action(
        bucket_name=_string(action, "bucketName", "receipt.action.bucketName"),
        object_key=_string(action, "objectKey", "receipt.action.objectKey"),
        topic_arn=_unused_string(action, "topicArn"),
    )


def _receipt(notification: Mapping[str, Any]) -> Receipt:
    receipt = _object(notification, "receipt", "receipt")
    return Receipt(
        timestamp=_timestamp(receipt, "timestamp", "receipt.timestamp"),
        recipients=_string_list(receipt, "recipients", "receipt.recipients", non_empty=True),
        verdicts=_verdicts(receipt),
        action=_action(receipt),
        processing_time_millis=_unused_integer(receipt, "processingTimeMillis"),
    )


def _load_json(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise _fail(path, f"not JSON ({type(error).__name__}: {str(error)[:80]})") from None


def _unwrap_envelope(envelope: Mapping[str, Any]) -> tuple[Any, str | None]:
    if envelope.get("Type") != "Notification":
        raise _fail(
            "Type", f'expected "Notification" (an SNS envelope), got {_describe(envelope["Type"])}'
        )
    message = _string(envelope, "Message", "Message")
    sns_message_id = envelope.get("MessageId")
    return (
        _load_json(message, "Message"),
        sns_message_id if isinstance(sns_message_id, str) else None,
    )


def parse_notification_body(body: str) -> ReceivedNotification:
    """Parse an SQS body: the raw SES notification, or the same inside an SNS envelope."""
    data = _load_json(body, "body")
    if not isinstance(data, dict):
        raise _fail("body", f"expected a JSON object, got {_describe(data)}")
    sns_message_id = None
    if "Type" in data and "notificationType" not in data:
        data, sns_message_id = _unwrap_envelope(data)
        if not isinstance(data, dict):
            raise _fail("Message", f"expected a JSON object, got {_describe(data)}")
    notification_type = _required(data, "notificationType", "notificationType")
    if notification_type != "Received":
        raise _fail("notificationType", f'expected "Received", got {_describe(notification_type)}')
    return ReceivedNotification(
        mail=_mail(data), receipt=_receipt(data), sns_message_id=sns_message_id
    )
