"""BatchProcessor at the edges of its promises: no record starts without the time it needs, every
record is either finished or reported for redelivery (records that are not JSON objects too),
and a batch cut short says which records it left.

These pin what mutation testing (``make mutation``) found no test noticing.
"""

from __future__ import annotations

import json
from typing import Any

from support.events import MESSAGE_ID, notification
from support.workflow_fakes import LambdaClock, Rig, Sender


def record(message_id: str, **fields: Any) -> dict[str, Any]:
    body = json.dumps(notification(message_id=message_id, **fields))
    return {"messageId": "sqs-" + message_id, "body": body}


def failures(response: dict[str, list[dict[str, str]]]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_records_that_are_not_json_objects_go_through_the_batch() -> None:
    # A string is dead-lettered as it is; anything else (or an empty string) cannot be, and is
    # reported failed; the records around them are processed.
    rig = Rig()
    event = {"Records": ["not an object", 42, "", record(MESSAGE_ID)]}
    assert failures(rig.processor().process(event)) == ["", ""]
    assert rig.dead_letters.sent == [
        {
            "body": "not an object",
            "reason": "malformed-notification",
            "detail": "SQS record: expected a JSON object, got str",
            "sqs_message_id": "",
            "ses_message_id": None,
        }
    ]
    assert len(rig.sender.requests) == 1
    assert rig.log_lines("record failed: not an SQS record") == [
        {
            "level": "ERROR",
            "message": "record failed: not an SQS record",
            "sqs_message_id": "",
            "reason": "malformed-notification",
            "detail": f"SQS record: expected a JSON object, got {kind}",
        }
        for kind in ("int", "str")
    ]
    assert rig.log_lines("batch done") == [
        {"level": "INFO", "message": "batch done", "records": 4, "failed": 2}
    ]


def test_a_record_starts_with_exactly_its_safety_margin_left() -> None:
    rig = Rig(LambdaClock(remaining_s=40.0))
    assert failures(rig.processor(safety_margin_s=40.0).process({"Records": [record("m1")]})) == []
    assert len(rig.sender.requests) == 1


def test_a_batch_cut_short_reports_and_logs_the_records_it_left() -> None:
    rig = Rig(LambdaClock(remaining_s=39.9))
    event = {"Records": [record("m1"), {"body": "{}"}, "text"]}
    assert failures(rig.processor(safety_margin_s=40.0).process(event)) == ["sqs-m1", "", ""]
    assert rig.sender.requests == []
    assert rig.log_lines("time is short: leaving the rest of the batch for redelivery") == [
        {
            "level": "WARNING",
            "message": "time is short: leaving the rest of the batch for redelivery",
            "detail": "39.9 s left, margin 40.0 s",
            "unprocessed": 3,
            "sqs_message_ids": ["sqs-m1", "", ""],
        }
    ]
    assert rig.log_lines("batch done") == [
        {"level": "INFO", "message": "batch done", "records": 3, "failed": 3}
    ]


def test_a_given_safety_margin_replaces_the_computed_one() -> None:
    # 20 s is under the default policy's computed margin (39 s), but a suppressed message
    # needs no AWS call.
    rig = Rig(LambdaClock(remaining_s=20.0))
    event = {"Records": [record("m1", source="")]}
    assert failures(rig.processor(safety_margin_s=0.0).process(event)) == []
    assert len(rig.log_lines("message suppress")) == 1


def test_the_computed_safety_margin_counts_the_given_call_bound_and_attempt_timeout() -> None:
    # The default policy reads headers: GetObject, GetObjectTagging and the claim (3 calls of
    # 5 s) and one SendBounce attempt (3 s) before a record may start.
    rig = Rig()
    rig.sender = Sender(rig.clock, attempt_timeout_s=3.0)
    assert rig.processor(aws_call_bound_s=5.0).safety_margin_s == 18.0


def test_the_workflow_claims_with_the_given_call_bound() -> None:
    # One S3 call of 1 s and one attempt with its reserve (28 s) fit in 30 s; with the default
    # bound (11 s) they would not.
    rig = Rig(LambdaClock(remaining_s=30.0))
    processor = rig.processor(safety_margin_s=0.0, aws_call_bound_s=1.0)
    assert failures(processor.process({"Records": [record("m1")]})) == []
    assert len(rig.sender.requests) == 1
