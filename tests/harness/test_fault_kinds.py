"""One fault at a time, small and deterministic, so a failure names the fault.

Each test runs a message (or two copies of it) through the real BatchProcessor on the sqs_sim
fakes until the queue is empty, with one kind of fault, then checks the promises: SES sent at
most one bounce for the message (counted on SES's side), and the message ended bounced, or
dead-lettered with a reason. The big seeded run is ``test_fault_injection``.
"""

from __future__ import annotations

import pytest

from bounce_runtime.contract import (
    REASON_EXPIRED,
    REASON_OUTCOME_UNKNOWN,
    REASON_SEND_CLAIM_HELD,
    SES_CONNECT_TIMEOUT_S,
    SES_READ_TIMEOUT_S,
)
from support.fault_rig import REDRIVEN, FaultRig
from support.local_ses import count_rate_violations
from support.sqs_sim import CONNECT_TIMEOUT, CRASH, INTERLEAVE, READ_TIMEOUT, Fault

MSG = "msg-under-fault"
OTHER = "msg-next-in-line"
LEFT_FOR_REDELIVERY = "record failed: left for redelivery"
KMS_READ_DENIED = "User is not authorized to perform: kms:Decrypt on the object's KMS key"
KMS_WRITE_DENIED = "User is not authorized to perform: kms:GenerateDataKey on the bucket's KMS key"


def once(code: str, *, status: int = 0, after: bool = False, seconds: float = 0.0) -> Fault:
    """A fault that fires on the first call of its operation (in its phase) only."""
    return Fault(code, status, 1.0, after=after, seconds=seconds, limit=1)


def always(code: str, status: int, message: str = "") -> Fault:
    return Fault(code, status, 1.0, message=message)


# SES: a 5xx after SES has sent; an answer that never comes ------------------------------------


def test_5xx_after_ses_sent_is_dead_lettered_never_sent_again() -> None:
    rig = FaultRig({"SendBounce": (once("InternalFailure", status=500, after=True),)})
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 1
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN]
    assert rig.claimed(MSG)


def test_read_timeout_after_ses_sent_is_dead_lettered_never_sent_again() -> None:
    fault = once(READ_TIMEOUT, after=True, seconds=SES_READ_TIMEOUT_S)
    rig = FaultRig({"SendBounce": (fault,)})
    rig.message(MSG, copies=2)
    rig.drain(batch_size=1)  # one copy per invocation
    assert rig.sent(MSG) == 1
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN] * 2  # both copies, neither resent
    assert rig.claimed(MSG) and rig.tag(MSG) is None


def test_read_timeout_before_ses_acted_is_still_an_unknown_outcome() -> None:
    # The request went out and no answer came: the runtime cannot know that SES did nothing.
    rig = FaultRig({"SendBounce": (once(READ_TIMEOUT, seconds=SES_READ_TIMEOUT_S),)})
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 0
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN]


def test_connect_timeout_before_the_request_went_out_is_retried() -> None:
    fault = Fault(CONNECT_TIMEOUT, 0, 1.0, limit=2, seconds=SES_CONNECT_TIMEOUT_S)
    rig = FaultRig({"SendBounce": (fault,)})
    rig.message(MSG)
    rig.drain()
    assert rig.faults.injected == {"SendBounce:ConnectTimeoutError": 2}
    assert rig.sent(MSG) == 1
    assert rig.tag(MSG) == rig.ses.sent[0].message_id
    assert rig.dead_letters() == []


# Invocations killed --------------------------------------------------------------------------


def test_killed_after_the_claim_waits_out_the_claim_then_dead_letters() -> None:
    # Redelivered every 25 s: the claim (TTL 60 s) is held at 25 s and 50 s, stale at 75 s.
    rig = FaultRig({"PutObject": (once(CRASH, after=True),)}, visibility_timeout_s=25.0)
    rig.message(MSG)
    rig.drain()
    assert rig.kills == 1
    assert rig.sent(MSG) == 0
    assert rig.log_reasons(LEFT_FOR_REDELIVERY) == [REASON_SEND_CLAIM_HELD] * 2
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN]


