"""Decides, per recipient, whether a received message is bounced, accepted or suppressed.

Order: the policy decides each recipient; if any would be bounced, the guards (anti-backscatter)
turn those bounces into suppressions with the guard's reason; bounces left over from a message
received 24 hours or more before ``now`` are not sent either (outcome ``expired``).
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from bounce_runtime.contract import (
    REASON_AUTO_SUBMITTED,
    REASON_DAEMON_SENDER,
    REASON_DEFAULT_RULE,
    REASON_EXPIRED,
    REASON_FAILED_AUTHENTICATION,
    REASON_HEADER_BLOCK_TOO_LARGE,
    REASON_HEADER_BLOCK_UNREADABLE,
    REASON_LIST_TRAFFIC,
    REASON_MATCHED_RULE,
    REASON_NO_NDR_REQUESTED,
    REASON_NOT_OWNED,
    REASON_NULL_SENDER,
    REASON_POLICY,
    REASON_SPAM_VERDICT,
    REASON_UNAUTHENTICATED_SENDER,
    REASON_VIRUS_VERDICT,
    SEND_BOUNCE_WINDOW_S,
)
from bounce_runtime.core.notification import VERDICT_NAMES, Header, ReceivedNotification
from bounce_runtime.core.ownership import OWNERSHIP_RULE_LABEL, OwnedRecipients
from bounce_runtime.core.policy import (
    DEFAULT_RULE_LABEL,
    BounceAction,
    BouncePolicy,
    MessageSettings,
)
from bounce_runtime.core.reverse_path import DAEMON_LOCAL_PARTS, parse_reverse_path

if TYPE_CHECKING:  # the header parser is imported only when a header block is read
    from bounce_runtime.core.headers import HeaderBlock

SEND_BOUNCE_WINDOW = timedelta(seconds=SEND_BOUNCE_WINDOW_S)
# A stored header block with a line that is neither a header field nor a continuation. The
# closest reason contract.py has, until it defines its own (requests/headers.md asks for
# REASON_HEADER_BLOCK_UNREADABLE = "header-block-unreadable").
LIST_PRECEDENCE = frozenset({"bulk", "list", "junk"})
LIST_HEADERS = frozenset({"list-id", "list-unsubscribe"})
# Auto-reply markers older than RFC 3834, checked like Auto-Submitted: any keyword but "no"
# (Gmail's vacation responder sends "X-Autoreply: yes", cPanel's autoresponder X-Autorespond).
AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond")
AUTO_REPLY_PRECEDENCE = "auto_reply"
# X-Auto-Response-Suppress (MS-OXCMAIL 2.1.3.2.20) lists what the sender wants no automatic
# response to: All, DR (delivery reports from transport), NDR (non-delivery reports: a bounce is
# one), RN, NRN (read notices), OOF, AutoReply. All and NDR forbid a bounce; DR does too, on the
# safe side: it marks automated mail ("DR, OOF, AutoReply" is among its most common values).
NO_NDR_SUPPRESS_VALUES = frozenset({"all", "dr", "ndr"})
# The header fields a guard reads (lowercase).
GUARD_HEADERS = frozenset(
    {
        "auto-submitted",
        "precedence",
        "x-auto-response-suppress",
        *AUTO_REPLY_HEADERS,
        *LIST_HEADERS,
    }
)
# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
_COMMENT = r"\([^()]*\)"
_LIST_SEPARATOR = r"[\s,;]+"

RecipientAction = Literal["bounce", "accept", "suppress"]
Outcome = Literal["bounce", "accept", "suppress", "expired"]


class RecipientDecision(NamedTuple):
    """What happens to one recipient, why (a kebab-case code) and which rule said so.

    ``rule`` is the policy rule that matched (its name, ``rules[i]`` or ``default``);
    ``bounce`` is the bounce to send when ``action`` is ``bounce``.
    """

    recipient: str
    action: RecipientAction
    reason: str
    rule: str
    bounce: BounceAction | None = None


class MessagePlan(NamedTuple):
    """The decisions for every recipient of one message and the message's outcome.

    Outcome: ``bounce`` if a recipient is bounced; ``expired`` if bounces were due but the
    SendBounce window has passed; else ``suppress`` if a recipient is suppressed; else ``accept``.
    ``reason`` is the guard's code, ``expired`` or ``policy``.
    """

    notification: ReceivedNotification
    decisions: tuple[RecipientDecision, ...]
    outcome: Outcome
    reason: str
    message: MessageSettings

    @property
    def bounced(self) -> tuple[RecipientDecision, ...]:
        """The decisions whose action is ``bounce``."""
        return tuple(decision for decision in self.decisions if decision.action == "bounce")


def _guard_header_values(headers: Iterable[Header]) -> dict[str, list[str]]:
    """The values of the header fields the guards read, by lowercase name, in one pass.

    Names are compared without surrounding white space: SES's ``mail.headers`` keeps the space
    of the obsolete form ``Name : value`` (RFC 5322 4.5) in the name.
    """
    found: dict[str, list[str]] = {}
    for header in headers:
        name = header.name.strip().lower()
        if name in GUARD_HEADERS:
            found.setdefault(name, []).append(header.value.strip())
    return found


def _sender_guard(source: str) -> str | None:
    """``null-sender`` for a null reverse path (``<>``, ``< >``, empty), ``daemon-sender`` for a
    mail system's local part in any RFC 5321 form (quoted, behind a source route), else None."""
    path = parse_reverse_path(source)
    if path.null:
        return REASON_NULL_SENDER
    if path.local_part.lower() in DAEMON_LOCAL_PARTS:
        return REASON_DAEMON_SENDER
    return None


