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
from typing import Literal, NamedTuple

from bounce_runtime.contract import (
    REASON_AUTO_SUBMITTED,
    REASON_DAEMON_SENDER,
    REASON_DEFAULT_RULE,
    REASON_EXPIRED,
    REASON_FAILED_AUTHENTICATION,
    REASON_LIST_TRAFFIC,
    REASON_MATCHED_RULE,
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

SEND_BOUNCE_WINDOW = timedelta(seconds=SEND_BOUNCE_WINDOW_S)
# Local parts of senders that are mail systems, not people (RFC 3834 section 2, RFC 5321 4.5.5).
DAEMON_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"}
)
LIST_PRECEDENCE = frozenset({"bulk", "list", "junk"})
LIST_HEADERS = frozenset({"list-id", "list-unsubscribe"})
# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
_COMMENT = r"\([^()]*\)"

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


def _header_values(headers: Iterable[Header], name: str) -> list[str]:
    return [header.value.strip() for header in headers if header.name.lower() == name]


def _sender_guard(source: str) -> str | None:
    address = source.strip()
    if address in ("", "<>"):
        return REASON_NULL_SENDER
    local = address.strip("<>").rpartition("@")[0] or address.strip("<>")
    if local.lower() in DAEMON_LOCAL_PARTS:
        return REASON_DAEMON_SENDER
    return None


def _keyword(value: str) -> str:
    """A header's keyword, lowercased, without RFC 5322 comments and parameters."""
    return re.sub(_COMMENT, " ", value).split(";", 1)[0].strip().lower()


def _auto_submitted(headers: tuple[Header, ...]) -> bool:
    """RFC 3834: ``Auto-Submitted`` with any keyword but ``no`` (comments and parameters
    ignored)."""
    return any(_keyword(value) != "no" for value in _header_values(headers, "auto-submitted"))


def _list_traffic(headers: tuple[Header, ...]) -> bool:
    """``Precedence: bulk|list|junk`` (comments and parameters ignored), or a list header."""
    if any(_keyword(value) in LIST_PRECEDENCE for value in _header_values(headers, "precedence")):
        return True
    return any(header.name.lower() in LIST_HEADERS for header in headers)


def guard_reason(
    notification: ReceivedNotification, policy: BouncePolicy, headers: tuple[Header, ...]
) -> str | None:
    """The code of the first guard that forbids bouncing this message, or None.

    Checked in order: null-sender, daemon-sender, virus-verdict, spam-verdict,
    failed-authentication:spf|dkim|dmarc, unauthenticated-sender, auto-submitted, list-traffic.
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
    if guards.auto_submitted and _auto_submitted(headers):
        return REASON_AUTO_SUBMITTED
    if guards.list_traffic and _list_traffic(headers):
        return REASON_LIST_TRAFFIC
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
    headers: tuple[Header, ...] | None = None,
    owned: OwnedRecipients | None = None,
) -> MessagePlan:
    """Decide every recipient of ``notification``.

    A recipient that ``owned`` (the receipt rule's recipients) does not match is suppressed
    (``not-owned``) whatever the policy says; None checks no ownership (local use only).

    ``now`` must be time-zone aware (pass ``now + margin`` to keep a safety margin before the
    24-hour window closes). ``object_size`` is required when ``policy.needs_object_size``.
    ``headers`` (the full header block read from the object) is checked by the header guards
    together with ``mail.headers``.
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
            notification, policy, mail.headers if headers is None else mail.headers + headers
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
