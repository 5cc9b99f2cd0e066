"""Builds and checks the SendBounce request (SES v1) for a message plan.

The request is the exact JSON shape ``aws ses send-bounce --cli-input-json`` takes (PascalCase
keys; dates as ISO 8601 strings, which botocore's serializer accepts too), so a dead-lettered
message can be replayed with the AWS CLI.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from bounce_runtime.contract import identity_arn_problem, recipient_key
from bounce_runtime.core.addresses import bare_address_problem, regex
from bounce_runtime.core.decision import MessagePlan
from bounce_runtime.core.notification import SES_MESSAGE_ID_MAX_CHARS, SES_MESSAGE_ID_PATTERN
from bounce_runtime.core.vocabulary import (
    BOUNCE_TYPES,
    DSN_ACTIONS,
    diagnostic_problem,
    explanation_problem,
    extension_name_problem,
    extension_value_problem,
    mta_problem,
    status_action_problem,
    status_problem,
    unicode_problem,
)
from bounce_runtime.errors import InvalidBounceRequest, short_repr

# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
_RFC822_PREFIX = r"(?i)\s*rfc\s*822\s*;"
# Recipients in one SendBounce request. SES documents no bound on BouncedRecipientInfoList (nor on
# the recipients of a received message); RFC 5321 4.5.3.1.8 has an SMTP server accept at least 100
# recipients per message, so 100 covers every message a sender can count on delivering in one
# transaction, and keeps the request small. A message with more bounced recipients is
# dead-lettered (invalid-request), never sent in part.
MAX_BOUNCED_RECIPIENTS = 100
_REQUEST_FIELDS = (
    "OriginalMessageId",
    "BounceSender",
    "Explanation",
    "MessageDsn",
    "BouncedRecipientInfoList",
    "BounceSenderArn",
)
_MESSAGE_DSN_FIELDS = ("ReportingMta", "ArrivalDate", "ExtensionFields")
_RECIPIENT_FIELDS = ("Recipient", "RecipientArn", "BounceType", "RecipientDsnFields")
_RECIPIENT_DSN_FIELDS = (
    "FinalRecipient",
    "Action",
    "RemoteMta",
    "Status",
    "DiagnosticCode",
    "LastAttemptDate",
    "ExtensionFields",
)


class SenderIdentity(NamedTuple):
    """Who sends the bounces: the verified ``bounce_sender``, and identity ARNs for sending
    authorization (``recipient_arns``: lowercase recipient domain or address -> identity ARN)."""

    bounce_sender: str
    bounce_sender_arn: str | None = None
    recipient_arns: Mapping[str, str] = MappingProxyType({})

    def recipient_arn(self, recipient: str) -> str | None:
        """The ARN for ``recipient``: its exact address, else its domain, else a parent domain."""
        address = recipient_key(recipient)
        if address in self.recipient_arns:
            return self.recipient_arns[address]
        domain = address.rpartition("@")[2]
        while domain:
            if domain in self.recipient_arns:
                return self.recipient_arns[domain]
            domain = domain.partition(".")[2]
        return None


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _reporting_mta(plan: MessagePlan, sender: SenderIdentity) -> str:
    configured = plan.message.reporting_mta
    return configured or f"dns; {sender.bounce_sender.rpartition('@')[2]}"


def build_send_bounce_request(plan: MessagePlan, sender: SenderIdentity) -> dict[str, Any] | None:
    """The SendBounce request for every bounced recipient of ``plan``; None when none is bounced.

    Raises ``InvalidBounceRequest`` when the result breaks an SES constraint.
    """
    bounced = plan.bounced
    if not bounced:  # outcome is "bounce" exactly when a recipient is bounced
        return None
    mail = plan.notification.mail
    request: dict[str, Any] = {
        "OriginalMessageId": mail.message_id,  # checked as an SES message id below
        "BounceSender": sender.bounce_sender,
    }
    if plan.message.explanation is not None:
        request["Explanation"] = plan.message.explanation
    message_dsn: dict[str, Any] = {
        "ReportingMta": _reporting_mta(plan, sender),
        "ArrivalDate": format_timestamp(mail.timestamp),
    }
    if plan.message.extension_fields:
        message_dsn["ExtensionFields"] = _extension_list(plan.message.extension_fields)
    request["MessageDsn"] = message_dsn
    infos: list[dict[str, Any]] = []
    seen: set[str] = set()
    for decision in bounced:
        recipient = decision.recipient  # checked below: one bare address, never rewritten
        key = recipient_key(recipient)
        if key in seen or decision.bounce is None:
            continue
        seen.add(key)
        info: dict[str, Any] = {"Recipient": recipient}
        arn = sender.recipient_arn(recipient)
        if arn is not None:
            info["RecipientArn"] = arn
        bounce = decision.bounce
        if bounce.dsn is None:
            info["BounceType"] = bounce.bounce_type
        else:
            fields: dict[str, Any] = {
                "FinalRecipient": recipient,
                "Action": bounce.dsn_action,
                "Status": bounce.dsn_status,
            }
            diagnostic = bounce.dsn.diagnostic_code or (
                bounce.defaults.diagnostic_code if bounce.dsn.status is None else None
            )
            if diagnostic is not None:
                fields["DiagnosticCode"] = diagnostic
            if bounce.dsn.remote_mta is not None:
                fields["RemoteMta"] = bounce.dsn.remote_mta
            if bounce.dsn.last_attempt_date is not None:
                moment = (
                    mail.timestamp
                    if bounce.dsn.last_attempt_date == "mail"
                    else plan.notification.receipt.timestamp
                )
                fields["LastAttemptDate"] = format_timestamp(moment)
            if bounce.dsn.extension_fields:
                fields["ExtensionFields"] = _extension_list(bounce.dsn.extension_fields)
            info["RecipientDsnFields"] = fields
        infos.append(info)
    request["BouncedRecipientInfoList"] = infos
    if sender.bounce_sender_arn:
        request["BounceSenderArn"] = sender.bounce_sender_arn
    validate_send_bounce_request(request)
    return request


def _extension_list(fields: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in fields]


# Validation ---------------------------------------------------------------------------------


def _invalid(path: str, value: object, problem: str) -> InvalidBounceRequest:
    return InvalidBounceRequest(f"{path}: {short_repr(value)} {problem}")


def _structure(value: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(path, value, "is not an object")
    for key in value:
        if key not in allowed:
            raise _invalid(path, key, f"is not a field; allowed: {', '.join(allowed)}")
    return value


def _string(
    data: Mapping[str, Any],
    key: str,
    path: str,
    *,
    required: bool,
    problem: Callable[[str], str | None] | None = None,
) -> str | None:
    full_path = f"{path}.{key}" if path else key
    if key not in data:
        if required:
            raise InvalidBounceRequest(f"{full_path}: missing; it is required")
        return None
    value = data[key]
    if not isinstance(value, str) or not value:
        raise _invalid(full_path, value, "is not a non-empty string")
    found = unicode_problem(value) or (problem(value) if problem else None)
    if found:
        raise _invalid(full_path, value, found)
    return value


def _address_problem(value: str) -> str | None:
    """The one grammar of every address the runtime emits (``addresses.bare_address_problem``):
    a recipient with a space, a control character, a second '@' or a quoted local part is
    refused, never rewritten (a quoted local part is not supported anywhere, so none is sent)."""
    return bare_address_problem(value)


def _message_id_problem(value: str) -> str | None:
    if len(value) > SES_MESSAGE_ID_MAX_CHARS or not regex(SES_MESSAGE_ID_PATTERN).fullmatch(value):
        return (
            f"is not an SES message id: 1 to {SES_MESSAGE_ID_MAX_CHARS} characters of A-Z, a-z, "
            "0-9, '.', '_' and '-', starting with a letter or digit"
        )
    return None


def _final_recipient_problem(value: str) -> str | None:
    if re.match(_RFC822_PREFIX, value):
        return "must not start with 'rfc822;': give the bare address"
    return _address_problem(value)


def _enum_problem(allowed: tuple[str, ...]) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        return None if value in allowed else f"is not one of {', '.join(allowed)}"

    return problem


def _timestamp(data: Mapping[str, Any], key: str, path: str) -> None:
    if key not in data:
        return
    value = data[key]
    full_path = f"{path}.{key}"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _invalid(full_path, value, "has no time zone")
        return
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return
    raise _invalid(full_path, value, "is not an ISO 8601 time with a time zone")


def _extension_fields(data: Mapping[str, Any], path: str) -> None:
    if "ExtensionFields" not in data:
        return
    fields = data["ExtensionFields"]
    full_path = f"{path}.ExtensionFields"
    if not isinstance(fields, list):
        raise _invalid(full_path, fields, "is not a list of {Name, Value} objects")
    for index, item in enumerate(fields):
        item_path = f"{full_path}[{index}]"
        entry = _structure(item, item_path, ("Name", "Value"))
        _string(entry, "Name", item_path, required=True, problem=extension_name_problem)
        if not isinstance(entry.get("Value"), str):
            raise _invalid(f"{item_path}.Value", entry.get("Value"), "is not a string")
        problem = unicode_problem(entry["Value"]) or extension_value_problem(entry["Value"])
        if problem:
            raise _invalid(f"{item_path}.Value", entry["Value"], problem)


def _recipient_dsn_fields(value: object, path: str) -> None:
    fields = _structure(value, path, _RECIPIENT_DSN_FIELDS)
    _string(fields, "FinalRecipient", path, required=False, problem=_final_recipient_problem)
    action = _string(fields, "Action", path, required=True, problem=_enum_problem(DSN_ACTIONS))
    status = _string(fields, "Status", path, required=True, problem=status_problem)
    if status is not None and action is not None:
        problem = status_action_problem(status, action)
        if problem:
            raise _invalid(f"{path}.Status", status, problem)
    _string(fields, "DiagnosticCode", path, required=False, problem=diagnostic_problem)
    _string(fields, "RemoteMta", path, required=False, problem=mta_problem)
    _timestamp(fields, "LastAttemptDate", path)
    _extension_fields(fields, path)


def validate_send_bounce_request(request: Mapping[str, Any]) -> None:
    """Check every documented SendBounce constraint; raise ``InvalidBounceRequest`` naming the
    first field that breaks one. botocore checks none of these (no enums, lengths or patterns)."""
    _structure(request, "request", _REQUEST_FIELDS)
    _string(request, "OriginalMessageId", "", required=True, problem=_message_id_problem)
    _string(request, "BounceSender", "", required=True, problem=bare_address_problem)
    _string(request, "BounceSenderArn", "", required=False, problem=identity_arn_problem)
    _string(request, "Explanation", "", required=False, problem=explanation_problem)
    if "MessageDsn" in request:
        dsn = _structure(request["MessageDsn"], "MessageDsn", _MESSAGE_DSN_FIELDS)
        _string(dsn, "ReportingMta", "MessageDsn", required=True, problem=mta_problem)
        _timestamp(dsn, "ArrivalDate", "MessageDsn")
        _extension_fields(dsn, "MessageDsn")
    infos = request.get("BouncedRecipientInfoList")
    if not isinstance(infos, list) or not infos:
        raise _invalid(
            "BouncedRecipientInfoList", infos, "is not a non-empty list of bounced recipients"
        )
    if len(infos) > MAX_BOUNCED_RECIPIENTS:
        raise InvalidBounceRequest(
            f"BouncedRecipientInfoList: {len(infos)} recipients, more than the "
            f"{MAX_BOUNCED_RECIPIENTS} one SendBounce request may carry (SES documents no bound; "
            "100 is the recipients per message every SMTP server accepts, RFC 5321 4.5.3.1.8)"
        )
    for index, item in enumerate(infos):
        path = f"BouncedRecipientInfoList[{index}]"
        info = _structure(item, path, _RECIPIENT_FIELDS)
        _string(info, "Recipient", path, required=True, problem=_address_problem)
        _string(info, "RecipientArn", path, required=False, problem=identity_arn_problem)
        _string(info, "BounceType", path, required=False, problem=_enum_problem(BOUNCE_TYPES))
        if "RecipientDsnFields" in info:
            _recipient_dsn_fields(info["RecipientDsnFields"], f"{path}.RecipientDsnFields")
        elif "BounceType" not in info:
            raise InvalidBounceRequest(
                f"{path}: has neither BounceType nor RecipientDsnFields; one is required"
            )
