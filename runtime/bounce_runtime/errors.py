"""The runtime's one error taxonomy: every error class it raises, each carrying its ``reason``.

One form: each class states its ``reason`` (a kebab-case code from ``contract``) as a class
attribute and is raised with its ``message`` alone. A reason with a detail suffix
(``ses-rejected:MessageRejected``) is made one way only: ``SesRejected(message, detail=code)``.

- ``PermanentError`` and its subclasses: the record can never succeed; it is dead-lettered at once.
  (``ConfigError`` is the exception: it fails the whole invocation, see its docstring.)
- ``RetryableError`` and its subclasses (``TransientSendError``, ``SendClaimHeld``,
  ``OutOfTime``): the record may succeed later; it is left for SQS to redeliver. Their reasons are
  exactly ``contract.RETRY_REASONS``.
- ``PolicyError`` (a ``ValueError``): an invalid policy, at synth, in the CLI or in the runtime's
  policy file; ``CommandError``: bad input to a CLI command.

Pure: standard library only.
"""

from __future__ import annotations

from typing import Any

from bounce_runtime.contract import (
    REASON_DEADLINE,
    REASON_EXPIRED,
    REASON_FAILED_BEFORE_SEND,
    REASON_FOREIGN_MAIL_OBJECT,
    REASON_INVALID_CONFIG,
    REASON_INVALID_INPUT,
    REASON_INVALID_REQUEST,
    REASON_MAIL_OBJECT_MISSING,
    REASON_MALFORMED_NOTIFICATION,
    REASON_OUTCOME_UNKNOWN,
    REASON_SEND_BUDGET_UNAVAILABLE,
    REASON_SEND_CLAIM_HELD,
    REASON_SES_CONNECTION,
    REASON_SES_REJECTED,
    REASON_SES_THROTTLED,
)


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 80 characters, for error messages that quote a bad value (an
    integer too long for ``repr``, past CPython's 4,300-digit limit, is described instead)."""
    try:
        text = repr(value)
    except ValueError:  # int -> str conversion limit (CPython 3.11+)
        return (
            f"<an integer of about {value.bit_length() * 0.30103:.0f} digits>"
            if isinstance(value, int)
            else f"<a {type(value).__name__} that cannot be shown>"
        )
    return text if len(text) <= 80 else text[:77] + "..."


class ReasonedError(Exception):
    """An error with its class's ``reason`` code and a ``message``; ``str()`` is the message.

    ``detail`` appends ``:<detail>`` to the class's reason (the one way to suffix a reason).
    """

    reason: str = ""

    def __init__(self, message: str, *, detail: str = "") -> None:
        if detail:
            self.reason = f"{type(self).reason}:{detail}"
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# Permanent: the record goes to the dead-letter queue ---------------------------------------------


class PermanentError(ReasonedError):
    """A record that can never succeed: it goes to the dead-letter queue at once."""


class MalformedNotification(PermanentError):
    """The SQS body is not an SES "Received" notification this runtime can act on."""

    reason = REASON_MALFORMED_NOTIFICATION


class InvalidBounceRequest(PermanentError):
    """A SendBounce request breaks a documented SES constraint."""

    reason = REASON_INVALID_REQUEST


class MailExpired(PermanentError):
    """The message was received too long ago: SendBounce's 24-hour window has closed."""

    reason = REASON_EXPIRED


class ForeignMailObject(PermanentError):
    """The notification names a mail object outside this processor's bucket and prefix."""

    reason = REASON_FOREIGN_MAIL_OBJECT


class MailObjectMissing(PermanentError):
    """The stored mail object the notification names does not exist."""

    reason = REASON_MAIL_OBJECT_MISSING


class SendOutcomeUnknown(PermanentError):
    """SendBounce may or may not have sent the bounce: never sent again, an operator checks."""

    reason = REASON_OUTCOME_UNKNOWN


class SesRejected(PermanentError):
    """SES refused SendBounce; ``detail`` is its error code or HTTP status."""

    reason = REASON_SES_REJECTED


class FailedBeforeSend(PermanentError):
    """An unexpected error after the send claim, before SendBounce was called."""

    reason = REASON_FAILED_BEFORE_SEND


class ConfigError(PermanentError):
    """The runtime's environment (or the policy file it names) is invalid.

    Raised while the handler builds its container, before any record is looked at: the invocation
    fails, every record of the batch stays in SQS and is retried, and after the queue's
    maxReceiveCount SQS moves it to the dead-letter queue (without a reason attribute).
    """

    reason = REASON_INVALID_CONFIG


# Retryable: the record is left for SQS to redeliver ----------------------------------------------


class RetryableError(ReasonedError):
    """The record may succeed on a later delivery: it is left for SQS to redeliver (and on its
    last receive dead-lettered as ``retries-exhausted:<reason>``)."""


class TransientSendError(RetryableError):
    """SendBounce did not succeed but may on a later delivery."""


class SesThrottled(TransientSendError):
    """SES answered Throttling to every attempt the record's time allowed."""

    reason = REASON_SES_THROTTLED


class SesConnectionFailed(TransientSendError):
    """No connection to SES was made: the request never reached it."""

    reason = REASON_SES_CONNECTION


class SendDeadlineExceeded(TransientSendError):
    """Too little Lambda time remains for another attempt: the rest of the batch must wait."""

    reason = REASON_DEADLINE


class SendBudgetUnavailable(TransientSendError):
    """The shared SendBounce budget could not be reached or kept losing races: nothing was sent,
    and nothing may be (there is no unpaced fallback); the record goes back to the queue."""

    reason = REASON_SEND_BUDGET_UNAVAILABLE


class SendClaimHeld(RetryableError):
    """Another delivery of the message holds its send claim and may still be sending: the record
    is left for redelivery, by when that delivery has tagged the object or died."""

    reason = REASON_SEND_CLAIM_HELD


class OutOfTime(RetryableError):
    """The batch must stop: the current record and the rest are left for redelivery."""

    reason = REASON_DEADLINE


# Bad input to the policy or the CLI --------------------------------------------------------------


class PolicyError(ValueError):
    """An invalid bounce policy; the message names the field path, the value and what is allowed.

    At run time an invalid policy file is a ``ConfigError`` (reason ``invalid-config``).
    """

    reason = REASON_INVALID_CONFIG

    @classmethod
    def at(cls, path: str, value: object, problem: str) -> PolicyError:
        """The error for ``value`` at field ``path``: ``path: 'value' problem``."""
        return cls(f"{path}: {short_repr(value)} {problem}")


class CommandError(Exception):
    """Bad input to a CLI command: reported on stderr with exit status 1."""

    reason = REASON_INVALID_INPUT


class UsageError(CommandError):
    """Operator command options that do not fit together: one line on stderr and exit status 2
    (argparse's own usage errors exit 2 too)."""


class OperationsError(CommandError):
    """An operator command met bad input or a state it cannot act on: one line for the operator."""


class ClaimChanged(OperationsError):
    """``dead-letters replay``: the send claim changed between its read and its conditional
    delete (S3 answered 412, 404 or 409): the letter stays."""


class ReplayFailed(OperationsError):
    """An AWS call failed mid-replay; ``outcome`` (a ``ReplayOutcome``) holds what was done."""

    def __init__(self, message: str, outcome: Any) -> None:
        super().__init__(message)
        self.outcome = outcome


class SendSlotUnavailable(SendDeadlineExceeded):
    """The send budget had no slot within the record's time (its schedule is full further ahead
    than the invocation can wait): nothing was taken or sent, and the record goes back to the
    queue. Counted apart from other deadlines (``SendSlotUnavailable``); its reason stays the
    deadline's, so a last receive dead-letters it as ``retries-exhausted:deadline``."""

    reason = REASON_DEADLINE
