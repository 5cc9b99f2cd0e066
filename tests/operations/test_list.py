"""``dead-letters list`` and the scan under it: read without consuming, group by reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operations.pipeline import Pipeline, run

import bounce_runtime.operations.command_support as command_support
from bounce_runtime.operations.dead_letters import (
    REDRIVEN_BY_SQS,
    REPLAY_IF_NO_BOUNCE_SENT,
    REPLAY_NO,
    REPLAY_YES,
    DeadLetter,
    DeadLetterScan,
    format_table,
    summarize,
)

LIST = ["dead-letters", "list"]


def fill(pipeline: Pipeline) -> None:
    """Nine dead letters: every kind of reason, a duplicate, an expired one, an unknown one."""
    pipeline.dead_letter("rej-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("rej-2", "ses-rejected:MessageRejected")
    pipeline.dead_letter("rej-3", "ses-rejected:AccessDenied")
    pipeline.dead_letter("old-1", "expired", age=timedelta(hours=25))
    pipeline.dead_letter("redriven-1", None)
    pipeline.dead_letter("redriven-1", None)  # the same SES message twice
    pipeline.dead_letter("unknown-1", "ses-outcome-unknown")
    pipeline.dead_letter("", "malformed-notification", body="not json at all")
    pipeline.dead_letter("foreign-1", "outside-the-rule")


def test_list_does_not_consume_the_queue(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(pipeline)
    before = pipeline.counts(pipeline.dlq_url)

    status, out, err = run([*LIST, *pipeline.dead_letter_queue()], capsys)

    assert (status, err) == (0, "")
    assert "read all 9 dead letters" in out
    assert pipeline.counts(pipeline.dlq_url) == before == (9, 0)
    # Every message is receivable at once, body and attributes as written.
    assert pipeline.reasons(pipeline.dlq_url) == sorted(
        ["ses-rejected:MessageRejected"] * 2
        + ["ses-rejected:AccessDenied", "expired", "-", "-", "ses-outcome-unknown"]
        + ["malformed-notification", "outside-the-rule"]
    )


def test_list_groups_by_reason_as_json(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(pipeline)

    status, out, _ = run([*LIST, *pipeline.dead_letter_queue(), "--json", "--samples", "2"], capsys)

    assert status == 0
    document = json.loads(out)
    assert (document["read"], document["complete"]) == (9, True)
    groups = {group["reason"]: group for group in document["reasons"]}
    assert {name: group["count"] for name, group in groups.items()} == {
        "ses-rejected": 3,
        REDRIVEN_BY_SQS: 2,
        "expired": 1,
        "ses-outcome-unknown": 1,
        "malformed-notification": 1,
        "outside-the-rule": 1,
    }
    assert [group["reason"] for group in document["reasons"]][:2] == [
        "ses-rejected",
        REDRIVEN_BY_SQS,
    ]
    assert {name: group["replay"] for name, group in groups.items()} == {
        "ses-rejected": REPLAY_YES,
        REDRIVEN_BY_SQS: REPLAY_YES,
        "expired": REPLAY_NO,
        "ses-outcome-unknown": REPLAY_IF_NO_BOUNCE_SENT,
        "malformed-notification": REPLAY_NO,
        "outside-the-rule": REPLAY_NO,
    }
    rejected = groups["ses-rejected"]
    assert rejected["variants"] == {
        "ses-rejected:AccessDenied": 1,
        "ses-rejected:MessageRejected": 2,
    }
    assert len(rejected["sample_ses_message_ids"]) == 2
    assert set(rejected["sample_ses_message_ids"]) <= {"rej-1", "rej-2", "rej-3"}
    assert rejected["oldest"] <= rejected["newest"]
    assert rejected["oldest"].endswith("Z")
    assert groups[REDRIVEN_BY_SQS]["sample_ses_message_ids"] == ["redriven-1"]
    assert groups["expired"]["past_24h_window"] == 1
    assert groups["ses-rejected"]["past_24h_window"] == 0
    assert groups["malformed-notification"]["sample_ses_message_ids"][0].startswith("sqs:")
    assert groups["outside-the-rule"]["meaning"] == "unknown reason"


def test_list_prints_a_table(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    fill(pipeline)

    status, out, _ = run([*LIST, *pipeline.dead_letter_queue()], capsys)

    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "REASON", "COUNT", "OLDEST", "NEWEST", "REPLAY", "PAST", "24H", "SAMPLE", "IDS",
    ]  # fmt: skip
    rejected = lines[1].split()
    assert rejected[:2] == ["ses-rejected", "3"]
    assert rejected[4:6] == [REPLAY_YES, "0"]
    assert lines[2].split() == [":AccessDenied", "1"]
    assert lines[3].split() == [":MessageRejected", "2"]
    expired = next(line.split() for line in lines if line.startswith("expired "))
    assert expired[1] == "1" and expired[4:6] == [REPLAY_NO, "1"]
    assert expired[6] == "old-1"


def test_an_empty_queue(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run([*LIST, *pipeline.dead_letter_queue()], capsys)
    assert (status, out) == (0, "the dead-letter queue is empty\n")


def test_max_messages_bounds_the_scan_and_says_so(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.bulk(12, "ses-rejected:MessageRejected")

    status, out, _ = run(
        [*LIST, *pipeline.dead_letter_queue(), "--max-messages", "5", "--json"], capsys
    )

    assert status == 0
    document = json.loads(out)
    assert (document["read"], document["complete"]) == (5, False)
    assert pipeline.counts(pipeline.dlq_url) == (12, 0)


def test_progress_lines_on_a_large_queue(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command_support, "PROGRESS_MIN_MESSAGES", 20)
    monkeypatch.setattr(command_support, "PROGRESS_EVERY", 10)
    pipeline.bulk(25, "ses-rejected:MessageRejected")

    status, _, err = run([*LIST, *pipeline.dead_letter_queue()], capsys)

    assert status == 0
    assert err.splitlines() == [
        "read 10 of about 25 dead letters",
        "read 20 of about 25 dead letters",
    ]


def test_a_small_queue_prints_no_progress(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("m-1", "expired")
    assert run([*LIST, *pipeline.dead_letter_queue()], capsys)[2] == ""


class Recorder:
    """A boto3 client whose calls are recorded by name."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return call


