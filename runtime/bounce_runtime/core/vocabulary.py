"""The DSN vocabulary SES's SendBounce speaks, and the checks of its fields.

Bounce types and their default status, SMTP code and action; DSN actions; and one check per field
(RFC 3463 status, status/action fit, MTA name, Diagnostic-Code, Explanation, extension fields).
Each check returns what is wrong, or None; the policy parser and the SendBounce request validator
share them.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import re
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Final, NamedTuple

BOUNCE_TYPES: Final = (
    "DoesNotExist",
    "MessageTooLarge",
    "ExceededQuota",
    "ContentRejected",
    "Undefined",
    "TemporaryFailure",
)
DSN_ACTIONS: Final = ("failed", "delayed", "delivered", "relayed", "expanded")
EXTENSION_VALUE_MAX_CHARS: Final = 2048

# Regular expressions are kept as pattern strings and compiled on first use by `regex`, so
# importing this module compiles none.
_STATUS = r"[245]\.\d{1,3}\.\d{1,3}"
_STATUS_CLASS_FOR_ACTION = {
    "failed": "5",
    "delayed": "4",
    "delivered": "2",
    "relayed": "2",
    "expanded": "2",
}
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_MTA = rf"(?i)dns; {_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?"
_MTA_MAX_CHARS = 260
_DIAGNOSTIC = r"(?s)[A-Za-z][A-Za-z0-9-]*; \S.*"
_EXTENSION_NAME = r"[A-Za-z0-9-]{1,50}"
_CONTROL_EXCEPT_NEWLINE_TAB = r"[\x00-\x08\x0b-\x1f\x7f]"
_CR_LF = r"[\r\n]"


class BounceTypeDefaults(NamedTuple):
    """The RFC 3463 status, SMTP reply code and DSN action a BounceType stands for."""

    status: str
    smtp_code: int
    action: str
    text: str

    @property
    def diagnostic_code(self) -> str:
        """RFC 3464 Diagnostic-Code, e.g. ``smtp; 550 5.1.1 mailbox does not exist``."""
        return f"smtp; {self.smtp_code} {self.status} {self.text}"


BOUNCE_TYPE_DEFAULTS: Final[Mapping[str, BounceTypeDefaults]] = MappingProxyType(
    {
        "DoesNotExist": BounceTypeDefaults("5.1.1", 550, "failed", "mailbox does not exist"),
        "MessageTooLarge": BounceTypeDefaults("5.3.4", 552, "failed", "message too large"),
        "ExceededQuota": BounceTypeDefaults("5.2.2", 552, "failed", "mailbox full"),
        "ContentRejected": BounceTypeDefaults("5.7.1", 550, "failed", "message content rejected"),
        "Undefined": BounceTypeDefaults("5.0.0", 554, "failed", "delivery failed"),
        "TemporaryFailure": BounceTypeDefaults(
            "4.0.0", 450, "delayed", "temporary failure, try again later"
        ),
    }
)


@cache
def regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on its first use (and only then), ASCII-only: ``\\d`` is 0-9 and
    ``(?i)`` folds A-Z alone (no Arabic-Indic digits in a status, no Kelvin sign in a host)."""
    return re.compile(pattern, re.ASCII)


def status_problem(status: str) -> str | None:
    """Why ``status`` is not an RFC 3463 status code, or None."""
    if regex(_STATUS).fullmatch(status):
        return None
    return "is not an RFC 3463 status: class.subject.detail, class 2, 4 or 5, e.g. 5.1.1"


def status_action_problem(status: str, action: str) -> str | None:
    """Why ``status`` does not fit DSN ``action`` (RFC 3464 2.3.3/2.3.4), or None."""
    expected = _STATUS_CLASS_FOR_ACTION.get(action)
    if expected is None or status[:1] == expected:
        return None
    return (
        f"does not fit action {action!r}: failed needs a 5.x.x status, delayed 4.x.x, "
        "delivered, relayed and expanded 2.x.x"
    )


def mta_problem(mta: str) -> str | None:
    """Why ``mta`` is not an RFC 3464 MTA name ``dns; host.example.com``, or None."""
    if len(mta) <= _MTA_MAX_CHARS and regex(_MTA).fullmatch(mta):
        return None
    return "is not an MTA name of the form 'dns; mail.example.com'"


def diagnostic_problem(code: str) -> str | None:
    """Why ``code`` is not a one-line RFC 3464 Diagnostic-Code ``smtp; 550 ...``, or None."""
    if regex(_CR_LF).search(code) or regex(_CONTROL_EXCEPT_NEWLINE_TAB).search(code):
        return "must not contain CR, LF or other control characters"
    if regex(_DIAGNOSTIC).fullmatch(code):
        return None
    return "is not a diagnostic code of the form 'smtp; 550 5.1.1 text'"


def explanation_problem(text: str) -> str | None:
    """Why ``text`` cannot be a bounce's Explanation (control characters but newline, tab)."""
    if regex(_CONTROL_EXCEPT_NEWLINE_TAB).search(text):
        return "contains control characters; only newline and tab are allowed"
    return None


def extension_name_problem(name: str) -> str | None:
    """Why ``name`` is not a DSN extension field name (1-50 of A-Z, a-z, 0-9, -), or None."""
    if regex(_EXTENSION_NAME).fullmatch(name):
        return None
    return "is not an extension field name: 1 to 50 characters of A-Z, a-z, 0-9 and -"


def extension_value_problem(value: str) -> str | None:
    """Why ``value`` is not a DSN extension field value (<= 2048 characters, no CR/LF), or None."""
    if len(value) > EXTENSION_VALUE_MAX_CHARS:
        return f"is {len(value)} characters long: at most {EXTENSION_VALUE_MAX_CHARS} are allowed"
    if regex(_CR_LF).search(value):
        return "contains CR or LF, which extension field values must not"
    return None
