"""The runtime's classified errors."""

from __future__ import annotations


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 80 characters, for error messages that quote a bad value."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class PermanentError(Exception):
    """A record that can never succeed: it goes to the dead-letter queue at once.

    ``reason`` is a short kebab-case code (a dead-letter attribute and log field); ``message``
    says what is wrong in words.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


class MalformedNotification(PermanentError):
    """The SQS body is not an SES "Received" notification this runtime can act on."""

    def __init__(self, message: str) -> None:
        super().__init__("malformed-notification", message)


class InvalidBounceRequest(PermanentError):
    """A SendBounce request breaks a documented SES constraint."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid-request", message)


class ConfigError(PermanentError):
    """The runtime's environment (or the policy file it names) is invalid."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid-config", message)


class PolicyError(ValueError):
    """An invalid bounce policy; the message names the field path, the value and what is allowed."""
