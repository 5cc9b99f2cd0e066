"""The rule set activation always answers CloudFormation: whatever the event, whatever SES does,
one PUT of a well-formed answer reaches the response URL before the Lambda timeout (the real
handler, moto's SES as a server behind a proxy that fails on demand)."""

from __future__ import annotations

import json
import signal
import threading
import time
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from deploy.stand_ins import (
    LOGICAL_ID,
    STACK_ID,
    CloudFormation,
    LambdaContext,
    ResponseEndpoint,
    SesProxy,
)

NOTHING_DONE = "cdk-ses-bounce:nothing-activated"


def active(ses: Any) -> str | None:
    name: str | None = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    return name


def test_the_answer_is_one_put_of_what_cloudformation_reads(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = cloudformation.event("Create", "ours")
    assert handler.handler(event, LambdaContext()) is None

    (put,) = response.received
    assert put.method == "PUT"
    assert put.path == f"/{event['RequestId']}?X-Amz-Signature=abc&Expires=1"
    # The pre-signed URL is signed for an empty Content-Type (cfn-response sends the same).
    assert put.headers["Content-Type"] == ""
    assert int(put.headers["Content-Length"]) == len(put.raw) <= 4096
    assert put.body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": "ours|previous:",
        "StackId": STACK_ID,
        "RequestId": event["RequestId"],
        "LogicalResourceId": LOGICAL_ID,
        "Data": {"PreviousRuleSetName": ""},
    }
    assert active(ses) == "ours"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the watchdog is disarmed
    logged = capsys.readouterr().out
    assert "X-Amz-Signature" not in logged  # the pre-signed URL is a credential: never logged
    assert [json.loads(line) for line in logged.splitlines()][-2]["outcome"] == (
        "activated ours (previously active: none)"
    )


MALFORMED = {
    "no ResourceProperties": ({"ResourceProperties": None}, "RuleSetName"),
    "no RuleSetName": ({"ResourceProperties": {"ServiceToken": "x"}}, "RuleSetName"),
    "empty RuleSetName": ({"ResourceProperties": {"RuleSetName": ""}}, "RuleSetName"),
    "RuleSetName not a string": ({"ResourceProperties": {"RuleSetName": ["ours"]}}, "RuleSetName"),
    "ResourceProperties not an object": ({"ResourceProperties": "ours"}, "RuleSetName"),
    "unknown RequestType": ({"RequestType": "Replace"}, "'Replace'"),
    "no RequestType": ({"RequestType": None}, "RequestType None"),
}


@pytest.mark.parametrize("change, named", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_create_is_answered_failed_and_changes_nothing(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    change: dict[str, Any],
    named: str,
) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    event = {**cloudformation.event("Create", "ours"), **change}
    event = {k: v for k, v in event.items() if v is not None}
    handler.handler(event, LambdaContext())

    answer = response.only_answer(event["RequestId"])
    assert answer["Status"] == "FAILED"
    assert named in answer["Reason"]
    # A physical id that the rollback's Delete recognises as "nothing to give back".
    assert answer["PhysicalResourceId"] == NOTHING_DONE
    assert (answer["StackId"], answer["LogicalResourceId"]) == (STACK_ID, LOGICAL_ID)
    assert active(ses) == "theirs"


def test_a_malformed_update_is_answered_failed_with_the_old_physical_id(
    ses: Any, handler: ModuleType, cloudformation: CloudFormation, response: ResponseEndpoint
) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="ours")
    event = cloudformation.event("Update", None, physical_id="ours|previous:theirs")
    handler.handler(event, LambdaContext())
    answer = response.only_answer(event["RequestId"])
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("FAILED", "ours|previous:theirs")
    assert "RuleSetName" in answer["Reason"]
    assert active(ses) == "ours"


