"""BounceSender on a real SES client with botocore's Stubber (request checked against the model)."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.stub import Stubber

from bounce_runtime.adapters.clients import aws_client_kwargs, ses_client_kwargs
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.ses_sender import BounceSender, RetryPolicy
from bounce_runtime.contract import AFTER_SEND_RESERVE_S, AWS_CALL_BOUND_S
from bounce_runtime.errors import PermanentError, SendDeadlineExceeded, TransientSendError
from support.local_ses import LocalSes

REQUEST: dict[str, Any] = {
    "OriginalMessageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
    "BounceSender": "mailer-daemon@example.com",
    "Explanation": "Unknown recipient.",
    "BouncedRecipientInfoList": [
        {"Recipient": "nobody@example.com", "BounceType": "DoesNotExist"},
        {
            "Recipient": "full@example.com",
            "RecipientDsnFields": {
                "Action": "failed",
                "Status": "5.2.2",
                "DiagnosticCode": "smtp; 552 5.2.2 Mailbox full",
            },
        },
    ],
}


def make_sender(client: Any, fake_time: Any, rate: float = 10.0) -> BounceSender:
    pacer = Pacer(rate, clock=fake_time.clock, sleep=fake_time.sleep)
    return BounceSender(client, pacer, sleep=fake_time.sleep, rng=random.Random(7))


def test_success_returns_the_message_id(ses_client: Any, fake_time: Any) -> None:
    sender = make_sender(ses_client, fake_time)
    with Stubber(ses_client) as stub:
        stub.add_response("send_bounce", {"MessageId": "bounce-1"}, expected_params=REQUEST)
        result = sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
        stub.assert_no_pending_responses()
    assert (result.message_id, result.attempts, result.throttles) == ("bounce-1", 1, 0)


def test_throttling_is_retried_with_backoff_and_counted(ses_client: Any, fake_time: Any) -> None:
    sender = make_sender(ses_client, fake_time, rate=1000.0)
    throttles: list[str] = []
    with Stubber(ses_client) as stub:
        for _ in range(3):
            stub.add_client_error("send_bounce", "Throttling", "Maximum sending rate exceeded.")
        stub.add_response("send_bounce", {"MessageId": "bounce-2"}, expected_params=REQUEST)
        result = sender.send(
            REQUEST,
            remaining_seconds=fake_time.remaining_seconds,
            on_throttle=lambda: throttles.append("throttled"),
        )
        stub.assert_no_pending_responses()
    assert (result.message_id, result.attempts, result.throttles) == ("bounce-2", 4, 3)
    assert len(throttles) == 3
    backoffs = [s for s in fake_time.sleeps if s > 0.01]  # pacing sleeps are 1 ms here
    assert len(backoffs) == 3
    for retry_number, delay in enumerate(backoffs, start=1):
        ceiling = 0.2 * 2 ** (retry_number - 1)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("code", "status"),
    [("ServiceUnavailable", 503), ("InternalFailure", 500), ("SomethingNew", 502)],
)
def test_a_server_error_is_an_unknown_outcome_never_retried(
    ses_client: Any, fake_time: Any, code: str, status: int
) -> None:
    # SES answered, so it saw the request, and may have sent the bounce before it failed.
    sender = make_sender(ses_client, fake_time)
    with Stubber(ses_client) as stub:
        stub.add_client_error("send_bounce", code, "oops", http_status_code=status)
        with pytest.raises(PermanentError) as raised:
            sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
        stub.assert_no_pending_responses()  # one attempt only
    assert raised.value.reason == "ses-outcome-unknown"
    assert str(raised.value).startswith(
        "SES answered with a server error after the request reached it, the bounce may have "
        f"gone out: An error occurred ({code})"
    )


@pytest.mark.parametrize(
    "code",
    ["MessageRejected", "InvalidParameterValue", "MailFromDomainNotVerified", "AccessDenied"],
)
def test_client_errors_are_permanent_and_not_retried(
    ses_client: Any, fake_time: Any, code: str
) -> None:
    sender = make_sender(ses_client, fake_time)
    with Stubber(ses_client) as stub:
        stub.add_client_error("send_bounce", code, "Email address is not verified.")
        with pytest.raises(PermanentError) as raised:
            sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
        stub.assert_no_pending_responses()
    assert raised.value.reason == f"ses-rejected:{code}"
    assert str(raised.value) == (
        f"SES rejected SendBounce: An error occurred ({code}) when calling the SendBounce "
        "operation: Email address is not verified."
    )


def test_a_request_botocore_refuses_is_permanent(ses_client: Any, fake_time: Any) -> None:
    sender = make_sender(ses_client, fake_time)
    request = {key: value for key, value in REQUEST.items() if key != "BounceSender"}
    with pytest.raises(PermanentError) as raised:
        sender.send(request, remaining_seconds=fake_time.remaining_seconds)
    assert raised.value.reason == "invalid-request"
    assert 'Missing required parameter in input: "BounceSender"' in str(raised.value)


class ScriptedSes:
    """A stand-in SES client that raises or answers from a script, noting call times."""

    def __init__(self, fake_time: Any, script: list[Exception | str]) -> None:
        self.fake_time = fake_time
        self.script = list(script)
        self.call_times: list[float] = []

    def send_bounce(self, **request: Any) -> dict[str, Any]:
        assert request == REQUEST
        self.call_times.append(self.fake_time.now)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return {"MessageId": step}


def test_connection_errors_are_retried(fake_time: Any) -> None:
    client = ScriptedSes(
        fake_time,
        [
            EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com/"),
            ConnectTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com/"),
            "bounce-4",
        ],
    )
    result = make_sender(client, fake_time).send(
        REQUEST, remaining_seconds=fake_time.remaining_seconds
    )
    assert (result.message_id, result.attempts) == ("bounce-4", 3)


@pytest.mark.parametrize(
    "error",
    [
        NoCredentialsError(),
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        NoRegionError(),
    ],
)
def test_a_request_never_made_is_retried_and_stays_transient(
    fake_time: Any, error: Exception
) -> None:
    # Raised before any request is signed: SES saw nothing, so the claim may be released.
    client = ScriptedSes(fake_time, [error, error])
    sender = BounceSender(
        client,
        Pacer(100.0, clock=fake_time.clock, sleep=fake_time.sleep),
        retry=RetryPolicy(max_attempts=2),
        sleep=fake_time.sleep,
        rng=random.Random(2),
    )
    with pytest.raises(TransientSendError) as raised:
        sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert raised.value.reason == "ses-connection"
    assert str(raised.value) == f"gave up after 2 attempts: SES connection failed: {error}"
    assert len(client.call_times) == 2


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com/"),
        ConnectionClosedError(endpoint_url="https://email.us-east-1.amazonaws.com/"),
        SSLError(endpoint_url="https://email.us-east-1.amazonaws.com/", error="bad record mac"),
        ProxyConnectionError(proxy_url="http://proxy:3128", error="reset"),
    ],
)
def test_a_request_without_an_answer_is_never_retried(fake_time: Any, error: Exception) -> None:
    # SES may have sent the bounce: a retry could send it twice, so it is a permanent failure.
    client = ScriptedSes(fake_time, [error, "never-reached"])
    with pytest.raises(PermanentError) as raised:
        make_sender(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert raised.value.reason == "ses-outcome-unknown"
    assert len(client.call_times) == 1


def test_every_attempt_takes_a_pacing_slot(fake_time: Any) -> None:
    throttled = [_throttling_error()] * 2
    client = ScriptedSes(fake_time, [*throttled, "bounce-5", "bounce-6"])
    sender = BounceSender(
        client,
        Pacer(1.0, clock=fake_time.clock, sleep=fake_time.sleep),
        retry=RetryPolicy(base_delay_s=0.01, max_delay_s=0.01),
        sleep=fake_time.sleep,
        rng=random.Random(1),
    )
    first = sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    second = sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    gaps = [b - a for a, b in pairwise(client.call_times)]
    assert gaps == pytest.approx([1.0, 1.0, 1.0])
    # What each send waited for its slots is reported (the SendSlotWait metric); the backoff
    # sleeps count into the pacer's wait only where the pacer still had to wait after them.
    assert first.waited_s == pytest.approx(2.0 - 2 * 0.01, abs=0.01)
    assert second.waited_s == pytest.approx(1.0, abs=0.01)


def _throttling_error() -> Exception:
    return ClientError(
        {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}},
        "SendBounce",
    )


def test_gives_up_after_max_attempts_as_a_transient_error(fake_time: Any) -> None:
    client = ScriptedSes(fake_time, [_throttling_error()] * 3)
    sender = BounceSender(
        client,
        Pacer(100.0, clock=fake_time.clock, sleep=fake_time.sleep),
        retry=RetryPolicy(max_attempts=3),
        sleep=fake_time.sleep,
        rng=random.Random(2),
    )
    with pytest.raises(TransientSendError) as raised:
        sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert not isinstance(raised.value, SendDeadlineExceeded)
    assert raised.value.reason == "ses-throttled"
    assert str(raised.value) == (
        "gave up after 3 attempts: SES throttled: An error occurred (Throttling) when calling "
        "the SendBounce operation: Rate exceeded"
    )
    assert len(client.call_times) == 3


def test_no_attempt_starts_without_time_to_finish_it_and_tag_after_it(fake_time: Any) -> None:
    # One attempt may take 6 s (2 s connect + 4 s read); tagging after it 2 S3 calls of 11 s.
    assert (AWS_CALL_BOUND_S, AFTER_SEND_RESERVE_S) == (11.0, 22.0)
    client = ScriptedSes(fake_time, ["never"])
    fake_time.deadline = fake_time.now + 27.5
    with pytest.raises(SendDeadlineExceeded) as raised:
        make_sender(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert client.call_times == []
    assert raised.value.reason == "deadline"
    assert str(raised.value) == (
        "attempt 1 needs 28.00 s (0.00 s wait + 6.00 s timeout + 22.00 s reserve after the "
        "send), only 27.50 s remain"
    )
    fake_time.deadline = fake_time.now + 28.0
    result = make_sender(ScriptedSes(fake_time, ["in-time"]), fake_time).send(
        REQUEST, remaining_seconds=fake_time.remaining_seconds
    )
    assert result.message_id == "in-time"


def test_deadline_stops_retrying_after_a_throttle(fake_time: Any) -> None:
    client = ScriptedSes(fake_time, [_throttling_error(), "too-late"])
    fake_time.deadline = fake_time.now + 28.05  # enough for attempt 1, not for backoff + attempt 2
    with pytest.raises(SendDeadlineExceeded) as raised:
        make_sender(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert len(client.call_times) == 1
    assert str(raised.value).startswith("attempt 2 needs ")


def test_the_client_config_makes_botocore_try_exactly_once() -> None:
    with LocalSes(rate_per_second=100.0, region="us-east-1") as ses:
        ses.inject_errors(("Throttling", 400), ("ServiceUnavailable", 503))
        client = boto3.client(
            "ses",
            region_name="us-east-1",
            endpoint_url=ses.endpoint_url,
            **ses_client_kwargs(),
        )
        for code in ("Throttling", "ServiceUnavailable"):
            with pytest.raises(ClientError) as raised:
                client.send_bounce(**REQUEST)
            assert raised.value.response["Error"]["Code"] == code
        assert [attempt.error_code for attempt in ses.attempts] == [
            "Throttling",
            "ServiceUnavailable",
        ]


def test_no_attempt_starts_as_the_send_bounce_window_closes(fake_time: Any) -> None:
    # One send per 2 s and SES throttling: attempt 1 at once, attempt 2 after 2 s; attempt 3
    # would start 4 s in, 9 s before the window closes: under the 10 s margin.
    client = ScriptedSes(fake_time, [_throttling_error()] * 2 + ["never"])
    started = fake_time.now
    window_closes = started + 13.0
    with pytest.raises(PermanentError) as raised:
        make_sender(client, fake_time, rate=0.5).send(
            REQUEST,
            remaining_seconds=fake_time.remaining_seconds,
            window_seconds=lambda: window_closes - fake_time.now,
        )
    assert [t - started for t in client.call_times] == pytest.approx([0.0, 2.0])
    assert raised.value.reason == "expired"
    assert str(raised.value) == (
        "attempt 3 would start 9.00 s before the 24-hour SendBounce window closes; at least "
        "10.00 s are needed"
    )


def test_the_s3_and_sqs_client_config_bounds_each_call() -> None:
    config = aws_client_kwargs()["config"]
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 3.0)


def test_a_request_botocore_cannot_encode_is_invalid_and_never_sent(fake_time: Any) -> None:
    # botocore encodes the request before it connects: a lone surrogate fails there.
    client = ScriptedSes(fake_time, [UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate")])
    with pytest.raises(PermanentError) as raised:
        make_sender(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert raised.value.reason == "invalid-request"
    assert str(raised.value).startswith("botocore could not encode the request: ")


def test_an_unexpected_error_of_the_call_is_an_unknown_outcome(fake_time: Any) -> None:
    client = ScriptedSes(fake_time, [RuntimeError("response parser fell over"), "never"])
    with pytest.raises(PermanentError) as raised:
        make_sender(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert len(client.call_times) == 1
    assert raised.value.reason == "ses-outcome-unknown"
    assert str(raised.value) == (
        "SendBounce failed unexpectedly, the bounce may have gone out: "
        "RuntimeError: response parser fell over"
    )
