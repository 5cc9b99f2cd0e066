"""The local SES answers a real botocore client over HTTP the way SES does."""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ses.client import SESClient

from support.local_ses import (
    LocalSes,
    MinimumSpacing,
    TokenBucket,
    count_close_calls,
    count_rate_violations,
    parse_query_params,
)

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
UNVALIDATED = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=False
)


def ses_client(endpoint_url: str | None, config: Config = NO_RETRIES) -> SESClient:
    return boto3.client(
        "ses",
        region_name="eu-west-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def request(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "OriginalMessageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
        "BounceSender": "mailer-daemon@example.com",
        "BouncedRecipientInfoList": [
            {"Recipient": "gone@example.com", "BounceType": "DoesNotExist"}
        ],
    }
    base.update(overrides)
    return base


@pytest.fixture
def ses() -> Iterator[LocalSes]:
    with LocalSes(rate_per_second=1000, burst=1000, verified={"example.com", "ops@other.org"}) as s:
        yield s


def error_of(client: SESClient, params: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        client.send_bounce(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_accepted_call_returns_message_id_and_is_recorded_with_nested_params(ses: LocalSes) -> None:
    params = request(
        Explanation="Retired address",
        MessageDsn={
            "ReportingMta": "dns; mx.example.com",
            "ArrivalDate": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
            "ExtensionFields": [{"Name": "X-Bounce-Reason", "Value": "retired"}],
        },
        BouncedRecipientInfoList=[
            {"Recipient": "a@example.com", "BounceType": "DoesNotExist"},
            {
                "Recipient": "b@example.com",
                "RecipientArn": "arn:aws:ses:eu-west-1:111111111111:identity/example.com",
                "RecipientDsnFields": {
                    "Action": "failed",
                    "Status": "5.7.1",
                    "DiagnosticCode": "smtp; 550 5.7.1 refused",
                    "ExtensionFields": [{"Name": "X-Policy", "Value": "p1"}],
                },
            },
        ],
    )
    answer = ses_client(ses.endpoint_url).send_bounce(**params)

    assert len(ses.calls) == 1
    call = ses.calls[0]
    assert answer["MessageId"] == call.message_id
    assert call.params == {
        **params,
        "MessageDsn": {**params["MessageDsn"], "ArrivalDate": "2024-05-01T12:00:00Z"},
    }


def test_endpoint_from_environment_variable(ses: LocalSes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SES", ses.endpoint_url)
    ses_client(None).send_bounce(**request())
    assert [c.params["OriginalMessageId"] for c in ses.calls] == [request()["OriginalMessageId"]]


def test_unverified_sender_raises_modeled_message_rejected(ses: LocalSes) -> None:
    client = ses_client(ses.endpoint_url)
    with pytest.raises(client.exceptions.MessageRejected) as caught:
        client.send_bounce(**request(BounceSender="Bounces <noreply@unverified.net>"))
    assert caught.value.response["Error"] == {
        "Type": "Sender",
        "Code": "MessageRejected",
        "Message": "Email address is not verified. The following identities failed the check in"
        " region EU-WEST-1: Bounces <noreply@unverified.net>",
    }
    assert ses.calls == []


@pytest.mark.parametrize(
    ("sender", "sender_arn", "accepted"),
    [
        ("Mailer <MAILER@Example.COM>", None, True),
        ("ops@other.org", None, True),
        ("sales@other.org", None, False),
        (
            "ops@other.org",
            "arn:aws:ses:eu-west-1:222222222222:identity/ops@other.org",
            True,
        ),
        (
            "mailer@example.com",
            "arn:aws:ses:eu-west-1:222222222222:identity/ops@other.org",
            False,
        ),
        (
            "mailer@unverified.net",
            "arn:aws:ses:eu-west-1:222222222222:identity/unverified.net",
            False,
        ),
    ],
)
def test_verified_identities_are_addresses_and_domains(
    ses: LocalSes, sender: str, sender_arn: str | None, accepted: bool
) -> None:
    extra = {"BounceSenderArn": sender_arn} if sender_arn else {}
    client = ses_client(ses.endpoint_url)
    if accepted:
        client.send_bounce(**request(BounceSender=sender, **extra))
    else:
        assert error_of(client, request(BounceSender=sender, **extra))[0] == "MessageRejected"
    assert len(ses.calls) == (1 if accepted else 0)


LONG_VALUE = "v" * 2049


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            request(BouncedRecipientInfoList=[]),
            "InvalidParameterValue",
            "BouncedRecipientInfoList must not be empty",
        ),
        (
            request(BouncedRecipientInfoList=[{"Recipient": "a@example.com"}]),
            "InvalidParameterValue",
            "BouncedRecipientInfoList.member.1 needs BounceType or RecipientDsnFields;"
            " it has neither",
        ),
        (
            request(
                BouncedRecipientInfoList=[
                    {"Recipient": "a@example.com", "BounceType": "DoesNotExist"},
                    {"Recipient": "b@example.com", "BounceType": "Gone"},
                ]
            ),
            "ValidationError",
            "Value 'Gone' at BouncedRecipientInfoList.member.2.BounceType failed to satisfy"
            " constraint: Member must satisfy enum value set: [DoesNotExist, MessageTooLarge,"
            " ExceededQuota, ContentRejected, Undefined, TemporaryFailure]",
        ),
        (
            request(
                BouncedRecipientInfoList=[
                    {
                        "Recipient": "a@example.com",
                        "RecipientDsnFields": {"Action": "bounced", "Status": "5.1.1"},
                    }
                ]
            ),
            "ValidationError",
            "Value 'bounced' at BouncedRecipientInfoList.member.1.RecipientDsnFields.Action"
            " failed to satisfy constraint: Member must satisfy enum value set: [failed, delayed,"
            " delivered, relayed, expanded]",
        ),
        (
            request(
                MessageDsn={
                    "ReportingMta": "dns; mx.example.com",
                    "ExtensionFields": [{"Name": "X_Bad Name", "Value": "v"}],
                }
            ),
            "InvalidParameterValue",
            "Extension field name 'X_Bad Name' at MessageDsn.ExtensionFields.member.1.Name is"
            " invalid: 1 to 50 characters, letters, digits and dashes only",
        ),
        (
            request(
                MessageDsn={
                    "ReportingMta": "dns; mx.example.com",
                    "ExtensionFields": [{"Name": "X-" + "n" * 49, "Value": "v"}],
                }
            ),
            "InvalidParameterValue",
            f"Extension field name {'X-' + 'n' * 49!r} at MessageDsn.ExtensionFields.member.1.Name"
            " is invalid: 1 to 50 characters, letters, digits and dashes only",
        ),
        (
            request(
                BouncedRecipientInfoList=[
                    {
                        "Recipient": "a@example.com",
                        "RecipientDsnFields": {
                            "Action": "failed",
                            "Status": "5.1.1",
                            "ExtensionFields": [{"Name": "X-Note", "Value": "line\r\nInjected: 1"}],
                        },
                    }
                ]
            ),
            "InvalidParameterValue",
            "Extension field value at BouncedRecipientInfoList.member.1.RecipientDsnFields."
            "ExtensionFields.member.1.Value is invalid (17 characters): at most 2048 characters"
            " and no CR or LF",
        ),
        (
            request(
                MessageDsn={
                    "ReportingMta": "dns; mx.example.com",
                    "ExtensionFields": [{"Name": "X-Long", "Value": LONG_VALUE}],
                }
            ),
            "InvalidParameterValue",
            "Extension field value at MessageDsn.ExtensionFields.member.1.Value is invalid"
            " (2049 characters): at most 2048 characters and no CR or LF",
        ),
        (
            {k: v for k, v in request().items() if k != "OriginalMessageId"},
            "MissingParameter",
            "The request must contain the parameter OriginalMessageId",
        ),
        (
            request(MessageDsn={"ArrivalDate": "2024-05-01T12:00:00Z"}),
            "MissingParameter",
            "The request must contain the parameter MessageDsn.ReportingMta",
        ),
        (
            request(
                BouncedRecipientInfoList=[
                    {"Recipient": "a@example.com", "RecipientDsnFields": {"Action": "failed"}}
                ]
            ),
            "MissingParameter",
            "The request must contain the parameter"
            " BouncedRecipientInfoList.member.1.RecipientDsnFields.Status",
        ),
    ],
    ids=[
        "no-recipient",
        "neither-type-nor-dsn-fields",
        "bad-bounce-type",
        "bad-dsn-action",
        "bad-extension-name-chars",
        "extension-name-51-chars",
        "extension-value-newline",
        "extension-value-2049-chars",
        "missing-original-message-id",
        "missing-reporting-mta",
        "missing-dsn-status",
    ],
)
def test_requests_breaking_documented_rules_are_refused(
    ses: LocalSes, params: dict[str, Any], code: str, message: str
) -> None:
    assert error_of(ses_client(ses.endpoint_url, UNVALIDATED), params) == (code, message)
    assert ses.calls == []


