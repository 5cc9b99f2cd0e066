"""What this processor owns: the recipients its receipt rule matches, and the mail objects its
S3 action writes. The runtime bounces nothing else and reads nothing else.

Recipients match as SES receipt rules match them: a domain matches every address at that domain
(not its subdomains), an address matches itself, case-insensitively (``contract.recipient_key``).

A mail object is this processor's when the notification names its bucket and the key is its
prefix + ``mail.messageId``: SES writes the message under exactly that key (the SES developer
guide, "Contents of notifications for Amazon SES email receiving": ``mail.messageId`` "is also
the Amazon S3 object key that was used to write the message", ``receipt.action.objectKey`` "is
the same as the messageId"; with an object key prefix the key is the prefix + that id). Anything
else (another bucket, a key outside the prefix, a key of another message, a message id that is
not one plain name) was not written by this processor's rule.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import re
from collections.abc import Iterable
from typing import Final, NamedTuple

from bounce_runtime.contract import recipient_key
from bounce_runtime.core.notification import SES_MESSAGE_ID_PATTERN, ReceivedNotification

# The rule label of a decision taken because the recipient is not this processor's.
OWNERSHIP_RULE_LABEL: Final = "receipt-rule-recipients"
OWNED_RECIPIENT_FORM: Final = "a domain (example.com) or an address (user@example.com)"
# Deliberately loose: the construct checks the rule's recipients at synth, and an entry it let
# through must not stop the runtime. Refused: what cannot be a recipient at all (empty sides,
# anything but printable ASCII, whitespace, a second '@', a wildcard). ASCII only, as the
# construct's grammar: no lookalike (the Kelvin sign lowercases to k) can pass for a domain.
_PART = r"[\x21-\x29\x2b-\x3f\x41-\x7e]+"
_RECIPIENT = rf"(?:{_PART}@)?{_PART}"


def owned_recipient_problem(value: object) -> str | None:
    """Why ``value`` is not a receipt rule recipient, or None."""
    if not isinstance(value, str) or not re.fullmatch(_RECIPIENT, value, re.ASCII):
        return f"is not {OWNED_RECIPIENT_FORM}"
    return None


class OwnedRecipients(NamedTuple):
    """The recipients of this processor's receipt rule: addresses and domains, as lookup keys."""

    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def of(cls, recipients: Iterable[object]) -> "OwnedRecipients":
        """The owned recipients of a rule's list; ``ValueError`` naming a bad entry."""
        addresses: set[str] = set()
        domains: set[str] = set()
        for position, recipient in enumerate(recipients):
            problem = owned_recipient_problem(recipient)
            if problem is not None:
                raise ValueError(f"[{position}] {recipient!r} {problem}")
            key = recipient_key(str(recipient))
            (addresses if "@" in key else domains).add(key)
        return cls(frozenset(addresses), frozenset(domains))

    def owns(self, recipient: str) -> bool:
        """Whether the rule matches ``recipient`` (an envelope RCPT TO address)."""
        key = recipient_key(recipient)
        local, _, domain = key.partition("@")
        if not local or not domain or "@" in domain:
            return False
        return key in self.addresses or domain in self.domains


def mail_object_problem(
    notification: ReceivedNotification, *, bucket: str, prefix: str
) -> str | None:
    """Why the notification's mail object is not this processor's (in ``bucket``, at ``prefix``
    + its message id), or None when it is."""
    action = notification.receipt.action
    message_id = notification.mail.message_id
    if action.bucket_name != bucket:
        return (
            f"receipt.action.bucketName {action.bucket_name!r} is not this processor's bucket "
            f"{bucket!r}"
        )
    if not re.fullmatch(SES_MESSAGE_ID_PATTERN, message_id, re.ASCII):
        return (
            f"mail.messageId {message_id!r} is not an SES message id (ASCII letters, digits, "
            "'.', '_' and '-'): it cannot name an object under this processor's prefix"
        )
    expected = prefix + message_id
    if action.object_key != expected:
        return (
            f"receipt.action.objectKey {action.object_key!r} is not {expected!r} (this "
            "processor's prefix + mail.messageId, the key SES writes)"
        )
    return None
