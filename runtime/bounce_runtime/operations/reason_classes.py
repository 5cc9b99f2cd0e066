"""What each dead-letter reason means to an operator, and whether replaying the record can help.

``REASON_CLASSES`` is keyed off the runtime's own list of dead-letter reasons
(``contract.DEAD_LETTER_REASONS``), plus ``REDRIVEN_BY_SQS`` for a record SQS moved without one: a
reason the runtime writes but this table does not class fails at import, not in front of an
operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from bounce_runtime.contract import (
    DEAD_LETTER_REASONS,
    REASON_EXPIRED,
    REASON_FAILED_BEFORE_SEND,
    REASON_FOREIGN_MAIL_OBJECT,
    REASON_INVALID_REQUEST,
    REASON_MAIL_OBJECT_MISSING,
    REASON_MALFORMED_NOTIFICATION,
    REASON_OUTCOME_UNKNOWN,
    REASON_RETRIES_EXHAUSTED,
    REASON_SES_REJECTED,
)

# The reason a scan gives a message that carries no reason attribute: SQS itself moved it from
# the main queue after maxReceiveCount failed receives (its enqueue time is unchanged).
REDRIVEN_BY_SQS: Final = "redriven-by-sqs"

# Whether replay can help a reason.
REPLAY_YES: Final = "yes"
REPLAY_NO: Final = "no"
REPLAY_IF_NO_BOUNCE_SENT: Final = "if-no-bounce-sent"
OUTCOME_CHECKED_FLAG: Final = "--i-checked-no-bounce-was-sent"


@dataclass(frozen=True)
class ReasonClass:
    """What a dead-letter reason means and whether replaying the record can help."""

    replay: str
    meaning: str


_CLASSES: Final[Mapping[str, ReasonClass]] = {
    REASON_EXPIRED: ReasonClass(
        REPLAY_NO,
        "received more than 24 hours ago: SES accepts no SendBounce for it any more",
    ),
    REASON_MALFORMED_NOTIFICATION: ReasonClass(
        REPLAY_NO,
        "the body is not an SES Received notification the runtime can act on; "
        "it fails the same way every time",
    ),
    REASON_INVALID_REQUEST: ReasonClass(
        REPLAY_NO,
        "the SendBounce request built for it breaks an SES constraint; a replay builds it again",
    ),
    REASON_MAIL_OBJECT_MISSING: ReasonClass(
        REPLAY_YES,
        "the stored mail object was not found; replay helps only once it is back in the bucket",
    ),
    REASON_SES_REJECTED: ReasonClass(
        REPLAY_YES,
        "SES refused the SendBounce call (the code after ':' says why, e.g. an unverified "
        "identity or a missing permission); replay after fixing that",
    ),
    REASON_OUTCOME_UNKNOWN: ReasonClass(
        REPLAY_IF_NO_BOUNCE_SENT,
        "the SendBounce call may have sent the bounce; replay only after checking that no "
        f"bounce went out ({OUTCOME_CHECKED_FLAG}); the replay removes the send claim only once "
        "it is older than the claim TTL",
    ),
    REASON_FAILED_BEFORE_SEND: ReasonClass(
        REPLAY_YES,
        "an unexpected error before SendBounce was called (the detail names it): nothing was "
        "sent and the send claim was released; replay once its cause is fixed",
    ),
    REASON_FOREIGN_MAIL_OBJECT: ReasonClass(
        REPLAY_NO,
        "the notification names a mail object outside this processor's bucket and prefix (or "
        "a key that is not the prefix + its message id); it was never read, and a replay "
        "refuses it the same way",
    ),
    REASON_RETRIES_EXHAUSTED: ReasonClass(
        REPLAY_YES,
        "it failed on its last receive; the code after ':' is the last cause (a retry reason, "
        "an AWS error code such as AccessDenied, or an exception type); nothing was sent by "
        "that delivery; replay once the cause is fixed",
    ),
}

REASON_CLASSES: Final[Mapping[str, ReasonClass]] = {
    **{reason: _CLASSES[reason] for reason in DEAD_LETTER_REASONS},
    REDRIVEN_BY_SQS: ReasonClass(
        REPLAY_YES,
        "no reason attribute: SQS moved it after the function failed it maxReceiveCount times "
        "(an invalid configuration, throttling, SES or S3 unavailable, time-outs, invocation "
        "errors); replay once the cause is gone",
    ),
}


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters replaced: whatever comes from a
    dead letter (attributes, body) is written by whoever may send to the queue, and must not
    drive the operator's terminal."""
    return "".join(char if char.isprintable() else "\ufffd" for char in text)


def iso(moment: datetime) -> str:
    """``moment`` in UTC, to the second, with a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
