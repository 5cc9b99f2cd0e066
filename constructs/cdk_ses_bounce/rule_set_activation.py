"""Custom resource handler: makes a receipt rule set the active one and gives back what it took.

Inlined as the Lambda function's code (ZipFile); it answers CloudFormation itself with a PUT to
the pre-signed ResponseURL, on every path. Only the standard library and boto3.

Create: record the active set, activate ours. Update: activate the new set, keep the set recorded
at Create. Delete (also a failed Create's rollback): if ours is still active, re-activate the
recorded set (or deactivate when there is none or it no longer exists); never touch another set.
Delete events carry no Data, so the recorded set travels in the physical id:
`<ours>|previous:<previous>` (SES rule set names cannot contain `|` or `:`); a physical id
without that separator is one of version 0.3 (previous unknown).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from typing import Any

# SES calls: short timeouts, few attempts.
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 3
BACKOFF_SECONDS = sum(2**n for n in range(1, MAX_ATTEMPTS))  # botocore's standard mode, at most
WORST_SES_CALL_SECONDS = (
    MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + BACKOFF_SECONDS
)
MOST_SES_CALLS = 3  # a Delete: describe the active set, re-activate the previous one, deactivate
# The answer: a PUT to the pre-signed URL, retried; this much time is kept free for it.
ANSWER_TIMEOUT_SECONDS = 5
ANSWER_ATTEMPTS = 3
ANSWER_RESERVE_SECONDS = ANSWER_ATTEMPTS * (ANSWER_TIMEOUT_SECONDS + 2) + 1
MAX_ANSWER_BYTES = 4096  # CloudFormation's limit on the response body

SEPARATOR = "|previous:"
NOTHING_DONE = "cdk-ses-bounce:nothing-activated"  # physical id of a Create that changed nothing
PREVIOUS_ATTRIBUTE = "PreviousRuleSetName"


class OutOfTime(BaseException):
    """Raised by the watchdog when only the answer's reserve is left. Not an `Exception`:
    botocore turns any `Exception` raised inside a request into a retryable HTTPClientError,
    which would start the hanging call again."""


def physical_id(ours: str, previous: str | None) -> str:
    return f"{ours}{SEPARATOR}{previous or ''}"


def parse_physical_id(value: str) -> tuple[str, str | None]:
    """(our rule set, the one to give back); a 0.3 physical id is the bare name."""
    ours, separator, previous = value.rpartition(SEPARATOR)
    if not separator:
        return value, None
    return ours, previous or None


def ses_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )
    return boto3.client("ses", config=config)


def active_rule_set(ses: Any) -> str | None:
    name: str | None = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    return name


def rule_set_name(event: dict[str, Any]) -> str:
    properties = event.get("ResourceProperties")
    name = properties.get("RuleSetName") if isinstance(properties, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("ResourceProperties.RuleSetName: expected a non-empty string")
    return name


def give_back(ses: Any, ours: str, previous: str | None) -> str:
    """On Delete: undo our activation if it still stands; say what was done."""
    active = active_rule_set(ses)
    if active != ours:
        return f"left {active or 'no rule set'} active: {ours} is not the active one"
    if previous == ours:
        return f"left {ours} active: it was active before"
    if previous:
        try:
            ses.set_active_receipt_rule_set(RuleSetName=previous)
            return f"re-activated {previous}"
        except ses.exceptions.RuleSetDoesNotExistException:
            pass
    ses.set_active_receipt_rule_set()
    return f"deactivated {ours}" + (f" ({previous} no longer exists)" if previous else "")


def apply(event: dict[str, Any], answer: dict[str, Any], ses: Any) -> str:
    """Do what the event asks; fill `answer` (PhysicalResourceId, Data) as facts become known."""
    request = event.get("RequestType")
    if request == "Delete":
        old = answer["PhysicalResourceId"]
        if old == NOTHING_DONE:
            return "nothing to give back: the Create changed nothing"
        return give_back(ses, *parse_physical_id(old))
    if request == "Create":
        ours = rule_set_name(event)
        previous = active_rule_set(ses)
        # Known before activating: a failed Create's rollback Delete then still gives it back.
        answer["PhysicalResourceId"] = new_id = physical_id(ours, previous)
    elif request == "Update":
        ours = rule_set_name(event)
        old_ours, previous = parse_physical_id(answer["PhysicalResourceId"])
        # Same set, same id; a renamed set gets a new id (CloudFormation then deletes the old
        # id, which finds the new set active and leaves it); a failed Update keeps the old id.
        new_id = answer["PhysicalResourceId"] if ours == old_ours else physical_id(ours, previous)
    else:
        raise ValueError(f"RequestType {request!r}: expected Create, Update or Delete")
    ses.set_active_receipt_rule_set(RuleSetName=ours)
    answer["PhysicalResourceId"] = new_id
    answer["Data"] = {PREVIOUS_ATTRIBUTE: previous or ""}
    return f"activated {ours} (previously active: {previous or 'none'})"


def send(url: str, body: bytes) -> None:
    """PUT the answer; retried, never raises (an unanswered request times out in CloudFormation)."""
    for attempt in range(1, ANSWER_ATTEMPTS + 1):
        # The pre-signed URL is signed with an empty Content-Type: send exactly that.
        request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
        try:
            with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_SECONDS) as response:
                log(answer_status=response.status, attempt=attempt)
                return
        except Exception as error:
            log(answer_failed=repr(error), attempt=attempt)
            if attempt < ANSWER_ATTEMPTS:
                time.sleep(attempt)


def encode(answer: dict[str, Any]) -> bytes:
    """The answer as JSON within CloudFormation's size limit (the Reason is cut to fit)."""
    body = json.dumps(answer).encode()
    excess = len(body) - MAX_ANSWER_BYTES
    if excess > 0:
        reason = answer.get("Reason", "")
        answer = {**answer, "Reason": reason[: max(len(reason) - excess - 16, 0)] + " [cut]"}
        body = json.dumps(answer).encode()
    return body