def test_a_long_scan_renews_its_hold_and_reads_each_message_once(pipeline: Pipeline) -> None:
    pipeline.bulk(30, "ses-rejected:MessageRejected")
    now = [0.0]

    def clock() -> float:
        now[0] += 4.0  # every look at the clock is 4 s later: holds run out mid-scan
        return now[0]

    sqs = Recorder(pipeline.sqs)
    with DeadLetterScan(
        sqs, pipeline.dlq_url, max_messages=100, hold_seconds=10, wait_seconds=0, clock=clock
    ) as scan:
        ids = [letter.sqs_message_id for letter in scan]
        assert pipeline.counts(pipeline.dlq_url) == (0, 30)  # all hidden while the scan runs

    assert len(ids) == len(set(ids)) == 30
    renewals = [
        entry["VisibilityTimeout"]
        for name, kwargs in sqs.calls
        if name == "change_message_visibility_batch"
        for entry in kwargs["Entries"]
    ]
    assert renewals.count(10) >= 20  # holds renewed while the scan went on
    assert renewals.count(0) == 30  # and every message released at the end
    assert pipeline.counts(pipeline.dlq_url) == (30, 0)


def test_a_killed_scan_leaves_messages_hidden_only_for_the_hold(pipeline: Pipeline) -> None:
    for index in range(3):
        pipeline.dead_letter(f"m-{index}", "expired")
    scan = DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, hold_seconds=1)
    letters = iter(scan)
    next(letters)  # killed here: no release

    assert pipeline.counts(pipeline.dlq_url)[0] < 3
    time.sleep(1.2)
    assert pipeline.counts(pipeline.dlq_url) == (3, 0)


def test_attribute_text_cannot_drive_the_terminal() -> None:
    letter = DeadLetter.from_message(
        {
            "MessageId": "m-1",
            "Body": "{}",
            "MessageAttributes": {
                "reason": {"DataType": "String", "StringValue": "x\x1b[2Jy:\x07z"},
                "ses-message-id": {"DataType": "String", "StringValue": "id\r\n"},
            },
            "Attributes": {"SentTimestamp": "1764560000000"},
        }
    )
    summaries = summarize([letter], now=datetime.now(UTC))

    assert letter.describe() == "id\ufffd\ufffd [x\ufffd[2Jy:\ufffdz]"
    assert "\x1b" not in format_table(summaries)
    assert "\x07" not in format_table(summaries)
    assert letter.sent_at == datetime(2025, 12, 1, 3, 33, 20, tzinfo=UTC)
