"""``dead-letters replay``: what goes back to the main queue, what is refused, what crashes do."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operations.pipeline import Failing, Pipeline, replayer, run

import bounce_runtime.operations.commands as commands
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.contract import BOUNCE_TAG_KEY, CLAIM_SUFFIX
from bounce_runtime.errors import ReplayFailed
from bounce_runtime.operations.dead_letters import (
    OUTCOME_CHECKED_FLAG,
    REASON_CLASSES,
    REDRIVEN_BY_SQS,
    REPLAY_NO,
    DeadLetterScan,
    Replayer,
    ReplaySelection,
)
from support.sqs_sim import FakeClock

REPLAY = ["dead-letters", "replay"]
FAST = ["--rate", "100"]
# The reason each class is stored with (ses-rejected always carries the SES error code).
STORED = {REDRIVEN_BY_SQS: None, "ses-rejected": "ses-rejected:MessageRejected"}


@pytest.mark.parametrize("reason", sorted(REASON_CLASSES))
def test_each_reason_class_is_replayed_or_refused(
    reason: str, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    ses_id = f"mail-{reason}"
    body = pipeline.dead_letter(ses_id, STORED.get(reason, reason))
    claim = pipeline.store_mail(ses_id, claimed=True) + CLAIM_SUFFIX

    status, out, err = run(
        [*REPLAY, *pipeline.where(), "--message-id", ses_id, "--yes", *FAST, OUTCOME_CHECKED_FLAG],
        capsys,
    )

    if REASON_CLASSES[reason].replay == REPLAY_NO:
        assert status == 1
        assert f"refused {ses_id} [{reason}]: {REASON_CLASSES[reason].meaning}" in out
        assert err.endswith("error: 1 dead letters refused (see above); they stay\n")
        assert pipeline.bodies(pipeline.queue_url) == []
        assert pipeline.bodies(pipeline.dlq_url) == [body]
    else:
        assert (status, err) == (0, ""), err
        assert f"replay {ses_id} [" in out
        assert pipeline.bodies(pipeline.queue_url) == [body]  # the original body, unchanged
        assert pipeline.bodies(pipeline.dlq_url) == []
    # Only a replayed ses-outcome-unknown gives up its send claim.
    replayed_unknown = reason == "ses-outcome-unknown"
    assert (claim in pipeline.keys) is not replayed_unknown


def test_a_dry_run_changes_nothing(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline.dead_letter("a-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("a-2", None)

    status, out, err = run(
        [*REPLAY, *pipeline.where(), "--reason", "ses-rejected", "--reason", REDRIVEN_BY_SQS],
        capsys,
    )

    assert (status, err) == (0, "")
    assert "would replay a-1 [ses-rejected:MessageRejected]" in out
    assert f"would replay a-2 [{REDRIVEN_BY_SQS}]" in out
    assert "would replay 2\n" in out
    assert "dry run: nothing changed; add --yes to replay." in out
    assert pipeline.counts(pipeline.queue_url) == (0, 0)
    assert pipeline.counts(pipeline.dlq_url) == (2, 0)


def test_filters_narrow_by_reason_variant_and_message_id(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = pipeline.dead_letter("b-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("b-2", "ses-rejected:AccessDenied")
    pipeline.dead_letter("b-3", "ses-rejected:MessageRejected")

    status, _, _ = run(
        [
            *REPLAY, *pipeline.where(), *FAST, "--yes",
            "--reason", "ses-rejected:MessageRejected", "--message-id", "b-1",
            "--message-id", "b-2",
        ],
        capsys,
    )  # fmt: skip

    assert status == 0
    assert pipeline.bodies(pipeline.queue_url) == [wanted]
    assert pipeline.reasons(pipeline.dlq_url) == [
        "ses-rejected:AccessDenied",
        "ses-rejected:MessageRejected",
    ]


def test_past_the_24_hour_window_is_refused_whatever_the_reason(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = pipeline.dead_letter("c-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("c-2", "ses-rejected:MessageRejected", age=timedelta(hours=25))
    pipeline.dead_letter("c-3", None, age=timedelta(hours=23, minutes=57))  # 3 min left

    status, out, err = run(
        [*REPLAY, *pipeline.where(), *FAST, "--yes", "--reason", "ses-rejected", "--reason",
         REDRIVEN_BY_SQS],
        capsys,
    )  # fmt: skip

    assert status == 1
    assert "24-hour SendBounce window has closed" in out
    assert sum("refused c-" in line for line in out.splitlines()) == 2
    assert "error: 2 dead letters refused" in err
    assert pipeline.bodies(pipeline.queue_url) == [fresh]
    assert pipeline.counts(pipeline.dlq_url) == (2, 0)


@pytest.mark.parametrize("reason", ["expired", "malformed-notification", "invalid-request"])
def test_reasons_replay_cannot_help_are_refused_before_any_aws_call(
    reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = [
        "--queue-url",
        "http://127.0.0.1:9/q",
        "--dead-letter-queue-url",
        "http://127.0.0.1:9/d",
    ]

    status, out, err = run([*REPLAY, *nowhere, "--reason", reason, "--yes"], capsys)

    assert (status, out) == (1, "")
    assert err == (
        f"python -m bounce_runtime dead-letters: error: refusing to replay {reason!r}: "
        f"{REASON_CLASSES[reason].meaning}; replay cannot help\n"
    )


def test_outcome_unknown_needs_the_explicit_flag(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("d-1", "ses-outcome-unknown")
    claim = pipeline.store_mail("d-1", claimed=True) + CLAIM_SUFFIX

    by_reason = run(
        [*REPLAY, *pipeline.where(), "--reason", "ses-outcome-unknown", "--yes"], capsys
    )
    by_id = run([*REPLAY, *pipeline.where(), "--message-id", "d-1", "--yes"], capsys)

    assert by_reason[0] == 1 and OUTCOME_CHECKED_FLAG in by_reason[2]
    assert "SES may have sent these bounces" in by_reason[2]
    assert by_id[0] == 1
    assert (
        f"SES may have sent this bounce: replaying could send a second one. Check that no "
        f"bounce went out, then pass {OUTCOME_CHECKED_FLAG}" in by_id[1]
    )
    assert pipeline.counts(pipeline.queue_url) == (0, 0)
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)
    assert claim in pipeline.keys


def test_outcome_unknown_with_a_bounce_tag_is_refused_even_when_checked(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("e-1", "ses-outcome-unknown")
    claim = (
        pipeline.store_mail("e-1", claimed=True, tags=f"{BOUNCE_TAG_KEY}=bounce-77") + CLAIM_SUFFIX
    )

    status, out, err = run(
        [*REPLAY, *pipeline.where(), "--message-id", "e-1", "--yes", OUTCOME_CHECKED_FLAG], capsys
    )

    assert status == 1, err
    assert out, err
    assert f"is tagged {BOUNCE_TAG_KEY}=bounce-77: the bounce was sent" in out
    assert claim in pipeline.keys
    assert pipeline.counts(pipeline.queue_url) == (0, 0)


def test_unknown_reasons_and_unreadable_bodies_are_refused(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("f-1", "outside-the-rule")
    pipeline.dead_letter("f-2", "ses-rejected:Throttling", body='{"notificationType": "Bounce"}')

    status, out, _ = run(
        [*REPLAY, *pipeline.where(), "--message-id", "f-1", "--message-id", "f-2", "--yes"],
        capsys,
    )

    assert status == 1
    assert "refused f-1 [outside-the-rule]: unknown reason 'outside-the-rule'" in out
    assert "refused f-2 [ses-rejected:Throttling]: the body is not a notification" in out
    assert pipeline.counts(pipeline.dlq_url) == (2, 0)


def test_a_message_id_not_in_the_queue_is_an_error(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("g-1", None)

    status, _, err = run([*REPLAY, *pipeline.where(), "--message-id", "nope", "--yes"], capsys)

    assert status == 1
    assert err.endswith("error: not among the 1 dead letters read: nope\n")
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)


def test_duplicates_are_replayed_once(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    body = pipeline.body("dup-1")
    for reason in (None, "ses-rejected:MessageRejected", None):
        pipeline.dead_letter("dup-1", reason, body=body)
    other = pipeline.dead_letter("other-1", None)
    selection = ["--reason", REDRIVEN_BY_SQS, "--reason", "ses-rejected"]

    dry = run([*REPLAY, *pipeline.where(), *selection], capsys)
    done = run([*REPLAY, *pipeline.where(), *selection, "--yes", *FAST], capsys)

    assert dry[0] == 0 and "would delete 2 duplicate copies" in dry[1]
    assert done[0] == 0
    assert done[1].count("delete duplicate dup-1") == 2
    assert "replayed 2, deleted 2 duplicate copies" in done[1]
    assert pipeline.bodies(pipeline.queue_url) == sorted([body, other])
    assert pipeline.counts(pipeline.dlq_url) == (0, 0)


REJECTED = ReplaySelection(reasons=frozenset({"ses-rejected"}))


def test_a_crash_between_send_and_delete_loses_nothing_and_a_rerun_sends_again(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    body = pipeline.dead_letter("h-1", "ses-rejected:MessageRejected")
    failing = Failing(pipeline.sqs, "delete_message")
    lines: list[str] = []

    scan = DeadLetterScan(failing, pipeline.dlq_url, max_messages=10, wait_seconds=0)
    with pytest.raises(ReplayFailed) as failed, scan:
        replayer(pipeline, scan, pipeline.sqs, lines).run(REJECTED)

    assert "was sent to the main queue but could not be deleted" in str(failed.value)
    assert [letter.ses_message_id for letter in failed.value.outcome.replayed] == ["h-1"]
    # In both queues, the dead letter visible again at once.
    assert pipeline.counts(pipeline.queue_url) == (1, 0)
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)

    # At least once: a second run cannot know the first sent it, and sends a second copy.
    status, _, _ = run([*REPLAY, *pipeline.where(), "--reason", "ses-rejected", "--yes"], capsys)
    assert status == 0
    assert pipeline.bodies(pipeline.queue_url) == [body, body]
    assert pipeline.counts(pipeline.dlq_url) == (0, 0)


def test_a_failed_send_leaves_the_dead_letter_where_it_was(pipeline: Pipeline) -> None:
    pipeline.dead_letter("i-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("i-2", "ses-rejected:MessageRejected")
    failing = Failing(pipeline.sqs, "send_message")

    with (
        pytest.raises(ReplayFailed, match="it stays in the dead-letter queue"),
        DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as scan,
    ):
        replayer(pipeline, scan, failing, []).run(REJECTED)

    assert pipeline.counts(pipeline.queue_url) == (0, 0)
    assert pipeline.counts(pipeline.dlq_url) == (2, 0)


def test_ctrl_c_during_a_send_waits_for_its_delete(pipeline: Pipeline) -> None:
    first = pipeline.dead_letter("j-1", "ses-rejected:MessageRejected")
    second = pipeline.dead_letter("j-2", "ses-rejected:MessageRejected")
    interrupting = Failing(
        pipeline.sqs,
        "send_message",
        fail=False,
        before=lambda: os.kill(os.getpid(), signal.SIGINT),
    )

    with (
        pytest.raises(KeyboardInterrupt),
        DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as scan,
    ):
        replayer(pipeline, scan, interrupting, []).run(REJECTED)

    # The interrupted send went out and its dead letter was deleted; the other one stays.
    (sent,) = pipeline.bodies(pipeline.queue_url)
    remaining = pipeline.bodies(pipeline.dlq_url)
    assert sorted([sent, *remaining]) == sorted([first, second])
    assert len(remaining) == 1


def test_sends_are_paced_at_the_rate(pipeline: Pipeline) -> None:
    pipeline.bulk(4, "ses-rejected:MessageRejected")
    clock = FakeClock()
    lines: list[str] = []
    with DeadLetterScan(pipeline.sqs, pipeline.dlq_url, max_messages=10, wait_seconds=0) as scan:
        replay = Replayer(
            scan,
            pipeline.sqs,
            pipeline.queue_url,
            execute=True,
            outcome_checked=False,
            pacer=Pacer(2.0, clock=clock, sleep=clock.sleep),
            now=lambda: datetime.now(UTC),
            s3=lambda: pipeline.s3,
            report=lines.append,
        )
        outcome = replay.run(REJECTED)

    assert len(outcome.replayed) == 4
    assert clock.now == pytest.approx(1_000.0 + 1.5)  # 3 waits of 0.5 s between 4 sends


def test_a_slow_replay_holds_messages_for_four_send_intervals(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    holds: list[int] = []

    class Spy(DeadLetterScan):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            holds.append(self.hold_seconds)

    monkeypatch.setattr(commands, "DeadLetterScan", Spy)
    selection = [*REPLAY, *pipeline.where(), "--reason", "ses-rejected", "--hold-seconds", "10"]

    assert run([*selection, "--rate", "0.05"], capsys)[0] == 0
    assert run([*selection, "--rate", "2"], capsys)[0] == 0
    assert holds == [80, 10]


def test_outcome_unknown_without_its_mail_object_is_refused(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("k-1", "ses-outcome-unknown")  # no object stored

    status, out, _ = run(
        [*REPLAY, *pipeline.where(), "--message-id", "k-1", "--yes", OUTCOME_CHECKED_FLAG], capsys
    )

    assert status == 1
    assert f"s3://{pipeline.bucket}/inbound/k-1 is gone: no bounce can be sent for it" in out
    assert pipeline.counts(pipeline.dlq_url) == (1, 0)
