"""Replay of ``ses-outcome-unknown`` never lets SES get two SendBounce calls (issue 17, part 2).

Against moto in server mode (the real botocore clients), the real handler and the local SES: a
send claim is deleted only when it is stale and unchanged; two replays racing over the same
message send one bounce; a forged letter cannot reach another bucket with the operator's
credentials, replay another body, or drive the terminal; the two queues must be one processor's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operations.pipeline import (
    CLAIM_TTL_S,
    Failing,
    Pipeline,
    deliver,
    replayer,
    run,
)

from bounce_runtime.contract import CLAIM_SUFFIX, DLQ_ATTR_REASON, DLQ_ATTR_SES_MESSAGE_ID
from bounce_runtime.errors import ReplayFailed
from bounce_runtime.operations.dead_letters import (
    OUTCOME_CHECKED_FLAG,
    DeadLetterScan,
    ReplaySelection,
)
from support.events import OBJECT_KEY_PREFIX

REPLAY = ["dead-letters", "replay"]
UNKNOWN = "ses-outcome-unknown"
CHECKED = [OUTCOME_CHECKED_FLAG, "--rate", "100"]


class Recording:
    """A boto3 client that records every call (method, Bucket, Key) before making it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, str | None, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs.get("Bucket"), kwargs.get("Key")))
            return real(**kwargs)

        return call


def unknown_letter(pipeline: Pipeline, ses_id: str, *, claim_age: timedelta) -> str:
    """An outcome-unknown dead letter, its mail object and a claim ``claim_age`` old: the key."""
    pipeline.dead_letter(ses_id, UNKNOWN)
    return pipeline.store_mail(ses_id, claimed=True, claim_age=claim_age)


# The claim's time bound ---------------------------------------------------------------------------


def test_a_claim_younger_than_the_ttl_is_kept_and_nothing_is_queued(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # A delivery that claimed 10 minutes ago may still be waiting for a slot or inside SendBounce.
    key = unknown_letter(pipeline, "live-1", claim_age=timedelta(minutes=10))

    status, out, err = run([*REPLAY, *pipeline.where(), "--message-id", "live-1", "--yes",
                            *CHECKED], capsys)  # fmt: skip

    assert status == 1
    assert f"within the claim TTL of {CLAIM_TTL_S:.0f} s: a delivery may still be sending" in out
    assert "again" not in out + err  # no advice to re-run an outcome-unknown replay
    assert key + CLAIM_SUFFIX in pipeline.keys
    assert pipeline.counts(pipeline.queue_url) == (0, 0)
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)