def _precedence_words(value: str) -> frozenset[str]:
    """The words of a ``Precedence`` value, lowercased, without comments and parameters: each
    counts (``bulk`` folded onto a line with more text, ``bulk x``, is still bulk)."""
    return frozenset(re.split(_LIST_SEPARATOR, _keyword(value)))


def _keyword(value: str) -> str:
    """A header's keyword, lowercased, without RFC 5322 comments and parameters."""
    return re.sub(_COMMENT, " ", value).split(";", 1)[0].strip().lower()


def _auto_reply(values: dict[str, list[str]]) -> str | None:
    """The auto_submitted guard's reason, or None.

    ``auto-submitted``: ``Auto-Submitted`` (RFC 3834), ``X-Autoreply`` or ``X-Autorespond`` with
    any keyword but ``no``, or ``Precedence: auto_reply``. ``no-ndr-requested``:
    ``X-Auto-Response-Suppress`` naming All, DR or NDR. Comments and parameters are ignored.
    """
    for name in ("auto-submitted", *AUTO_REPLY_HEADERS):
        if any(_keyword(value) != "no" for value in values.get(name, ())):
            return REASON_AUTO_SUBMITTED
    precedence = values.get("precedence", ())
    if any(AUTO_REPLY_PRECEDENCE in _precedence_words(value) for value in precedence):
        return REASON_AUTO_SUBMITTED
    if any(_suppresses_ndr(value) for value in values.get("x-auto-response-suppress", ())):
        return REASON_NO_NDR_REQUESTED
    return None


def _suppresses_ndr(value: str) -> bool:
    """Whether an ``X-Auto-Response-Suppress`` value (a comma-separated list, any case; comments,
    spaces and semicolons tolerated) names All, DR or NDR."""
    words = re.split(_LIST_SEPARATOR, re.sub(_COMMENT, " ", value).lower())
    return not NO_NDR_SUPPRESS_VALUES.isdisjoint(words)


def _list_traffic(values: dict[str, list[str]]) -> bool:
    """``Precedence: bulk|list|junk`` (comments and parameters ignored), or a list header."""
    precedence = values.get("precedence", ())
    if any(not LIST_PRECEDENCE.isdisjoint(_precedence_words(value)) for value in precedence):
        return True
    return not LIST_HEADERS.isdisjoint(values)


def guard_reason(
    notification: ReceivedNotification,
    policy: BouncePolicy,
    headers: tuple[Header, ...],
    *,
    header_block_complete: bool = True,
    header_block_readable: bool = True,
) -> str | None:
    """The code of the first guard that forbids bouncing this message, or None.

    Checked in order: null-sender, daemon-sender, virus-verdict, spam-verdict,
    failed-authentication:spf|dkim|dmarc, unauthenticated-sender, auto-submitted,
    no-ndr-requested, list-traffic, header-block-too-large. ``header_block_complete`` is False
    when the stored header block was not read whole: with a header guard on, what was not read
    might have forbidden the bounce, so none is sent. ``header_block_readable`` is False when a
    line of it is neither a header field nor a continuation (REASON_HEADER_BLOCK_UNREADABLE),
    True when it only went past the cap (header-block-too-large).
    """
    guards = policy.guards
    verdicts = notification.receipt.verdicts
    if guards.null_sender:
        sender = _sender_guard(notification.mail.source)
        if sender:
            return sender
    if guards.spam_or_virus:
        if verdicts.virus == "FAIL":
            return REASON_VIRUS_VERDICT
        if verdicts.spam == "FAIL":
            return REASON_SPAM_VERDICT
    if guards.failed_authentication:
        for name in ("spf", "dkim", "dmarc"):
            if getattr(verdicts, name) == "FAIL":
                return f"{REASON_FAILED_AUTHENTICATION}:{name}"
    if guards.unauthenticated_sender and not sender_authenticated(notification, policy):
        return REASON_UNAUTHENTICATED_SENDER
    values = _guard_header_values(headers) if guards.reads_headers else {}
    if guards.auto_submitted:
        auto_reply = _auto_reply(values)
        if auto_reply:
            return auto_reply
    if guards.list_traffic and _list_traffic(values):
        return REASON_LIST_TRAFFIC
    if guards.reads_headers and not (header_block_complete and header_block_readable):
        if not header_block_readable:
            return REASON_HEADER_BLOCK_UNREADABLE
        return REASON_HEADER_BLOCK_TOO_LARGE
    return None


