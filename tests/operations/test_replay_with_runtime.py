"""At least once, made safe by the runtime: a dead letter replayed twice (a crash between the send
and the delete, then a second replay) reaches the real handler twice and is bounced once."""

from __future__ import annotations

import pytest
from operations.pipeline import Failing, Pipeline, deliver, replayer, run

from bounce_runtime.contract import BOUNCE_TAG_KEY
from bounce_runtime.errors import ReplayFailed
from bounce_runtime.operations.dead_letters import DeadLetterScan, ReplaySelection
from support.events import OBJECT_KEY_PREFIX


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

    calls = deliver(pipeline, monkeypatch, copies)  # two deliveries, in two invocations

    assert [call.params["OriginalMessageId"] for call in calls] == [ses_id]
    tags = pipeline.s3.get_object_tagging(Bucket=pipeline.bucket, Key=OBJECT_KEY_PREFIX + ses_id)
    assert {tag["Key"] for tag in tags["TagSet"]} == {BOUNCE_TAG_KEY}
    assert "already bounced: skipped" in capsys.readouterr().out
    assert pipeline.counts(pipeline.dlq_url) == (0, 0)  # nothing dead-lettered again