@pytest.mark.parametrize("ses_sent", [False, True], ids=["before-ses-saw-it", "after-ses-sent"])
def test_killed_during_send_bounce_never_sends_again(ses_sent: bool) -> None:
    rig = FaultRig({"SendBounce": (once(CRASH, after=ses_sent),)})
    rig.message(MSG, copies=2)
    rig.drain(batch_size=1)  # one copy per invocation
    assert rig.kills == 1
    assert rig.sent(MSG) == int(ses_sent)
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN] * 2


def test_killed_after_a_dead_letter_send_dead_letters_again_with_the_same_reason() -> None:
    rig = FaultRig({"SendMessage": (once(CRASH, after=True),)})
    rig.message(MSG, timestamp="2024-04-30T10:00:00.000Z")  # 27 hours old: expired
    rig.drain()
    assert rig.kills == 1
    assert rig.sent(MSG) == 0
    # SQS never deleted the record: its redelivery goes to the dead-letter queue once more.
    assert rig.dead_letters() == [REASON_EXPIRED, REASON_EXPIRED]
    assert rig.sqs.pending == 0


def test_killed_after_dead_lettering_an_unknown_outcome_never_sends() -> None:
    faults = {
        "SendBounce": (once(READ_TIMEOUT, after=True, seconds=SES_READ_TIMEOUT_S),),
        "SendMessage": (once(CRASH, after=True),),
    }
    rig = FaultRig(faults)
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 1
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN] * 2


# Two invocations at once, restarted containers ----------------------------------------------


@pytest.mark.parametrize("after_claim", [False, True], ids=["before-claim", "after-claim"])
def test_two_invocations_interleaved_at_the_claim_send_one_bounce(after_claim: bool) -> None:
    rig = FaultRig({"PutObject": (once(INTERLEAVE, after=after_claim),)})
    rig.message(MSG)
    rig.drain()
    assert rig.sqs.stats.concurrent_copies == 1
    assert rig.sent(MSG) == 1
    assert rig.tag(MSG) == rig.ses.sent[0].message_id
    assert rig.dead_letters() == []
    # After A's claim, B found it held and came back once A had tagged: skipped, not sent.
    expected_held = [REASON_SEND_CLAIM_HELD] if after_claim else []
    assert rig.log_reasons(LEFT_FOR_REDELIVERY) == expected_held


def test_a_restarted_container_never_sends_a_bounce_twice() -> None:
    rig = FaultRig({"PutObjectTagging": (once(CRASH),)})  # killed between SendBounce and tag
    rig.message(MSG, copies=2)
    rig.message(OTHER)
    rig.drain(batch_size=1)
    assert rig.kills == 1 and rig.containers_built == 2
    assert rig.sent(MSG) == 1 and rig.sent(OTHER) == 1
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN] * 2


def test_a_restarted_container_keeps_to_the_rate() -> None:
    # The replacement container takes its slot from the account's shared budget, whose schedule
    # its killed predecessor advanced: its first call waits for it.
    rig = FaultRig({"PutObjectTagging": (once(CRASH),)})
    rig.message(MSG)
    rig.message(OTHER)
    rig.drain(batch_size=1)
    assert rig.kills == 1 and rig.sent(OTHER) == 1
    assert count_rate_violations(rig.ses.arrivals, rig.rate_per_second) == 0


def test_without_the_shared_budget_a_restarted_container_breaks_the_rate() -> None:
    """The fault the budget removes: a container's own pacer starts with no schedule."""
    rig = FaultRig({"PutObjectTagging": (once(CRASH),)}, shared_budget=False)
    rig.message(MSG)
    rig.message(OTHER)
    rig.drain(batch_size=1)
    assert rig.kills == 1 and rig.sent(OTHER) == 1
    assert count_rate_violations(rig.ses.arrivals, rig.rate_per_second) == 1