def log(**fields: Any) -> None:
    print(json.dumps(fields, default=str))


def on_alarm(signum: int, frame: Any) -> None:
    raise OutOfTime("stopped before the Lambda timeout to answer CloudFormation")


def arm_watchdog(context: Any) -> None:
    """Interrupt the work when only the answer's reserve is left (Lambda runs the handler in
    the main thread, where signals are delivered)."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return
    seconds = max(remaining_ms() / 1000 - ANSWER_RESERVE_SECONDS, 0.001)
    try:
        signal.signal(signal.SIGALRM, on_alarm)
    except ValueError:  # not the main thread: the botocore bounds alone must do
        log(watchdog="off: not in the main thread")
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)


def handler(event: Any, context: Any) -> None:
    """CloudFormation entry point: always answers when it can (a ResponseURL), never raises."""
    event = event if isinstance(event, dict) else {}
    answer: dict[str, Any] = {
        "Status": "FAILED",
        "PhysicalResourceId": event.get("PhysicalResourceId") or NOTHING_DONE,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
    }
    try:
        arm_watchdog(context)
        log(request=event.get("RequestType"), physical_id=answer["PhysicalResourceId"])
        outcome = apply(event, answer, ses_client())
        signal.setitimer(signal.ITIMER_REAL, 0)
        answer["Status"] = "SUCCESS"
        log(outcome=outcome, physical_id=answer["PhysicalResourceId"])
    except BaseException as error:  # every failure, the watchdog's too, is a FAILED answer
        signal.setitimer(signal.ITIMER_REAL, 0)
        stream = getattr(context, "log_stream_name", None)
        answer["Reason"] = f"{type(error).__name__}: {error}" + (
            f" (log stream {stream})" if stream else ""
        )
        log(failed=answer["Reason"], physical_id=answer["PhysicalResourceId"])
    url = event.get("ResponseURL")
    if isinstance(url, str) and url:
        send(url, encode(answer))
    else:
        log(unanswerable="the event has no ResponseURL")
