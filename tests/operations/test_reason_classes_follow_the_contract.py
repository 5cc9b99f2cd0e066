"""The tools class exactly the reasons the runtime dead-letters with (contract.DEAD_LETTER_REASONS),
plus ``redriven-by-sqs`` for a record SQS moved without one: in both directions."""

from __future__ import annotations

from bounce_runtime import contract
from bounce_runtime.operations.reason_classes import (
    REASON_CLASSES,
    REDRIVEN_BY_SQS,
    REPLAY_IF_NO_BOUNCE_SENT,
    REPLAY_NO,
    REPLAY_YES,
)


def test_every_reason_the_runtime_dead_letters_with_is_classed() -> None:
    missing = set(contract.DEAD_LETTER_REASONS) - set(REASON_CLASSES)

    assert missing == set()


def test_every_classed_reason_is_one_the_runtime_writes_or_sqs_redrive() -> None:
    extra = set(REASON_CLASSES) - set(contract.DEAD_LETTER_REASONS)

    assert extra == {REDRIVEN_BY_SQS}


def test_retry_reasons_are_never_dead_letter_reasons_of_their_own() -> None:
    # A retry reason reaches the dead-letter queue only as retries-exhausted:<reason>.
    assert not set(contract.RETRY_REASONS) & set(REASON_CLASSES)


def test_each_class_says_whether_replay_helps() -> None:
    answers = {reason: reason_class.replay for reason, reason_class in REASON_CLASSES.items()}

    assert set(answers.values()) <= {REPLAY_YES, REPLAY_NO, REPLAY_IF_NO_BOUNCE_SENT}
    assert [r for r, a in answers.items() if a == REPLAY_IF_NO_BOUNCE_SENT] == [
        contract.REASON_OUTCOME_UNKNOWN
    ]
