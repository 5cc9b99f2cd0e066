"""The runtime's one error taxonomy: every error class it raises, each carrying its ``reason``.

``reason`` is a short kebab-case code from ``contract`` (a log field, and the dead-letter
attribute of a record that goes to the dead-letter queue); ``message`` says what is wrong in words.

- ``PermanentError`` and its subclasses: the record can never succeed; it is dead-lettered at once.
  (``ConfigError`` is the exception: it fails the whole invocation, see its docstring.)
- ``TransientSendError``, ``SendDeadlineExceeded``, ``SendClaimHeld``, ``OutOfTime``: the record
  may succeed later; it is left for SQS to redeliver.
- ``PolicyError`` (a ``ValueError``): an invalid policy, at synth, in the CLI or in the runtime's
  policy file; ``CommandError``: bad input to a CLI command.

Pure: standard library only.
"""

from __future__ import annotations

from typing import Any

from bounce_runtime.contract import (
    REASON_DEADLINE,
    REASON_INVALID_CONFIG,
    REASON_INVALID_REQUEST,
    REASON_MALFORMED_NOTIFICATION,
    REASON_SEND_BUDGET_UNAVAILABLE,
    REASON_SEND_CLAIM_HELD,
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
    """An error with a ``reason`` code and a ``message``; ``str()`` is the message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


# Permanent: the record goes to the dead-letter queue ---------------------------------------------


class PermanentError(ReasonedError):
    """A record that can never succeed: it goes to the dead-letter queue at once."""


class MalformedNotification(PermanentError):
    """The SQS body is not an SES "Received" notification this runtime can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(REASON_MALFORMED_NOTIFICATION, message)


class InvalidBounceRequest(PermanentError):
    """A SendBounce request breaks a documented SES constraint."""

    def __init__(self, message: str) -> None:
        super().__init__(REASON_INVALID_REQUEST, message)


class ConfigError(PermanentError):
    """The runtime's environment (or the policy file it names) is invalid.

    Raised while the handler builds its container, before any record is looked at: the invocation
    fails, every record of the batch stays in SQS and is retried, and after the queue's
    maxReceiveCount SQS moves it to the dead-letter queue (without a reason attribute).
    """

    def __init__(self, message: str) -> None:
        super().__init__(REASON_INVALID_CONFIG, message)


# Transient: the record is left for SQS to redeliver ----------------------------------------------


class TransientSendError(ReasonedError):
    """SendBounce did not succeed but may on a later delivery."""


class SendDeadlineExceeded(TransientSendError):
    """Too little Lambda time remains for another attempt: the rest of the batch must wait."""

    def __init__(self, message: str) -> None:
        super().__init__(REASON_DEADLINE, message)


class SendBudgetUnavailable(TransientSendError):
    """The shared SendBounce budget could not be reached or kept losing races: nothing was sent,
    and nothing may be (there is no unpaced fallback); the record goes back to the queue."""

    def __init__(self, message: str) -> None:
        super().__init__(REASON_SEND_BUDGET_UNAVAILABLE, message)


class SendClaimHeld(ReasonedError):
    """Another delivery of the message holds its send claim and may still be sending: the record
    is left for redelivery, by when that delivery has tagged the object or died."""

    def __init__(self, message: str) -> None:
        super().__init__(REASON_SEND_CLAIM_HELD, message)


class OutOfTime(ReasonedError):
    """The batch must stop: the current record and the rest are left for redelivery."""

    def __init__(self, message: str) -> None:
        super().__init__(REASON_DEADLINE, message)


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

    reason = "invalid-input"


class OperationsError(CommandError):
    """An operator command met bad input or a state it cannot act on: one line for the operator."""


class ReplayFailed(OperationsError):
    """An AWS call failed mid-replay; ``outcome`` (a ``ReplayOutcome``) holds what was done."""

    def __init__(self, message: str, outcome: Any) -> None:
        super().__init__(message)
        self.outcome = outcome


class SendSlotUnavailable(SendDeadlineExceeded):
    """The send budget had no slot within the record's time (its schedule is full further ahead
    than the invocation can wait): nothing was taken or sent, and the record goes back to the
    queue. Counted apart from other deadlines (``SendSlotUnavailable``)."""
