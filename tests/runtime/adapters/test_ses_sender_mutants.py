"""BounceSender at the edges of its promises: never twice (what is retried), never over the
budget, never late (the Lambda deadline, the 24-hour window), each error saying what happened.

These pin what mutation testing (``make mutation``) found no test noticing.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bounce_runtime.adapters.clients import ses_client_kwargs
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.ses_sender import BounceSender, RetryPolicy
from bounce_runtime.contract import (
    AFTER_SEND_RESERVE_S,
    SEND_ATTEMPT_TIMEOUT_S,
    SES_CONNECT_TIMEOUT_S,
    SES_READ_TIMEOUT_S,
)
from bounce_runtime.errors import PermanentError, SendDeadlineExceeded, SendSlotUnavailable

REQUEST: dict[str, Any] = {
    "OriginalMessageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
    "BounceSender": "mailer-daemon@example.com",
    "BouncedRecipientInfoList": [{"Recipient": "nobody@example.com", "BounceType": "DoesNotExist"}],
}
# One attempt's timeout and the reserve after it: the Lambda time an attempt needs.
MIN_SEND_S = SEND_ATTEMPT_TIMEOUT_S + AFTER_SEND_RESERVE_S


class EdgeRng:
    """A random source that always answers the low (or the high) end of the range."""

    def __init__(self, *, high: bool) -> None:
        self.high = high

    def uniform(self, low: float, high: float) -> float:
        return high if self.high else low


class Ses:
    """An SES client answering from a script (an exception is raised, a string is a MessageId)."""

    def __init__(self, *steps: Exception | str) -> None:
        self.steps = list(steps)
        self.calls = 0

    def send_bounce(self, **request: Any) -> dict[str, Any]:
        assert request == REQUEST
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return {"MessageId": step}


class Budget:
    """A send budget that grants (or refuses) every slot after ``wait_s``, noting how far ahead
    of its clock each request let the slot start."""

    def __init__(
        self, fake_time: Any, *, grant: bool = True, wait_s: float = 0.0, repairs: int = 0
    ) -> None:
        self.fake_time = fake_time
        self.grant = grant
        self.wait_s = wait_s
        self.latest_start_in: list[float] = []
        self.repairs = 0
        self._repairs_per_take = repairs

    def now(self) -> float:
        return float(self.fake_time.now)

    def acquire(self, *, latest_start_s: float) -> object | None:
        self.latest_start_in.append(latest_start_s - self.fake_time.now)
        self.fake_time.sleep(self.wait_s)
        self.repairs += self._repairs_per_take
        return object() if self.grant else None


def sender_for(client: Any, fake_time: Any, **options: Any) -> BounceSender:
    rate = options.pop("rate", 10.0)
    options.setdefault("rng", EdgeRng(high=True))
    pacer = Pacer(rate, clock=fake_time.clock, sleep=fake_time.sleep)
    return BounceSender(client, pacer, sleep=fake_time.sleep, **options)


def client_error(code: str | None, status: int | None) -> ClientError:
    response: dict[str, Any] = {}
    if code is not None:
        response["Error"] = {"Code": code, "Message": "oops"}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "SendBounce")  # type: ignore[arg-type]


def test_backoff_waits_half_the_ceiling_plus_up_to_another_half() -> None:
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=5.0)
    retries = (1, 2, 3, 6, 9)
    low = [policy.backoff(n, EdgeRng(high=False)) for n in retries]
    high = [policy.backoff(n, EdgeRng(high=True)) for n in retries]
    assert low == pytest.approx([0.1, 0.2, 0.4, 2.5, 2.5])
    assert high == pytest.approx([0.2, 0.4, 0.8, 5.0, 5.0])


def test_a_sender_built_without_a_random_source_still_backs_off(fake_time: Any) -> None:
    # The handler builds its sender this way (no injected rng).
    client = Ses(client_error("Throttling", 400), "bounce-1")
    pacer = Pacer(1000.0, clock=fake_time.clock, sleep=fake_time.sleep)
    sender = BounceSender(client, pacer, sleep=fake_time.sleep)
    result = sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert (result.message_id, result.attempts, result.throttles) == ("bounce-1", 2, 1)
    backoffs = [s for s in fake_time.sleeps if s > 0.01]
    assert len(backoffs) == 1
    assert 0.1 <= backoffs[0] <= 0.2


@pytest.mark.parametrize(
    "code", ["Throttling", "ThrottlingException", "TooManyRequestsException", "RequestThrottled"]
)
def test_every_throttling_code_is_retried(fake_time: Any, code: str) -> None:
    # Throttling: SES refused the request before acting on it, so a retry cannot send twice.
    throttled: list[str] = []
    client = Ses(client_error(code, 400), "bounce-1")
    result = sender_for(client, fake_time).send(
        REQUEST,
        remaining_seconds=fake_time.remaining_seconds,
        on_throttle=lambda: throttled.append(code),
    )
    assert (result.message_id, result.attempts, result.throttles) == ("bounce-1", 2, 1)
    assert throttled == [code]


@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailableException", "NewCode"])
def test_any_500_answer_is_an_unknown_outcome_never_retried(fake_time: Any, code: str) -> None:
    client = Ses(client_error(code, 500), "never")
    with pytest.raises(PermanentError) as raised:
        sender_for(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert raised.value.reason == "ses-outcome-unknown"
    assert client.calls == 1


def test_a_rejection_without_an_error_code_is_named_by_its_http_status(fake_time: Any) -> None:
    client = Ses(client_error(None, 400), "never")
    with pytest.raises(PermanentError) as raised:
        sender_for(client, fake_time).send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert raised.value.reason == "ses-rejected:400"
    assert client.calls == 1


def test_the_ses_client_makes_one_attempt_within_the_attempt_timeout() -> None:
    # The sender reserves SEND_ATTEMPT_TIMEOUT_S of Lambda time per attempt: the client's own
    # timeouts must add up to it, and botocore must not retry inside one attempt.
    config = ses_client_kwargs()["config"]
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (
        SES_CONNECT_TIMEOUT_S,
        SES_READ_TIMEOUT_S,
    )
    assert config.connect_timeout + config.read_timeout == SEND_ATTEMPT_TIMEOUT_S == 6.0


def test_no_attempt_starts_exactly_at_the_window_margin(fake_time: Any) -> None:
    client = Ses("never")
    with pytest.raises(PermanentError) as raised:
        sender_for(client, fake_time).send(
            REQUEST, remaining_seconds=fake_time.remaining_seconds, window_seconds=lambda: 10.0
        )
    assert client.calls == 0
    assert raised.value.reason == "expired"
    assert str(raised.value) == (
        "attempt 1 would start 10.00 s before the 24-hour SendBounce window closes; at least "
        "10.00 s are needed"
    )


def test_a_retry_that_would_start_too_near_the_window_end_is_not_waited_for(
    fake_time: Any,
) -> None:
    # The backoff (0.2 s) would end 9.95 s before the window closes: given up before sleeping.
    client = Ses(client_error("Throttling", 400), "never")
    window_closes = fake_time.now + 10.15
    with pytest.raises(PermanentError) as raised:
        sender_for(client, fake_time).send(
            REQUEST,
            remaining_seconds=fake_time.remaining_seconds,
            window_seconds=lambda: window_closes - fake_time.now,
        )
    assert client.calls == 1
    assert fake_time.sleeps == []
    assert raised.value.reason == "expired"
    assert str(raised.value) == (
        "attempt 2 would start 9.95 s before the 24-hour SendBounce window closes; at least "
        "10.00 s are needed"
    )


def test_a_budget_slot_must_start_with_time_left_for_the_attempt(fake_time: Any) -> None:
    fake_time.deadline = fake_time.now + 100.0
    budget = Budget(fake_time)
    sender_for(Ses("bounce-1"), fake_time, budget=budget).send(
        REQUEST, remaining_seconds=fake_time.remaining_seconds
    )
    assert budget.latest_start_in == pytest.approx([100.0 - MIN_SEND_S])


def test_a_budget_slot_must_start_before_the_window_margin(fake_time: Any) -> None:
    fake_time.deadline = fake_time.now + 100.0
    budget = Budget(fake_time)
    sender_for(Ses("bounce-1"), fake_time, budget=budget).send(
        REQUEST, remaining_seconds=fake_time.remaining_seconds, window_seconds=lambda: 50.0
    )
    assert budget.latest_start_in == pytest.approx([50.0 - 10.0])


def test_the_wait_reported_adds_the_pacer_and_the_budget(fake_time: Any) -> None:
    pacer = Pacer(1.0, clock=fake_time.clock, sleep=fake_time.sleep)
    pacer.wait()  # the previous call: the next slot is 1 s away
    sender = BounceSender(
        Ses("bounce-1"),
        pacer,
        budget=Budget(fake_time, wait_s=0.5),
        sleep=fake_time.sleep,  # type: ignore[arg-type]
    )
    result = sender.send(REQUEST, remaining_seconds=fake_time.remaining_seconds)
    assert result.waited_s == pytest.approx(1.5)


def test_no_budget_slot_in_the_lambda_time_left_returns_the_record_unsent(
    fake_time: Any,
) -> None:
    fake_time.deadline = fake_time.now + MIN_SEND_S + 0.5
    client = Ses("never")
    with pytest.raises(SendSlotUnavailable) as raised:
        sender_for(client, fake_time, budget=Budget(fake_time, grant=False)).send(
            REQUEST, remaining_seconds=fake_time.remaining_seconds
        )
    assert isinstance(raised.value, SendDeadlineExceeded)  # handed back as any deadline is
    assert client.calls == 0
    assert str(raised.value) == (
        "attempt 1: the send budget has no slot in the 0.50 s left for one (Lambda time left "
        "less 28.00 s for the attempt and what follows it); the record goes back to the queue "
        "unsent"
    )


def test_no_budget_slot_before_the_window_closes_is_expired(fake_time: Any) -> None:
    client = Ses("never")
    with pytest.raises(PermanentError) as raised:
        sender_for(client, fake_time, budget=Budget(fake_time, grant=False)).send(
            REQUEST, remaining_seconds=fake_time.remaining_seconds, window_seconds=lambda: 10.5
        )
    assert client.calls == 0
    assert raised.value.reason == "expired"
    assert str(raised.value) == (
        "attempt 1: the send budget has no slot in the 0.50 s left before the 24-hour "
        "SendBounce window closes (less 10.00 s); checked for 0.00 s"
    )


def test_no_budget_slot_when_the_window_and_the_lambda_end_together_is_expired(
    fake_time: Any,
) -> None:
    # The window is the nearer bound when both bounds fall at the same time: the message can
    # never be bounced, so it is dead-lettered rather than redelivered.
    fake_time.deadline = fake_time.now + 100.0
    with pytest.raises(PermanentError) as raised:
        sender_for(Ses("never"), fake_time, budget=Budget(fake_time, grant=False)).send(
            REQUEST,
            remaining_seconds=fake_time.remaining_seconds,
            window_seconds=lambda: 100.0 - MIN_SEND_S + 10.0,
        )
    assert raised.value.reason == "expired"


@pytest.mark.parametrize(("repairs", "granted"), [(0, True), (2, True), (1, False)])
def test_each_budget_item_repair_is_reported_once_whatever_the_take_brought(
    fake_time: Any, repairs: int, granted: bool
) -> None:
    reported: list[None] = []
    budget = Budget(fake_time, grant=granted, repairs=repairs)
    sender = sender_for(Ses("bounce-1"), fake_time, budget=budget)
    fake_time.deadline = fake_time.now + (100.0 if granted else MIN_SEND_S + 0.5)

    try:
        sender.send(
            REQUEST,
            remaining_seconds=fake_time.remaining_seconds,
            on_budget_repair=lambda: reported.append(None),
        )
    except SendSlotUnavailable:
        assert not granted

    assert len(reported) == repairs


def test_a_sender_reports_only_the_repairs_of_its_own_take(fake_time: Any) -> None:
    """The budget's repair count is cumulative over the container's life: the second send reports
    its own take's repair, not the first one's again."""
    budget = Budget(fake_time, repairs=1)
    sender = sender_for(Ses("bounce-1", "bounce-2"), fake_time, budget=budget)
    fake_time.deadline = fake_time.now + 100.0
    reported: list[int] = []
    for send in (1, 2):
        sender.send(
            REQUEST,
            remaining_seconds=fake_time.remaining_seconds,
            on_budget_repair=lambda send=send: reported.append(send),
        )
        fake_time.sleep(1.0)
    assert budget.repairs == 2
    assert reported == [1, 2]
