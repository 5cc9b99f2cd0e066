"""At least once, made safe by the runtime: a dead letter replayed twice (a crash between the send
and the delete, then a second replay) reaches the real handler twice and is bounced once."""

from __future__ import annotations

import time

import pytest
from operations.pipeline import REGION, Failing, Pipeline, replayer, run

import bounce_runtime.handler as handler_module
from bounce_runtime.contract import (
    BOUNCE_TAG_KEY,
    ENV_BOUNCE_SENDER,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_FUNCTION_NAME,
    ENV_SEND_RATE_PER_SECOND,
)
from bounce_runtime.errors import ReplayFailed
from bounce_runtime.handler import handler
from bounce_runtime.operations.dead_letters import DeadLetterScan, ReplaySelection
from support.events import OBJECT_KEY_PREFIX, sqs_event, sqs_record
from support.local_ses import LocalSes


class Context:
    """Lambda's context: five minutes left."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def test_a_message_replayed_twice_is_bounced_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ses_id = "twice-1"
    pipeline.store_mail(ses_id)
    body = pipeline.dead_letter(ses_id, "ses-rejected:MessageRejected")
    scan = DeadLetterScan(
        Failing(pipeline.sqs, "delete_message"), pipeline.dlq_url, max_messages=10, wait_seconds=0
    )
    with pytest.raises(ReplayFailed), scan:
        replayer(pipeline, scan, pipeline.sqs, []).run(
            ReplaySelection(message_ids=frozenset({ses_id}))
        )
    again = ["dead-letters", "replay", *pipeline.where(), "--message-id", ses_id, "--yes"]
    assert run(again, capsys)[0] == 0
    copies = pipeline.drain(pipeline.queue_url)
    assert [copy["Body"] for copy in copies] == [body, body]

    with LocalSes(rate_per_second=50.0, region=REGION) as ses:
        for name, value in {
            ENV_BOUNCE_SENDER: "mailer-daemon@example.com",
            ENV_DEAD_LETTER_QUEUE_URL: pipeline.dlq_url,
            ENV_SEND_RATE_PER_SECOND: "50",
            ENV_FUNCTION_NAME: "bounce-fn",
            "AWS_ENDPOINT_URL_SES": ses.endpoint_url,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler_module, "_container", None)
        responses = [
            handler(sqs_event([sqs_record(copy["Body"], message_id=copy["MessageId"])]), Context())
            for copy in copies  # two deliveries, in two invocations
        ]

    assert responses == [{"batchItemFailures": []}] * 2
    assert [call.params["OriginalMessageId"] for call in ses.calls] == [ses_id]
    tags = pipeline.s3.get_object_tagging(Bucket=pipeline.bucket, Key=OBJECT_KEY_PREFIX + ses_id)
    assert {tag["Key"] for tag in tags["TagSet"]} == {BOUNCE_TAG_KEY}
    assert "already bounced: skipped" in capsys.readouterr().out
    assert pipeline.counts(pipeline.dlq_url) == (0, 0)  # nothing dead-lettered again