def test_extension_field_limits_are_inclusive(ses: LocalSes) -> None:
    ses_client(ses.endpoint_url).send_bounce(
        **request(
            MessageDsn={
                "ReportingMta": "dns; mx.example.com",
                "ExtensionFields": [{"Name": "X-" + "n" * 48, "Value": "v" * 2048}],
            }
        )
    )
    assert len(ses.calls) == 1


def test_second_call_inside_one_interval_is_throttled() -> None:
    with LocalSes(rate_per_second=1, verified={"example.com"}) as ses:
        client = ses_client(ses.endpoint_url)
        client.send_bounce(**request())
        code, message = error_of(client, request())
        assert (code, message) == ("Throttling", "Maximum SendBounce rate exceeded.")
        assert len(ses.calls) == 1
        assert ses.throttled == 1
        assert [a.error_code for a in ses.attempts] == ["", "Throttling"]


def test_injected_server_errors_come_back_as_client_errors_with_status(ses: LocalSes) -> None:
    ses.inject_errors(("ServiceUnavailable", 503), ("InternalFailure", 500))
    client = ses_client(ses.endpoint_url)
    for code, status in (("ServiceUnavailable", 503), ("InternalFailure", 500)):
        with pytest.raises(ClientError) as caught:
            client.send_bounce(**request())
        response: dict[str, Any] = dict(caught.value.response)
        assert response["Error"]["Code"] == code
        assert response["Error"]["Type"] == "Receiver"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    client.send_bounce(**request())
    assert len(ses.calls) == 1