# S3 and KMS access denied --------------------------------------------------------------------

# S3 answers AccessDenied (403) when IAM or the bucket policy refuses the call, and when the
# object's KMS key refuses the function: reading needs kms:Decrypt (GetObject), writing
# kms:GenerateDataKey (the claim's PutObject); the tagging calls do not use the key.
DENIALS = [
    pytest.param("GetObject", "", id="GetObject-s3"),
    pytest.param("GetObject", KMS_READ_DENIED, id="GetObject-kms"),
    pytest.param("GetObjectTagging", "", id="GetObjectTagging-s3"),
    pytest.param("PutObject", "", id="claim-PutObject-s3"),
    pytest.param("PutObject", KMS_WRITE_DENIED, id="claim-PutObject-kms"),
]


@pytest.mark.parametrize(("operation", "message"), DENIALS)
def test_access_denied_once_is_retried_and_bounces_once(operation: str, message: str) -> None:
    fault = Fault("AccessDenied", 403, 1.0, limit=1, message=message)
    rig = FaultRig({operation: (fault,)})
    rig.message(MSG, headers_truncated=True)  # the header block is read from the object
    rig.drain()
    assert rig.faults.injected == {f"{operation}:AccessDenied": 1}
    assert rig.sent(MSG) == 1
    assert rig.dead_letters() == []


@pytest.mark.parametrize(("operation", "message"), DENIALS)
def test_access_always_denied_is_redriven_and_never_sent(operation: str, message: str) -> None:
    rig = FaultRig({operation: (always("AccessDenied", 403, message),)})
    rig.message(MSG, headers_truncated=True)
    rig.drain()
    assert rig.sent(MSG) == 0
    assert rig.dead_letters() == [REDRIVEN]
    assert not rig.claimed(MSG)


def test_tagging_denied_after_the_send_never_sends_again() -> None:
    rig = FaultRig({"PutObjectTagging": (always("AccessDenied", 403),)})
    rig.message(MSG, copies=2)
    rig.drain(batch_size=1)
    assert rig.sent(MSG) == 1
    assert rig.log_reasons("bounce sent but the object could not be tagged") == ["None"]
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN]  # the second copy


def test_claim_release_denied_keeps_the_claim_and_dead_letters() -> None:
    faults = {
        "SendBounce": (Fault("Throttling", 400, 1.0, limit=6),),  # every attempt: released
        "DeleteObject": (always("AccessDenied", 403),),
    }
    rig = FaultRig(faults)
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 0
    assert rig.claimed(MSG)
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN]


# Clock skew between the function and S3 ------------------------------------------------------


@pytest.mark.parametrize("skew_s", [-300.0, -90.0, 90.0, 300.0])
def test_skewed_s3_clock_never_sends_twice(skew_s: float) -> None:
    rig = FaultRig({"PutObject": (once(INTERLEAVE, after=True),)}, s3_skew_s=skew_s)
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 1
    assert set(rig.dead_letters()) <= {REASON_OUTCOME_UNKNOWN}


@pytest.mark.parametrize("skew_s", [-300.0, 0.0, 300.0])
def test_skewed_s3_clock_still_ends_a_dead_claim_as_unknown(skew_s: float) -> None:
    # Killed after the claim; redelivered every 180 s, 5 receives: long enough for the claim
    # (TTL 60 s) to look stale even when S3's clock is 5 minutes ahead.
    rig = FaultRig({"PutObject": (once(CRASH, after=True),)}, s3_skew_s=skew_s)
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 0
    assert rig.dead_letters() == [REASON_OUTCOME_UNKNOWN]


def test_s3_clock_behind_does_not_make_a_live_claim_look_stale() -> None:
    rig = FaultRig({"PutObject": (once(INTERLEAVE, after=True),)}, s3_skew_s=-300.0)
    rig.message(MSG)
    rig.drain()
    assert rig.sent(MSG) == 1
    assert rig.dead_letters() == []
