"""Building and checking the SendBounce request; every built request also goes through botocore."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounce_runtime.core.addresses import bare_address_problem
from bounce_runtime.core.decision import MessagePlan, plan_message
from bounce_runtime.core.dsn import (
    SenderIdentity,
    build_send_bounce_request,
    validate_send_bounce_request,
)
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import BouncePolicy, default_policy
from bounce_runtime.errors import InvalidBounceRequest, short_repr
from support.events import load_event, notification

Accepts = Callable[[Mapping[str, Any]], None]
ARRIVAL = datetime(2015, 9, 11, 20, 32, 33, 936000, tzinfo=UTC)
SOON = ARRIVAL + timedelta(minutes=5)
NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
SENDER = SenderIdentity("mailer-bounces@example.com")
DOMAIN_ARN = "arn:aws:ses:us-east-1:123456789012:identity/example.com"


def plan_for(data: dict[str, Any], policy: BouncePolicy | None = None) -> MessagePlan:
    return plan_message(
        parse_notification_body(json.dumps(data)), policy or default_policy(), now=NOW
    )


def test_default_bounce_request(botocore_accepts: Accepts) -> None:
    plan = plan_message(
        parse_notification_body(json.dumps(load_event("received-clean"))),
        default_policy(),
        now=SOON,
    )
    request = build_send_bounce_request(plan, SENDER)
    assert request == {
        "OriginalMessageId": "d6iitobk75ur44p8kdnnp7g2n800",
        "BounceSender": "mailer-bounces@example.com",
        "MessageDsn": {
            "ReportingMta": "dns; example.com",
            "ArrivalDate": "2015-09-11T20:32:33.936Z",
        },
        "BouncedRecipientInfoList": [
            {"Recipient": "recipient@example.com", "BounceType": "DoesNotExist"}
        ],
    }
    botocore_accepts(request)


FULL_POLICY = {
    "rules": [
        {
            "match": {"recipients": ["x@example.com"]},
            "action": {
                "type": "bounce",
                "dsn": {
                    "action": "failed",
                    "status": "5.7.1",
                    "diagnostic_code": "smtp; 550 5.7.1 Relaying denied",
                    "remote_mta": "dns; mx.example.com",
                    "last_attempt_date": "receipt",
                    "extension_fields": {"X-Policy": "p1"},
                },
            },
        },
        {
            "match": {"recipients": ["later@example.com"]},
            "action": {"type": "bounce", "bounce_type": "TemporaryFailure", "dsn": {}},
        },
        {
            "match": {"recipients": ["policy@example.com"]},
            "action": {"type": "bounce", "dsn": {"status": "5.7.1", "last_attempt_date": "mail"}},
        },
    ],
    "message": {
        "explanation": "These addresses no longer receive mail.\nWrite to info@example.com.",
        "reporting_mta": "dns; mail.example.com",
        "extension_fields": {"X-Team": "ops"},
    },
}


def test_explicit_dsn_fields_and_message_settings(botocore_accepts: Accepts) -> None:
    message = notification(
        recipients=["x@example.com", "later@example.com", "policy@example.com", "X@EXAMPLE.COM"],
        receipt_timestamp="2024-05-01T12:00:01.250Z",
    )
    sender = SenderIdentity(
        "bounces@example.com",
        bounce_sender_arn="arn:aws:ses:us-east-1:123456789012:identity/bounces@example.com",
        recipient_arns={
            "example.com": DOMAIN_ARN,
            "later@example.com": "arn:aws:ses:us-east-1:123456789012:identity/later@example.com",
        },
    )
    request = build_send_bounce_request(
        plan_for(message, BouncePolicy.from_dict(FULL_POLICY)), sender
    )
    assert request == {
        "OriginalMessageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
        "BounceSender": "bounces@example.com",
        "Explanation": "These addresses no longer receive mail.\nWrite to info@example.com.",
        "MessageDsn": {
            "ReportingMta": "dns; mail.example.com",
            "ArrivalDate": "2024-05-01T12:00:00.000Z",
            "ExtensionFields": [{"Name": "X-Team", "Value": "ops"}],
        },
        "BouncedRecipientInfoList": [
            {
                "Recipient": "x@example.com",
                "RecipientArn": DOMAIN_ARN,
                "RecipientDsnFields": {
                    "FinalRecipient": "x@example.com",
                    "Action": "failed",
                    "Status": "5.7.1",
                    "DiagnosticCode": "smtp; 550 5.7.1 Relaying denied",
                    "RemoteMta": "dns; mx.example.com",
                    "LastAttemptDate": "2024-05-01T12:00:01.250Z",
                    "ExtensionFields": [{"Name": "X-Policy", "Value": "p1"}],
                },
            },
            {
                "Recipient": "later@example.com",
                "RecipientArn": "arn:aws:ses:us-east-1:123456789012:identity/later@example.com",
                "RecipientDsnFields": {
                    "FinalRecipient": "later@example.com",
                    "Action": "delayed",
                    "Status": "4.0.0",
                    "DiagnosticCode": "smtp; 450 4.0.0 temporary failure, try again later",
                },
            },
            {
                "Recipient": "policy@example.com",
                "RecipientArn": DOMAIN_ARN,
                "RecipientDsnFields": {
                    "FinalRecipient": "policy@example.com",
                    "Action": "failed",
                    "Status": "5.7.1",
                    "LastAttemptDate": "2024-05-01T12:00:00.000Z",
                },
            },
        ],
        "BounceSenderArn": "arn:aws:ses:us-east-1:123456789012:identity/bounces@example.com",
    }
    botocore_accepts(request)


def test_query_serializer_sends_the_dates() -> None:
    request = build_send_bounce_request(plan_for(notification()), SENDER)
    assert request is not None
    client = botocore.session.get_session().create_client(
        "ses", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    operation = client.meta.service_model.operation_model("SendBounce")
    body = create_serializer("query").serialize_to_request(request, operation)["body"]
    assert body["MessageDsn.ArrivalDate"] == "2024-05-01T12:00:00Z"
    assert body["BouncedRecipientInfoList.member.1.BounceType"] == "DoesNotExist"


@pytest.mark.parametrize(
    ("recipient", "arn"),
    [
        ("Exact@Example.com", "exact-arn"),
        ("other@example.com", "domain-arn"),
        ("x@mx.eu.example.com", "parent-arn"),
        ("x@eu.example.com", "parent-arn"),
        ("x@example.org", None),
    ],
)
def test_recipient_arn_lookup_order(recipient: str, arn: str | None) -> None:
    sender = SenderIdentity(
        "b@example.com",
        recipient_arns={
            "exact@example.com": "exact-arn",
            "example.com": "domain-arn",
            "eu.example.com": "parent-arn",
        },
    )
    assert sender.recipient_arn(recipient) == arn


@pytest.mark.parametrize(
    ("policy", "overrides"),
    [
        ({"default": {"type": "accept"}}, {}),
        ({"default": {"type": "suppress"}}, {}),
        ({}, {"spam": "FAIL"}),
        ({}, {"timestamp": "2024-04-29T12:00:00.000Z"}),
    ],
)
def test_nothing_to_send(policy: dict[str, Any], overrides: dict[str, Any]) -> None:
    plan = plan_for(notification(**overrides), BouncePolicy.from_dict(policy))
    assert plan.outcome != "bounce"
    assert build_send_bounce_request(plan, SENDER) is None


@pytest.mark.parametrize(
    "recipient",
    [
        "user@example.com\r\nBcc: victim@example.org",
        "two@example.com\u2028x",
        "a b@example.com",
        "user Bcc: x@evil.example@example.com",
        '"quoted local"@example.com',
        "<user@example.com>",
        "User <user@example.com>",
    ],
)
def test_a_recipient_outside_the_bare_address_grammar_is_refused_never_rewritten(
    recipient: str,
) -> None:
    with pytest.raises(InvalidBounceRequest) as raised:
        build_send_bounce_request(plan_for(notification(recipients=[recipient])), SENDER)
    assert str(raised.value).startswith(
        f"BouncedRecipientInfoList[0].Recipient: {short_repr(recipient)} "
    )
    assert "one bare address local@domain is required" in str(raised.value)


@pytest.mark.parametrize(
    "recipient", ["a b@example.com", "user Bcc: x@evil.example@example.com", "a\r\nb@example.com"]
)
def test_the_request_validator_refuses_such_a_recipient(recipient: str) -> None:
    for path in ("BouncedRecipientInfoList.0.Recipient", f"{DSN_PATH}.FinalRecipient"):
        with pytest.raises(InvalidBounceRequest, match="one bare address local@domain is required"):
            validate_send_bounce_request(changed(path, recipient))


@pytest.mark.parametrize(
    "message_id", ["abc\r\nBcc: victim@example.org", "abc def", "m\u0661", "-m1", "m/1"]
)
def test_an_original_message_id_that_is_no_ses_id_never_reaches_the_wire(message_id: str) -> None:
    with pytest.raises(InvalidBounceRequest) as raised:
        build_send_bounce_request(plan_for(notification(message_id=message_id)), SENDER)
    assert str(raised.value) == (
        f"OriginalMessageId: {short_repr(message_id)} is not an SES message id: 1 to 100 "
        "characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
    )
    request = build_send_bounce_request(plan_for(notification(message_id="m" * 100)), SENDER)
    assert request is not None and request["OriginalMessageId"] == "m" * 100


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(recipients=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4))
def test_any_recipient_gives_a_valid_request_or_a_classified_error(
    recipients: list[str], botocore_accepts: Accepts
) -> None:
    plan = plan_for(notification(recipients=recipients))
    try:
        request = build_send_bounce_request(plan, SENDER)
    except InvalidBounceRequest as error:
        assert str(error).startswith("BouncedRecipientInfoList[")
        return
    assert request is not None
    for info in request["BouncedRecipientInfoList"]:
        assert bare_address_problem(info["Recipient"]) is None
    botocore_accepts(request)


VALID: dict[str, Any] = {
    "OriginalMessageId": "m1",
    "BounceSender": "b@example.com",
    "Explanation": "gone",
    "MessageDsn": {
        "ReportingMta": "dns; mail.example.com",
        "ArrivalDate": "2024-05-01T12:00:00.000Z",
        "ExtensionFields": [{"Name": "X-A", "Value": "1"}],
    },
    "BouncedRecipientInfoList": [
        {"Recipient": "r@example.com", "BounceType": "DoesNotExist"},
        {
            "Recipient": "s@example.com",
            "RecipientArn": DOMAIN_ARN,
            "RecipientDsnFields": {
                "FinalRecipient": "s@example.com",
                "Action": "failed",
                "Status": "5.1.1",
                "DiagnosticCode": "smtp; 550 5.1.1 unknown",
                "RemoteMta": "dns; mx.example.com",
                "LastAttemptDate": datetime(2024, 5, 1, tzinfo=UTC),
                "ExtensionFields": [{"Name": "X-B", "Value": "2"}],
            },
        },
    ],
    "BounceSenderArn": DOMAIN_ARN,
}


def changed(path: str, value: Any, *, delete: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    keys: list[Any] = [int(key) if key.isdigit() else key for key in path.split(".")]
    target: Any = data
    for key in keys[:-1]:
        target = target[key]
    if delete:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


def test_valid_request_passes_both_checks(botocore_accepts: Accepts) -> None:
    validate_send_bounce_request(VALID)
    botocore_accepts(VALID)


RECIPIENT_DSN = "BouncedRecipientInfoList[1].RecipientDsnFields"
DSN_PATH = "BouncedRecipientInfoList.1.RecipientDsnFields"
MESSAGE_ID_FORM = (
    "is not an SES message id: 1 to 100 characters of A-Z, a-z, 0-9, '.', '_' and '-', "
    "starting with a letter or digit"
)
BARE = (
    "one bare address local@domain is required (ASCII, an IDN domain as xn--; no display name, "
    "spaces or angle brackets)"
)


@pytest.mark.parametrize(
    ("request_data", "message"),
    [
        (
            changed("OriginalMessageId", "", delete=True),
            "OriginalMessageId: missing; it is required",
        ),
        (
            changed("OriginalMessageId", "a\nb"),
            f"OriginalMessageId: 'a\\nb' {MESSAGE_ID_FORM}",
        ),
        (
            changed("OriginalMessageId", "m" * 101),
            f"OriginalMessageId: '{'m' * 76}... {MESSAGE_ID_FORM}",
        ),
        (
            changed("OriginalMessageId", "m\ud800"),
            "OriginalMessageId: 'm\\ud800' contains a lone surrogate (U+D800), not valid Unicode",
        ),
        (
            changed("BounceSender", "nobody"),
            f"BounceSender: 'nobody' has 0 '@': {BARE}",
        ),
        (
            changed("BounceSender", "a@b@example.com"),
            f"BounceSender: 'a@b@example.com' has 2 '@': {BARE}",
        ),
        (
            changed("BounceSender", "Bounces <b@example.com>"),
            "BounceSender: 'Bounces <b@example.com>' has a display name, a space, a control "
            f"character or angle brackets: {BARE}",
        ),
        (
            changed("BounceSender", "b@ex\u00e4mple.com"),
            f"BounceSender: 'b@ex\u00e4mple.com' has U+00E4 at position 4: {BARE}",
        ),
        (
            changed("BounceSender", "b@\u212aelvin.example"),
            f"BounceSender: 'b@\u212aelvin.example' has U+212A at position 2: {BARE}",
        ),
        (
            changed("BounceSender", "b@\udcffexample.com"),
            "BounceSender: 'b@\\udcffexample.com' contains a lone surrogate (U+DCFF), not valid "
            "Unicode",
        ),
        (
            changed("Explanation", "x" * 10_001),
            f"Explanation: '{'x' * 76}... is 10001 characters long: at most 10000 are allowed",
        ),
        (
            changed("Explanation", "ok\n" + "x" * 999),
            "Explanation: 'ok\\n" + "x" * 72 + "... has a line of 999 characters: at most 998 "
            "are allowed (RFC 5322 2.1.1)",
        ),
        (
            changed(
                "BouncedRecipientInfoList",
                [
                    {"Recipient": f"r{i}@example.com", "BounceType": "DoesNotExist"}
                    for i in range(101)
                ],
            ),
            "BouncedRecipientInfoList: 101 recipients, more than the 100 one SendBounce request "
            "may carry (SES documents no bound; 100 is the recipients per message every SMTP "
            "server accepts, RFC 5321 4.5.3.1.8)",
        ),
        (
            changed("MessageDsn.ExtensionFields.0.Value", "v\udcff"),
            "MessageDsn.ExtensionFields[0].Value: 'v\\udcff' contains a lone surrogate (U+DCFF), "
            "not valid Unicode",
        ),
        (
            changed(
                "BouncedRecipientInfoList.1.RecipientDsnFields.DiagnosticCode",
                "smtp; 550 " + "x" * 972,
            ),
            f"{RECIPIENT_DSN}.DiagnosticCode: 'smtp; 550 {'x' * 66}... is 982 characters long: "
            "at most 981 are allowed (one 998-character line of RFC 5322 with 'Diagnostic-Code: ')",
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.Status", "5.\u0661.1"),
            f"{RECIPIENT_DSN}.Status: '5.\u0661.1' is not an RFC 3463 status: "
            "class.subject.detail, class 2, 4 or 5, e.g. 5.1.1",
        ),
        (
            changed("MessageDsn.ReportingMta", "dns; mail.\u212aelvin.example"),
            "MessageDsn.ReportingMta: 'dns; mail.\u212aelvin.example' is not an MTA name of "
            "the form 'dns; mail.example.com' (an ASCII host name of at most 253 characters)",
        ),
        (
            changed("BounceSenderArn", "arn:aws:iam::123456789012:user/x"),
            (
                "BounceSenderArn: 'arn:aws:iam::123456789012:user/x' is not an SES "
                "identity ARN arn:<partition>:ses:<region>:<account>:identity/<address or domain>"
            ),
        ),
        (
            changed("Explanation", "a\rb"),
            "Explanation: 'a\\rb' contains control characters; only newline and tab are allowed",
        ),
        (
            changed("Extra", 1),
            (
                "request: 'Extra' is not a field; allowed: OriginalMessageId, "
                "BounceSender, Explanation, MessageDsn, BouncedRecipientInfoList, "
                "BounceSenderArn"
            ),
        ),
        (
            changed("MessageDsn.ReportingMta", "", delete=True),
            "MessageDsn.ReportingMta: missing; it is required",
        ),
        (
            changed("MessageDsn.ReportingMta", "smtp; mail.example.com"),
            (
                "MessageDsn.ReportingMta: 'smtp; mail.example.com' is not an MTA name of "
                "the form 'dns; mail.example.com' (an ASCII host name of at most 253 characters)"
            ),
        ),
        (
            changed("MessageDsn.ArrivalDate", "yesterday"),
            "MessageDsn.ArrivalDate: 'yesterday' is not an ISO 8601 time with a time zone",
        ),
        (
            changed("MessageDsn.ArrivalDate", "2024-05-01T12:00:00"),
            (
                "MessageDsn.ArrivalDate: '2024-05-01T12:00:00' is not an ISO 8601 time "
                "with a time zone"
            ),
        ),
        (
            changed("MessageDsn.ExtensionFields.0.Name", "X_A"),
            (
                "MessageDsn.ExtensionFields[0].Name: 'X_A' is not an extension field "
                "name: 1 to 50 characters of A-Z, a-z, 0-9 and -"
            ),
        ),
        (
            changed("MessageDsn.ExtensionFields.0.Name", "X" * 51),
            "MessageDsn.ExtensionFields[0].Name: '"
            + "X" * 51
            + "' is not an extension field name: 1 to 50 characters of A-Z, a-z, 0-9 and -",
        ),
        (
            changed("MessageDsn.ExtensionFields.0.Value", "v\r\nBcc: x"),
            (
                "MessageDsn.ExtensionFields[0].Value: 'v\\r\\nBcc: x' contains CR or LF, "
                "which extension field values must not"
            ),
        ),
        (
            changed("MessageDsn.ExtensionFields.0.Value", "v" * 2049),
            "MessageDsn.ExtensionFields[0].Value: '"
            + "v" * 76
            + "... is 2049 characters long: at most 2048 are allowed",
        ),
        (
            changed("BouncedRecipientInfoList", []),
            "BouncedRecipientInfoList: [] is not a non-empty list of bounced recipients",
        ),
        (
            changed("BouncedRecipientInfoList.0.BounceType", "Gone"),
            (
                "BouncedRecipientInfoList[0].BounceType: 'Gone' is not one of "
                "DoesNotExist, MessageTooLarge, ExceededQuota, ContentRejected, "
                "Undefined, TemporaryFailure"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.0.BounceType", "", delete=True),
            (
                "BouncedRecipientInfoList[0]: has neither BounceType nor "
                "RecipientDsnFields; one is required"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.0.Recipient", "", delete=True),
            "BouncedRecipientInfoList[0].Recipient: missing; it is required",
        ),
        (
            changed(
                "BouncedRecipientInfoList.1.RecipientArn", "arn:aws:ses:us-east-1:1:identity/x"
            ),
            (
                "BouncedRecipientInfoList[1].RecipientArn: "
                "'arn:aws:ses:us-east-1:1:identity/x' is not an SES identity ARN "
                "arn:<partition>:ses:<region>:<account>:identity/<address or domain>"
            ),
        ),
        (
            changed(
                "BouncedRecipientInfoList.1.RecipientDsnFields.FinalRecipient",
                "rfc822; s@example.com",
            ),
            (
                f"{RECIPIENT_DSN}.FinalRecipient: 'rfc822; s@example.com' must not start "
                "with 'rfc822;': give the bare address"
            ),
        ),
        (
            changed(
                "BouncedRecipientInfoList.1.RecipientDsnFields.FinalRecipient",
                "RFC 822;s@example.com",
            ),
            (
                f"{RECIPIENT_DSN}.FinalRecipient: 'RFC 822;s@example.com' must not start "
                "with 'rfc822;': give the bare address"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.Action", "", delete=True),
            f"{RECIPIENT_DSN}.Action: missing; it is required",
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.Action", "bounced"),
            (
                f"{RECIPIENT_DSN}.Action: 'bounced' is not one of failed, delayed, "
                "delivered, relayed, expanded"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.Status", "550"),
            (
                f"{RECIPIENT_DSN}.Status: '550' is not an RFC 3463 status: "
                "class.subject.detail, class 2, 4 or 5, e.g. 5.1.1"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.Status", "4.4.1"),
            (
                f"{RECIPIENT_DSN}.Status: '4.4.1' does not fit action 'failed': failed "
                "needs a 5.x.x status, delayed 4.x.x, delivered, relayed and expanded "
                "2.x.x"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.DiagnosticCode", "smtp; 550\nx"),
            (
                f"{RECIPIENT_DSN}.DiagnosticCode: 'smtp; 550\\nx' must not contain CR, LF "
                "or other control characters"
            ),
        ),
        (
            changed("BouncedRecipientInfoList.1.RecipientDsnFields.RemoteMta", "dns; bad host"),
            (
                f"{RECIPIENT_DSN}.RemoteMta: 'dns; bad host' is not an MTA name of the "
                "form 'dns; mail.example.com' (an ASCII host name of at most 253 characters)"
            ),
        ),
        (
            changed(
                "BouncedRecipientInfoList.1.RecipientDsnFields.LastAttemptDate",
                datetime(2024, 5, 1),
            ),
            (
                f"{RECIPIENT_DSN}.LastAttemptDate: datetime.datetime(2024, 5, 1, 0, 0) has "
                "no time zone"
            ),
        ),
        (
            changed(
                "BouncedRecipientInfoList.1.RecipientDsnFields.ExtensionFields.0", {"Name": "X-B"}
            ),
            f"{RECIPIENT_DSN}.ExtensionFields[0].Value: None is not a string",
        ),
    ],
)
def test_invalid_request_messages(request_data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBounceRequest) as caught:
        validate_send_bounce_request(request_data)
    assert str(caught.value) == message
    assert caught.value.reason == "invalid-request"


def test_botocore_alone_lets_these_through(offline_ses_client: Any) -> None:
    """Why the runtime checks: botocore's validator passes an empty list and a bogus enum."""
    from botocore.validate import validate_parameters

    shape = offline_ses_client.meta.service_model.operation_model("SendBounce").input_shape
    for request in (
        changed("BouncedRecipientInfoList", []),
        changed("BouncedRecipientInfoList.0.BounceType", "Gone"),
    ):
        validate_parameters(request, shape)
        with pytest.raises(InvalidBounceRequest):
            validate_send_bounce_request(request)
