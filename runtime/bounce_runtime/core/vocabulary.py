"""The DSN vocabulary SES's SendBounce speaks, and the checks of its fields.

Bounce types and their default status, SMTP code and action; DSN actions; and one check per field
(RFC 3463 status, status/action fit, MTA name, Diagnostic-Code, Explanation, extension fields).
Each check returns what is wrong, or None; the policy parser and the SendBounce request validator
share them. Every pattern is ASCII only (``addresses.regex``), and every text must be encodable as
UTF-8 (``unicode_problem``): what SES would be sent is what the checks saw.

Sizes: where SES documents a bound it is used (extension field names 1-50 characters, values at
most 2048); where it documents none, RFC 5322 2.1.1's line of at most 998 characters bounds a
field that SES writes as one header line (Diagnostic-Code with its field name) and each line of
the Explanation, and the Explanation as a whole is kept to a few paragraphs.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

from bounce_runtime.core.addresses import HOST_LABEL, HOST_NAME_MAX_CHARS, regex

BOUNCE_TYPES: Final = (
    "DoesNotExist",
    "MessageTooLarge",
    "ExceededQuota",
    "ContentRejected",
    "Undefined",
    "TemporaryFailure",
)
DSN_ACTIONS: Final = ("failed", "delayed", "delivered", "relayed", "expanded")
# SES's ExtensionField: "Must contain 2048 characters or fewer" (SES API reference).
EXTENSION_VALUE_MAX_CHARS: Final = 2048
# RFC 5322 2.1.1: a line is at most 998 characters. The Diagnostic-Code field must fit on one line
# with its name; each line of the Explanation too. SES documents no bound for either.
LINE_MAX_CHARS: Final = 998
DIAGNOSTIC_CODE_MAX_CHARS: Final = LINE_MAX_CHARS - len("Diagnostic-Code: ")
# A few paragraphs (good sense: the text of one bounce, not a document; SES documents no bound).
EXPLANATION_MAX_CHARS: Final = 10_000

# Regular expressions are kept as pattern strings and compiled on first use by `regex` (ASCII
# only), so importing this module compiles none.
_STATUS = r"[245]\.\d{1,3}\.\d{1,3}"
_STATUS_CLASS_FOR_ACTION = {
    "failed": "5",
    "delayed": "4",
    "delivered": "2",
    "relayed": "2",
    "expanded": "2",
}
_MTA = rf"(?i)dns; {HOST_LABEL}(?:\.{HOST_LABEL})*\.?"
# "dns; " and a host name with its optional final dot.
_MTA_MAX_CHARS = len("dns; ") + HOST_NAME_MAX_CHARS + 1
_DIAGNOSTIC = r"(?s)[A-Za-z][A-Za-z0-9-]*; \S.*"
_EXTENSION_NAME = r"[A-Za-z0-9-]{1,50}"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL_EXCEPT_NEWLINE_TAB = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]"
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


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as UTF-8 (a lone surrogate, e.g. from a JSON escape such as
    ``"\\ud800"`` or an undecodable byte), or None. O(1) for ASCII text."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"contains a lone surrogate (U+{ord(text[error.start]):04X}), not valid Unicode"
    return None


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
    return (
        "is not an MTA name of the form 'dns; mail.example.com' (an ASCII host name of at most "
        f"{HOST_NAME_MAX_CHARS} characters)"
    )


def diagnostic_problem(code: str) -> str | None:
    """Why ``code`` is not a one-line RFC 3464 Diagnostic-Code ``smtp; 550 ...``, or None."""
    if regex(_CR_LF).search(code) or regex(_CONTROL_EXCEPT_NEWLINE_TAB).search(code):
        return "must not contain CR, LF or other control characters"
    if len(code) > DIAGNOSTIC_CODE_MAX_CHARS:
        return (
            f"is {len(code)} characters long: at most {DIAGNOSTIC_CODE_MAX_CHARS} are allowed "
            f"(one {LINE_MAX_CHARS}-character line of RFC 5322 with 'Diagnostic-Code: ')"
        )
    if not regex(_DIAGNOSTIC).fullmatch(code):
        return "is not a diagnostic code of the form 'smtp; 550 5.1.1 text'"
    return unicode_problem(code)


def explanation_problem(text: str) -> str | None:
    """Why ``text`` cannot be a bounce's Explanation (control characters but newline and tab; too
    long; a line too long; not encodable), or None."""
    if regex(_CONTROL_EXCEPT_NEWLINE_TAB).search(text):
        return "contains control characters; only newline and tab are allowed"
    if len(text) > EXPLANATION_MAX_CHARS:
        return f"is {len(text)} characters long: at most {EXPLANATION_MAX_CHARS} are allowed"
    longest = max(len(line) for line in text.split("\n"))
    if longest > LINE_MAX_CHARS:
        return (
            f"has a line of {longest} characters: at most {LINE_MAX_CHARS} are allowed "
            "(RFC 5322 2.1.1)"
        )
    return unicode_problem(text)


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
    return unicode_problem(value)