def test_botocore_standard_retries_recover_from_throttling(ses: LocalSes) -> None:
    ses.inject_errors(("Throttling", 400))
    client = ses_client(
        ses.endpoint_url, Config(retries={"mode": "standard", "total_max_attempts": 2})
    )
    client.send_bounce(**request())
    assert [a.error_code for a in ses.attempts] == ["Throttling", ""]


def test_stop_closes_the_port() -> None:
    with LocalSes() as ses:
        port = int(ses.endpoint_url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
    with pytest.raises(RuntimeError, match="LocalSes is not running"):
        _ = ses.endpoint_url


def test_token_bucket_with_burst_one_is_a_minimum_gap() -> None:
    bucket = TokenBucket(rate_per_second=10)
    decisions = [bucket.try_take(t) for t in (0.0, 0.05, 0.1, 0.15, 0.1999, 0.3, 0.4)]
    assert decisions == [True, False, True, False, False, True, True]


def test_token_bucket_burst_allows_that_many_back_to_back_then_refills_at_rate() -> None:
    bucket = TokenBucket(rate_per_second=10, burst=2)
    decisions = [bucket.try_take(t) for t in (0.0, 0.0, 0.0, 0.1, 0.1, 0.3, 0.3, 0.3)]
    assert decisions == [True, True, False, True, False, True, True, False]


def test_count_rate_violations_uses_the_server_rule() -> None:
    times = [0.3, 0.0, 0.05, 0.1, 0.15, 0.1999, 0.4]
    assert count_rate_violations(times, rate_per_second=10) == 3
    assert count_rate_violations(times, rate_per_second=10, burst=2) == 2


@pytest.mark.parametrize(
    ("rate", "burst", "message"),
    [
        (0, 1, "rate_per_second must be > 0, got 0"),
        (1, 0, "burst must be an integer >= 1, got 0"),
    ],
)
def test_token_bucket_rejects_bad_settings(rate: float, burst: int, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        TokenBucket(rate, burst)
    assert str(caught.value) == message


def test_parse_query_params_builds_lists_in_member_order() -> None:
    pairs = [
        ("L.member.2.A", "second"),
        ("L.member.1.A", "first"),
        ("L.member.1.Sub.ExtensionFields.member.1.Name", "N"),
        ("D.X", "x"),
        ("BouncedRecipientInfoList", ""),
    ]
    assert parse_query_params(pairs) == {
        "L": [{"A": "first", "Sub": {"ExtensionFields": [{"Name": "N"}]}}, {"A": "second"}],
        "D": {"X": "x"},
        "BouncedRecipientInfoList": [],
    }


def test_minimum_spacing_refuses_calls_closer_than_one_interval_to_the_last_accepted() -> None:
    rule = MinimumSpacing(rate_per_second=10)
    times = (0.0, 0.05, 0.0999, 0.1, 0.15, 0.2, 0.5, 0.55)
    assert [rule.try_take(t) for t in times] == [True, False, False, True, False, True, True, False]


def test_minimum_spacing_gives_no_credit_for_idle_time_unlike_a_burst_bucket() -> None:
    strict, bucket = MinimumSpacing(rate_per_second=10), TokenBucket(rate_per_second=10, burst=2)
    times = (0.0, 5.0, 5.0, 5.05)
    assert [strict.try_take(t) for t in times] == [True, True, False, False]
    assert [bucket.try_take(t) for t in times] == [True, True, True, False]


def test_count_close_calls_counts_arrivals_nearer_than_one_interval_to_the_previous() -> None:
    # Sorted: 0, 0.05, 0.1, 0.2, 0.2999, 0.3: gaps 0.05, 0.05, 0.1, 0.0999, 0.0001.
    assert count_close_calls([0.3, 0.0, 0.05, 0.1, 0.2, 0.2999], rate_per_second=10) == 4
    assert count_close_calls([], rate_per_second=10) == 0


def test_strict_server_throttles_a_call_inside_the_interval_and_accepts_one_after_it() -> None:
    with LocalSes(rate_per_second=5, strict=True, verified={"example.com"}) as ses:
        client = ses_client(ses.endpoint_url)
        client.send_bounce(**request())
        with pytest.raises(ClientError) as caught:
            client.send_bounce(**request())
        assert caught.value.response["Error"]["Code"] == "Throttling"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        time.sleep(0.2)
        client.send_bounce(**request())
        assert [a.error_code for a in ses.attempts] == ["", "Throttling", ""]
        assert ses.throttled == 1
        gap = ses.calls[1].time - ses.calls[0].time
        assert gap >= 0.2


def test_strict_server_refuses_a_burst_setting() -> None:
    with pytest.raises(ValueError, match="strict=True allows no burst: burst must be 1, got 2"):
        LocalSes(rate_per_second=1, burst=2, strict=True)


def test_default_server_keeps_the_token_bucket() -> None:
    ses = LocalSes(rate_per_second=10, burst=3)
    assert isinstance(ses.rule, TokenBucket)
    assert not ses.strict