def test_a_stale_claim_is_deleted_and_the_message_bounced_once(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = unknown_letter(pipeline, "stale-1", claim_age=timedelta(seconds=CLAIM_TTL_S + 5))

    status, out, err = run([*REPLAY, *pipeline.where(), "--message-id", "stale-1", "--yes",
                            *CHECKED], capsys)  # fmt: skip

    assert (status, err) == (0, ""), out
    assert f"deleted the stale send claim s3://{pipeline.bucket}/{key}{CLAIM_SUFFIX}" in out
    calls = deliver(pipeline, monkeypatch, pipeline.drain(pipeline.queue_url))
    assert [call.params["OriginalMessageId"] for call in calls] == ["stale-1"]


def test_a_dry_run_reads_the_claim_but_deletes_nothing(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    key = unknown_letter(pipeline, "dry-1", claim_age=timedelta(hours=1))

    status, out, _ = run([*REPLAY, *pipeline.where(), "--message-id", "dry-1", *CHECKED], capsys)

    assert status == 0
    assert "would delete the stale send claim" in out
    assert key + CLAIM_SUFFIX in pipeline.keys


# Two replays of one message ----------------------------------------------------------------------


def test_a_replay_racing_another_over_the_same_claim_queues_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS delivered the message twice, both copies were dead-lettered, two operators replay.
    Replay A reads the stale claim; before its delete, replay B deletes it, queues its copy,
    and the runtime claims and bounces that copy. A's conditional delete then fails: A queues
    nothing."""
    body = pipeline.body("race-1")
    for _ in range(2):
        pipeline.dead_letter("race-1", UNKNOWN, body=body)
    key = pipeline.store_mail("race-1", claimed=True)
    selection = ReplaySelection(message_ids=frozenset({"race-1"}))
    bounces: list[Any] = []

    def replay_b_then_the_runtime() -> None:
        with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as b:
            outcome = replayer(pipeline, b, pipeline.sqs, [], outcome_checked=True).run(selection)
        assert len(outcome.replayed) == 1
        bounces.extend(deliver(pipeline, monkeypatch, pipeline.drain(pipeline.queue_url)))
        assert key + CLAIM_SUFFIX in pipeline.keys  # the runtime's new claim

    s3_of_a = Failing(pipeline.s3, "delete_object", fail=False, before=replay_b_then_the_runtime)
    lines: list[str] = []
    with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=1, wait_seconds=0) as a:
        outcome = replayer(pipeline, a, pipeline.sqs, lines, outcome_checked=True, s3=s3_of_a).run(
            selection
        )

    assert outcome.replayed == []
    assert "changed or went away since it was read (S3 PreconditionFailed)" in outcome.refused[0][1]
    assert [call.params["OriginalMessageId"] for call in bounces] == ["race-1"]
    assert pipeline.counts(pipeline.queue_url) == (0, 1)  # B's copy (delivered); none from A
    assert key + CLAIM_SUFFIX in pipeline.keys  # the runtime's claim was not deleted by A
    assert len(pipeline.drain(pipeline.dlq_url)) == 1  # A's letter stays


def test_a_replay_after_another_deleted_the_claim_still_bounces_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other interleaving: B runs after A deleted the claim, before A's send. B finds no
    claim and queues its copy too; the runtime's claim lets only one of the two copies send."""
    body = pipeline.body("race-2")
    for _ in range(2):
        pipeline.dead_letter("race-2", UNKNOWN, body=body)
    pipeline.store_mail("race-2", claimed=True)
    selection = ReplaySelection(message_ids=frozenset({"race-2"}))

    def replay_b() -> None:
        with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as b:
            replayer(pipeline, b, pipeline.sqs, [], outcome_checked=True).run(selection)

    sqs_of_a = Failing(pipeline.sqs, "send_message", fail=False, before=replay_b)
    with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=1, wait_seconds=0) as a:
        replayer(pipeline, a, sqs_of_a, [], outcome_checked=True).run(selection)

    copies = pipeline.drain(pipeline.queue_url)
    assert len(copies) == 2
    calls = deliver(pipeline, monkeypatch, copies)
    assert [call.params["OriginalMessageId"] for call in calls] == ["race-2"]
    assert pipeline.counts(pipeline.dlq_url) == (0, 0)


def test_a_failed_delete_after_the_send_gives_no_advice_to_replay_again(
    pipeline: Pipeline,
) -> None:
    unknown_letter(pipeline, "both-1", claim_age=timedelta(hours=1))
    scan = DeadLetterScan(
        Failing(pipeline.sqs, "delete_message"), pipeline.dlq_url, max_messages=10, wait_seconds=0
    )

    with pytest.raises(ReplayFailed) as failed, scan:
        replayer(pipeline, scan, pipeline.sqs, [], outcome_checked=True).run(
            ReplaySelection(message_ids=frozenset({"both-1"}))
        )

    assert "It is in both queues; the runtime sends its bounce at most once" in str(failed.value)
    assert "again" not in str(failed.value)


# A forged letter ---------------------------------------------------------------------------------


def test_a_letter_naming_another_bucket_makes_no_s3_call(
    pipeline: Pipeline, moto_clients: dict[str, Any]
) -> None:
    victim = Pipeline(moto_clients)  # another processor's bucket, with a stale claim
    victim_key = victim.store_mail("v-1", claimed=True)
    pipeline.dead_letter("v-1", UNKNOWN, body=pipeline.body("v-1", bucket=victim.bucket))
    pipeline.dead_letter(
        "v-2", UNKNOWN, body=pipeline.body("v-2", object_key="elsewhere/v-2")
    )  # this bucket, outside the prefix
    s3 = Recording(pipeline.s3)
    lines: list[str] = []

    with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as scan:
        outcome = replayer(pipeline, scan, pipeline.sqs, lines, outcome_checked=True, s3=s3).run(
            ReplaySelection(reasons=frozenset({UNKNOWN}))
        )

    assert s3.calls == []
    assert len(outcome.refused) == 2
    assert all("which is not this processor's mail object" in why for _, why in outcome.refused)
    assert victim_key + CLAIM_SUFFIX in victim.keys
    assert pipeline.counts(pipeline.queue_url) == (0, 0)


def test_a_forged_id_attribute_neither_replays_another_body_nor_deletes_the_genuine_one(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = pipeline.dead_letter(
        "attacker-1", "ses-rejected:MessageRejected", attribute_id="victim-1"
    )  # read first
    genuine = pipeline.dead_letter("victim-1", "ses-rejected:MessageRejected")

    by_id = run([*REPLAY, *pipeline.where(), "--message-id", "victim-1", "--yes"], capsys)
    by_reason = run([*REPLAY, *pipeline.where(), "--reason", "ses-rejected", "--yes"], capsys)

    assert by_id[0] == 0, by_id
    assert pipeline.bodies(pipeline.queue_url) == [genuine]  # the genuine body, once
    assert by_reason[0] == 1
    assert (
        "refused attacker-1 [ses-rejected:MessageRejected]: its ses-message-id attribute "
        "(victim-1) names another message than its body (attacker-1)" in by_reason[1]
    )
    assert pipeline.bodies(pipeline.dlq_url) == [forged]


def test_nothing_printed_from_a_letter_reaches_the_terminal_raw(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    escape = "\x1b]0;owned\x07\x1b[2J"
    body = pipeline.body("esc-1", object_key=f"inbound/esc-1{escape}")
    pipeline.sqs.send_message(
        QueueUrl=pipeline.dlq_url,
        MessageBody=body,
        MessageAttributes={
            DLQ_ATTR_REASON: {"DataType": "String", "StringValue": UNKNOWN},
            DLQ_ATTR_SES_MESSAGE_ID: {"DataType": "String", "StringValue": "esc-1"},
        },
    )
    pipeline.sqs.send_message(
        QueueUrl=pipeline.dlq_url,
        MessageBody=pipeline.body("esc-2"),
        MessageAttributes={
            DLQ_ATTR_REASON: {"DataType": "String", "StringValue": f"nonsense{escape}"},
        },
    )

    replay = run([*REPLAY, *pipeline.where(), "--message-id", "esc-1", "--message-id", "esc-2",
                  "--yes", *CHECKED], capsys)  # fmt: skip
    listing = run(["dead-letters", "list", *pipeline.dead_letter_queue()], capsys)
    as_json = run(["dead-letters", "list", *pipeline.dead_letter_queue(), "--output", "json"],
                  capsys)  # fmt: skip

    for _, out, err in (replay, listing, as_json):
        assert "\x1b" not in out + err and "\x07" not in out + err
    assert replay[0] == 1
    assert "\ufffd]0;owned\ufffd" in replay[1]
    assert json.loads(as_json[1])["read"] == 2


# The queues and the function belong together -----------------------------------------------------


def test_the_same_queue_twice_is_refused_and_nothing_deleted(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("same-1", "ses-rejected:MessageRejected")
    twice = ["--queue-url", pipeline.dlq_url, "--dead-letter-queue-url", pipeline.dlq_url,
             "--wait-seconds", "0"]  # fmt: skip

    status, out, err = run([*REPLAY, *twice, "--reason", "ses-rejected", "--yes"], capsys)

    assert (status, out) == (1, "")
    assert "--queue-url and --dead-letter-queue-url are the same queue" in err
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)


def test_another_processors_dead_letter_queue_is_refused(
    pipeline: Pipeline, moto_clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    other = Pipeline(moto_clients)
    other.dead_letter("o-1", "ses-rejected:MessageRejected")
    mixed = ["--queue-url", pipeline.queue_url, "--dead-letter-queue-url", other.dlq_url,
             "--wait-seconds", "0"]  # fmt: skip

    status, out, err = run([*REPLAY, *mixed, "--reason", "ses-rejected", "--yes"], capsys)

    assert (status, out) == (1, "")
    assert "the two queues are not one processor's" in err
    assert pipeline.counts(pipeline.queue_url) == (0, 0)
    assert other.counts(other.dlq_url) == (1, 0)


def test_a_main_queue_without_a_redrive_policy_is_refused(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = pipeline.queue(f"{pipeline.bucket}-plain")
    where = ["--queue-url", plain, "--dead-letter-queue-url", pipeline.dlq_url]

    status, _, err = run([*REPLAY, *where, "--reason", "ses-rejected", "--yes"], capsys)

    assert status == 1
    assert "has no redrive policy: it is not a BounceProcessor's queue" in err


def test_another_processors_function_is_refused(
    pipeline: Pipeline, moto_clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    other = Pipeline(moto_clients)
    unknown_letter(pipeline, "f-1", claim_age=timedelta(hours=1))
    where = [*pipeline.where()]
    where[where.index("--function-name") + 1] = other.function_name

    status, out, err = run([*REPLAY, *where, "--message-id", "f-1", "--yes", *CHECKED], capsys)

    assert (status, out) == (1, "")
    assert "it is another processor's function" in err
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)


def test_replay_reports_as_json_for_scripts(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("j-1", "ses-rejected:MessageRejected")
    unknown_letter(pipeline, "j-2", claim_age=timedelta(seconds=30))

    status, out, err = run([*REPLAY, *pipeline.where(), "--message-id", "j-1", "--message-id",
                            "j-2", "--output", "json", *CHECKED], capsys)  # fmt: skip

    document = json.loads(out)
    assert status == 1
    assert document["executed"] is False
    assert [entry["ses_message_id"] for entry in document["replayed"]] == ["j-1"]
    assert [entry["ses_message_id"] for entry in document["refused"]] == ["j-2"]
    assert "within the claim TTL" in document["refused"][0]["why"]
    assert (document["read"], document["complete"]) == (2, True)
    assert "would replay j-1" in err  # the per-letter lines go to stderr


def test_claim_ages_are_measured_on_s3s_clock(pipeline: Pipeline) -> None:
    # The operator's clock is an hour fast: a fresh claim must not look stale.
    unknown_letter(pipeline, "clock-1", claim_age=timedelta(seconds=10))
    lines: list[str] = []
    with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as scan:
        replay = replayer(pipeline, scan, pipeline.sqs, lines, outcome_checked=True)
        replay._now = lambda: datetime.now(UTC) + timedelta(hours=1)
        outcome = replay.run(ReplaySelection(message_ids=frozenset({"clock-1"})))

    assert outcome.replayed == []
    assert "within the claim TTL" in outcome.refused[0][1]
    assert OBJECT_KEY_PREFIX + "clock-1" + CLAIM_SUFFIX in pipeline.keys


def test_a_letter_of_the_same_message_with_another_body_is_kept_not_deleted(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    genuine = pipeline.dead_letter("same-id-1", "ses-rejected:MessageRejected")
    altered = json.loads(genuine)
    altered["receipt"]["recipients"] = ["someone-else@example.com"]
    tampered = pipeline.dead_letter(
        "same-id-1", "ses-rejected:MessageRejected", body=json.dumps(altered)
    )

    status, out, _ = run(
        [*REPLAY, *pipeline.where(), "--message-id", "same-id-1", "--yes", "--rate", "100"], capsys
    )

    assert status == 1
    assert "with a different body, was replayed in this run" in out
    (replayed,) = pipeline.bodies(pipeline.queue_url)
    (kept,) = pipeline.bodies(pipeline.dlq_url)
    assert {replayed, kept} == {genuine, tampered}
