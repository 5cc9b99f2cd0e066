"""The batch processor's failure policy as properties: a record whose faults are all transient,
fewer than the queue's receives, and none of which leaves a SendBounce outcome unknown, ends
bounced, never dead-lettered; the same faults on the last receive end in the dead-letter queue
as ``retries-exhausted:<reason>``; every dead letter carries a reason from the contract."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.contract import DEAD_LETTER_REASONS, RETRY_REASONS
from bounce_runtime.errors import (
    RetryableError,
    SendBudgetUnavailable,
    SendDeadlineExceeded,
    SesConnectionFailed,
    SesRejected,
    SesThrottled,
)
from bounce_runtime.processor import failure_cause
from support.events import notification
from support.workflow_fakes import LambdaClock, Rig

MAX_RECEIVES = 5
# Each fault: how to inject it, and the cause a last receive would dead-letter it with.
FAULTS = {
    "throttled": "ses-throttled",  # SES answered Throttling to every attempt
    "no-connection": "ses-connection",  # no connection to SES: nothing was sent
    "budget": "send-budget-unavailable",
    "claim-held": "send-claim-held",  # another delivery is sending
    "tags-unreadable": "InternalError",  # S3 failed before the claim
}


class S3Error(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"An error occurred ({code})")
        self.response = {"Error": {"Code": code}}


def inject(rig: Rig, fault: str) -> None:
    rig.store.claim_free, rig.store.claim_age_s, rig.store.tags_error = True, None, None
    if fault == "throttled":
        rig.sender.outcomes.insert(0, SesThrottled("gave up after 3 attempts"))
    elif fault == "no-connection":
        rig.sender.outcomes.insert(0, SesConnectionFailed("connect timeout"))
    elif fault == "budget":
        rig.sender.outcomes.insert(0, SendBudgetUnavailable("8 attempts: lost every race"))
    elif fault == "claim-held":
        rig.store.claim_free, rig.store.claim_age_s = False, 10.0
    elif fault == "tags-unreadable":
        rig.store.tags_error = S3Error("InternalError")


def record(receive: int) -> dict[str, Any]:
    return {
        "messageId": "sqs-1",
        "body": json.dumps(notification()),
        "attributes": {"ApproximateReceiveCount": str(receive)},
    }


@settings(max_examples=60, deadline=None)
@given(faults=st.lists(st.sampled_from(sorted(FAULTS)), max_size=MAX_RECEIVES - 1))
def test_transient_faults_with_receives_to_spare_end_bounced_never_dead_lettered(
    faults: list[str],
) -> None:
    rig = Rig(max_receive_count=MAX_RECEIVES)
    run = rig.workflow().run
    for receive, fault in enumerate(faults, start=1):
        inject(rig, fault)
        assert run(record(receive), "sqs-1", set()) is False  # back to the queue
        assert rig.dead_letters.sent == []
    inject(rig, "")
    assert run(record(len(faults) + 1), "sqs-1", set()) is True
    assert rig.dead_letters.sent == []
    assert rig.store.calls.count("tag") == 1  # bounced once, and tagged
    assert rig.totals()["BouncesSent"] == 1


@settings(max_examples=30, deadline=None)
@given(fault=st.sampled_from(sorted(FAULTS)), receive=st.integers(MAX_RECEIVES, MAX_RECEIVES + 2))
def test_the_same_fault_on_the_last_receive_is_dead_lettered_with_its_cause(
    fault: str, receive: int
) -> None:
    rig = Rig(max_receive_count=MAX_RECEIVES)
    inject(rig, fault)
    assert rig.workflow().run(record(receive), "sqs-1", set()) is True
    [letter] = rig.dead_letters.sent
    assert letter["reason"] == f"retries-exhausted:{FAULTS[fault]}"
    assert letter["reason"].split(":")[0] in DEAD_LETTER_REASONS
    assert FAULTS[fault] in RETRY_REASONS or FAULTS[fault] == "InternalError"
    assert letter["detail"].startswith(f"failed on receive {receive} of {MAX_RECEIVES} ")
    assert rig.sender.requests == [] or fault in ("throttled", "no-connection", "budget")


class Failing(Exception):
    def __init__(self, response: object) -> None:
        super().__init__("failed")
        self.response = response


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (Failing({}), "Failing"),  # no Error in the response
        (Failing({"Error": {}}), "Failing"),
        (Failing({"Error": {"Code": ""}}), "Failing"),  # an empty code is no code
        (Failing({"Error": {"Code": "Slow Down!"}}), "Slow_Down_"),
        (RetryableError("a retryable error without a reason of its own"), "unknown"),
    ],
)
def test_the_cause_of_a_failure_is_a_short_token(error: Exception, cause: str) -> None:
    assert failure_cause(error) == cause


@pytest.mark.parametrize(
    "attributes",
    ["junk", {"ApproximateReceiveCount": 5}]
    + [{"ApproximateReceiveCount": n} for n in ("\uff15", "\u0665", "5x", "", "-5")],
)
def test_a_receive_count_that_is_not_ascii_digits_is_never_the_last_receive(
    attributes: object,
) -> None:
    rig = Rig(max_receive_count=MAX_RECEIVES)
    inject(rig, "throttled")
    odd = {**record(MAX_RECEIVES), "attributes": attributes}
    assert rig.workflow().run(odd, "sqs-1", set()) is False  # redelivered, not dead-lettered
    assert rig.dead_letters.sent == []


def test_a_batch_cut_short_dead_letters_last_receives_while_one_call_still_fits_exactly() -> None:
    clock = LambdaClock(remaining_s=5.0)
    rig = Rig(clock, max_receive_count=MAX_RECEIVES)
    processor = rig.processor(safety_margin_s=10.0, aws_call_bound_s=5.0)
    records = ["not an SQS record", record(MAX_RECEIVES), record(1)]
    response = processor.process({"Records": records})
    assert response["batchItemFailures"] == [{"itemIdentifier": ""}, {"itemIdentifier": "sqs-1"}]
    assert [letter["reason"] for letter in rig.dead_letters.sent] == ["retries-exhausted:deadline"]


@pytest.mark.parametrize(
    "failure",
    [
        SendBudgetUnavailable("unreachable"),
        SendDeadlineExceeded("no time for an attempt"),
        SesThrottled("throttled"),
        SesRejected("rejected", detail="MessageRejected"),
    ],
)
def test_a_claim_that_cannot_be_released_is_logged_with_the_message_id(failure: Exception) -> None:
    rig = Rig()
    rig.store.release_error = S3Error("InternalError")
    rig.sender.outcomes.insert(0, failure)
    rig.processor(safety_margin_s=0.0).process({"Records": [record(1)]})
    [line] = rig.log_lines("send claim not released: a redelivery will be dead-lettered")
    assert line["ses_message_id"] == json.loads(record(1)["body"])["mail"]["messageId"]