def sender_authenticated(notification: ReceivedNotification, policy: BouncePolicy) -> bool:
    """Whether a verdict named in ``policy.guards.sender_authentication`` is PASS.

    A bounce goes to the envelope sender, MAIL FROM (``mail.source``: "the envelope MAIL FROM
    address", SES developer guide, "Contents of notifications for Amazon SES email receiving",
    mail object; RFC 5321 4.5.5 and RFC 3464 send a DSN to that return path). The same page gives
    ``spfVerdict``, ``dkimVerdict`` and ``dmarcVerdict`` as objects that indicate "whether the
    ... check passed", each with a status of PASS, FAIL, GRAY or PROCESSING_FAILED, and present
    only when the receipt rule scans (``scan_enabled``); it does not say which domain each covers.
    From the protocols: an SPF PASS (RFC 7208) authenticates the MAIL FROM domain, the bounce's
    destination; a DKIM PASS (RFC 6376) the signing domain (``d=``), and a DMARC PASS (RFC 7489)
    the header From domain, aligned with SPF or DKIM: either may differ from the MAIL FROM
    domain, so accepting them lets a forger who signs with his own domain (or a From he controls)
    direct bounces at any MAIL FROM. GRAY (nothing published), PROCESSING_FAILED and a missing
    verdict authenticate nothing.
    """
    verdicts = notification.receipt.verdicts
    return any(
        getattr(verdicts, method) == "PASS" for method in policy.guards.sender_authentication
    )


def needs_full_headers(notification: ReceivedNotification, policy: BouncePolicy) -> bool:
    """Whether the adapter must read the header block from S3: SES truncated the headers and a
    header-reading guard (auto_submitted, list_traffic) is on."""
    return notification.mail.headers_truncated and policy.guards.reads_headers


def plan_message(
    notification: ReceivedNotification,
    policy: BouncePolicy,
    *,
    now: datetime,
    object_size: int | None = None,
    headers: "HeaderBlock | None" = None,
    owned: OwnedRecipients | None = None,
) -> MessagePlan:
    """Decide every recipient of ``notification``.

    A recipient that ``owned`` (the receipt rule's recipients) does not match is suppressed
    (``not-owned``) whatever the policy says; None checks no ownership (local use only).

    ``now`` must be time-zone aware (pass ``now + margin`` to keep a safety margin before the
    24-hour window closes). ``object_size`` is required when ``policy.needs_object_size``.
    ``headers`` (the header block read from the stored object when SES truncated the
    notification's) is checked by the header guards together with ``mail.headers``; a block that
    did not end within the cap, or has a line that is not a header field, is not bounced.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be time-zone aware, got {now.isoformat()}")
    if policy.needs_object_size and object_size is None:
        raise ValueError("object_size is required: the policy matches on message size")
    mail = notification.mail
    verdicts = notification.receipt.verdicts
    verdict_map = {name: getattr(verdicts, name) for name in VERDICT_NAMES}
    decisions: list[RecipientDecision] = []
    for recipient in notification.receipt.recipients:
        if owned is not None and not owned.owns(recipient):
            decisions.append(
                RecipientDecision(recipient, "suppress", REASON_NOT_OWNED, OWNERSHIP_RULE_LABEL)
            )
            continue
        found = policy.decide(
            recipient, sender=mail.source, object_size=object_size, verdicts=verdict_map
        )
        action = found.action
        rule_reason = (
            REASON_DEFAULT_RULE if found.rule == DEFAULT_RULE_LABEL else REASON_MATCHED_RULE
        )
        if isinstance(action, BounceAction):
            decisions.append(
                RecipientDecision(recipient, "bounce", rule_reason, found.rule, action)
            )
        elif action.type == "suppress":
            decisions.append(RecipientDecision(recipient, "suppress", action.reason, found.rule))
        else:
            decisions.append(RecipientDecision(recipient, "accept", rule_reason, found.rule))

    reason = REASON_POLICY
    outcome: Outcome
    if any(decision.action == "bounce" for decision in decisions):
        guard = guard_reason(
            notification,
            policy,
            mail.headers if headers is None else mail.headers + headers.fields,
            header_block_complete=headers is None or headers.complete,
            header_block_readable=headers is None or headers.unreadable_at is None,
        )
        if guard is not None:
            reason = guard
        elif now - mail.timestamp >= SEND_BOUNCE_WINDOW:
            reason = REASON_EXPIRED
        if reason != REASON_POLICY:
            decisions = [
                decision._replace(action="suppress", reason=reason, bounce=None)
                if decision.action == "bounce"
                else decision
                for decision in decisions
            ]
    if reason == REASON_EXPIRED:
        outcome = "expired"
    elif any(decision.action == "bounce" for decision in decisions):
        outcome = "bounce"
    elif any(decision.action == "suppress" for decision in decisions):
        outcome = "suppress"
    else:
        outcome = "accept"
    return MessagePlan(notification, tuple(decisions), outcome, reason, policy.message)
