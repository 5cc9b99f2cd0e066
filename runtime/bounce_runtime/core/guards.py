"""The anti-backscatter guards, declared once: each guard's policy name, the reasons it
suppresses with, whether it reads header fields, and its entries in the policy reference
(docs/policy.md, "Guards"). ``policy.GUARD_NAMES``, the ``Guards`` fields and
``Guards.reads_headers`` come from this table; ``tests/runtime/core/test_guards.py`` and
``tests/docs`` fail when a guard is missing from any of them.

Pure: standard library only.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

from typing import Final, NamedTuple

from bounce_runtime.contract import (
    REASON_AUTO_SUBMITTED,
    REASON_DAEMON_SENDER,
    REASON_FAILED_AUTHENTICATION,
    REASON_HEADER_BLOCK_TOO_LARGE,
    REASON_HEADER_BLOCK_UNREADABLE,
    REASON_LIST_TRAFFIC,
    REASON_NO_NDR_REQUESTED,
    REASON_NULL_SENDER,
    REASON_SPAM_VERDICT,
    REASON_UNAUTHENTICATED_SENDER,
    REASON_VIRUS_VERDICT,
)


class GuardDoc(NamedTuple):
    """One row of the policy reference's guards table: when the guard fires, and the reason
    column as shown (reasons in backticks)."""

    fires_when: str
    reason_text: str


class GuardSpec(NamedTuple):
    """One guard: its name in the policy (``guards.<name>``), the reasons it suppresses with,
    whether it reads header fields (and so needs the full header block), its docs rows."""

    name: str
    reasons: tuple[str, ...]
    reads_headers: bool
    docs: tuple[GuardDoc, ...]


# In the order of the policy's guards (its JSON form and the ``Guards`` fields); the policy
# reference lists them in the order ``decision`` checks them.
GUARDS: Final = (
    GuardSpec(
        "null_sender",
        (REASON_NULL_SENDER, REASON_DAEMON_SENDER),
        False,
        (
            GuardDoc(
                "the envelope sender is empty or `<>` (RFC 5321 4.5.5)", f"`{REASON_NULL_SENDER}`"
            ),
            GuardDoc(
                "the sender's local part is mailer-daemon, mailer_daemon, mailerdaemon, "
                "mail-daemon or postmaster",
                f"`{REASON_DAEMON_SENDER}`",
            ),
        ),
    ),
    GuardSpec(
        "auto_submitted",
        (REASON_AUTO_SUBMITTED, REASON_NO_NDR_REQUESTED),
        True,
        (
            GuardDoc(
                "an automatic reply: `Auto-Submitted` (RFC 3834), `X-Autoreply` or "
                "`X-Autorespond` with any keyword but `no`, or `Precedence: auto_reply`",
                f"`{REASON_AUTO_SUBMITTED}`",
            ),
            GuardDoc(
                "the sender asked for no non-delivery report: `X-Auto-Response-Suppress` naming "
                "`All`, `DR` or `NDR`",
                f"`{REASON_NO_NDR_REQUESTED}`",
            ),
        ),
    ),
    GuardSpec(
        "list_traffic",
        (REASON_LIST_TRAFFIC,),
        True,
        (
            GuardDoc(
                "`Precedence: bulk, list or junk`, or a `List-Id` or `List-Unsubscribe` header",
                f"`{REASON_LIST_TRAFFIC}`",
            ),
        ),
    ),
    GuardSpec(
        "failed_authentication",
        (REASON_FAILED_AUTHENTICATION,),
        False,
        (
            GuardDoc(
                "SPF / DKIM / DMARC verdict FAIL (the sender is likely forged)",
                f"`{REASON_FAILED_AUTHENTICATION}:spf` / `:dkim` / `:dmarc`",
            ),
        ),
    ),
    GuardSpec(
        "spam_or_virus",
        (REASON_VIRUS_VERDICT, REASON_SPAM_VERDICT),
        False,
        (
            GuardDoc(
                "virus / spam verdict FAIL",
                f"`{REASON_VIRUS_VERDICT}` / `{REASON_SPAM_VERDICT}`",
            ),
        ),
    ),
    GuardSpec(
        "unauthenticated_sender",
        (REASON_UNAUTHENTICATED_SENDER,),
        False,
        (
            GuardDoc(
                'no verdict named in `guards.sender_authentication` (default `["spf"]`) is '
                "PASS: GRAY, PROCESSING_FAILED, or no scan at all",
                f"`{REASON_UNAUTHENTICATED_SENDER}`",
            ),
        ),
    ),
)
GUARD_NAMES: Final = tuple(guard.name for guard in GUARDS)
HEADER_GUARD_NAMES: Final = tuple(guard.name for guard in GUARDS if guard.reads_headers)
# Any header guard: SES truncated the headers and the stored block cannot be checked whole.
HEADER_BLOCK_DOCS: Final = (
    GuardDoc(
        "SES truncated the headers and the stored header block does not end within 1 MiB",
        f"`{REASON_HEADER_BLOCK_TOO_LARGE}`",
    ),
    GuardDoc(
        "SES truncated the headers and a line of the stored header block is neither a header "
        "field nor a folded continuation",
        f"`{REASON_HEADER_BLOCK_UNREADABLE}`",
    ),
)