def test_an_event_without_a_response_url_is_logged_not_raised(
    handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    for event in ({"RequestType": "Create"}, None, "not an event"):
        assert handler.handler(event, LambdaContext()) is None
    assert capsys.readouterr().out.count("the event has no ResponseURL") == 3


def test_an_ses_error_is_answered_failed_with_its_reason_at_once(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    ses_proxy: SesProxy,
) -> None:
    ses_proxy.faults["SetActiveReceiptRuleSet"] = ("fail", "AccessDenied", "not authorized")
    event = cloudformation.event("Create", "ours")
    started = time.monotonic()
    handler.handler(event, LambdaContext())
    assert time.monotonic() - started < 5

    answer = response.only_answer(event["RequestId"])
    assert answer["Status"] == "FAILED"
    assert "AccessDenied" in answer["Reason"] and "not authorized" in answer["Reason"]
    assert "2026/12/06/[$LATEST]0123456789abcdef" in answer["Reason"]  # where to look
    assert answer["PhysicalResourceId"] == "ours|previous:"
    assert active(ses) is None


def test_an_ses_call_that_hangs_is_cut_short_to_answer_before_the_lambda_timeout(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    ses_proxy: SesProxy,
) -> None:
    """SES accepts the connection and never answers: the watchdog stops the work when only the
    answer's reserve is left, and the FAILED answer goes out within the time Lambda allows."""
    ses_proxy.faults["DescribeActiveReceiptRuleSet"] = ("hang",)
    remaining = handler.ANSWER_RESERVE_SECONDS + 1.0
    event = cloudformation.event("Create", "ours")
    started = time.monotonic()
    handler.handler(event, LambdaContext(remaining_seconds=remaining))
    elapsed = time.monotonic() - started

    answer = response.only_answer(event["RequestId"])
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("OutOfTime: stopped before the Lambda timeout")
    assert answer["PhysicalResourceId"] == NOTHING_DONE
    assert 1.0 <= elapsed < 4.0 < remaining
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("failure", [500, 0], ids=["HTTP 500", "connection dropped"])
def test_a_response_url_that_fails_once_gets_the_same_answer_again(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    failure: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second PUT carries the same body; the work is not redone (SES sees one activation)."""
    pauses: list[float] = []
    monkeypatch.setattr(handler, "time", SimpleNamespace(sleep=pauses.append))
    response.failures.append(failure)
    event = cloudformation.event("Create", "ours")
    handler.handler(event, LambdaContext())

    first, second = response.received
    assert first.raw == second.raw
    assert second.body["Status"] == "SUCCESS"
    assert pauses == [1]
    assert active(ses) == "ours"


def test_a_response_url_that_never_accepts_is_tried_a_few_times_then_given_up(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without an answer CloudFormation fails the request after the custom resource's service
    timeout (minutes); the handler itself returns normally, so Lambda does not run it again."""
    pauses: list[float] = []
    monkeypatch.setattr(handler, "time", SimpleNamespace(sleep=pauses.append))
    response.failures.extend([503] * handler.ANSWER_ATTEMPTS)
    assert handler.handler(cloudformation.event("Create", "ours"), LambdaContext()) is None
    assert len(response.received) == handler.ANSWER_ATTEMPTS == 3
    assert pauses == [1, 2]
    assert capsys.readouterr().out.count('"answer_failed"') == 3


def test_a_long_failure_reason_is_cut_to_fit_cloudformation_s_limit(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    ses_proxy: SesProxy,
) -> None:
    ses_proxy.faults["SetActiveReceiptRuleSet"] = ("fail", "AccessDenied", "x" * 6000)
    event = cloudformation.event("Create", "ours")
    handler.handler(event, LambdaContext())
    (put,) = response.received
    assert len(put.raw) <= 4096
    assert put.body["Status"] == "FAILED"
    assert put.body["Reason"].startswith("ClientError: An error occurred (AccessDenied)")
    assert put.body["Reason"].endswith(" [cut]")


def test_outside_the_main_thread_the_handler_still_works_without_its_watchdog(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Signals reach only the main thread (where Lambda runs handlers); elsewhere the watchdog
    is off and the botocore bounds alone keep the handler within its timeout."""
    event = cloudformation.event("Create", "ours")
    worker = threading.Thread(target=handler.handler, args=(event, LambdaContext()))
    worker.start()
    worker.join(30)
    assert response.only_answer(event["RequestId"])["Status"] == "SUCCESS"
    assert "off: not in the main thread" in capsys.readouterr().out
    assert active(ses) == "ours"


def test_a_delete_without_a_physical_id_succeeds_without_touching_ses(
    ses: Any,
    handler: ModuleType,
    cloudformation: CloudFormation,
    response: ResponseEndpoint,
    ses_proxy: SesProxy,
) -> None:
    """Nothing identifies what to give back: a FAILED answer would only block the stack's
    deletion, so it succeeds and leaves SES alone."""
    ses.set_active_receipt_rule_set(RuleSetName="ours")
    ses_proxy.actions.clear()
    event = cloudformation.event("Delete", "ours")
    handler.handler(event, LambdaContext())
    answer = response.only_answer(event["RequestId"])
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", NOTHING_DONE)
    assert ses_proxy.actions == []
    assert active(ses) == "ours"
