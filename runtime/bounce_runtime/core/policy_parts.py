"""The parts of a bounce policy: its rules, actions, message settings and guards (immutable
values), and the names and defaults they use. ``core.policy`` builds the policy from them;
``core.policy_form`` reads and writes their JSON form.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

from bounce_runtime.contract import REASON_POLICY
from bounce_runtime.core.addresses import PATTERN_FORMS, AddressIndex, compile_pattern
from bounce_runtime.core.guards import GUARD_NAMES as _GUARD_NAMES
from bounce_runtime.core.guards import HEADER_GUARD_NAMES
from bounce_runtime.errors import PolicyError

if TYPE_CHECKING:
    from bounce_runtime.core.vocabulary import BounceTypeDefaults

GUARD_NAMES: Final = _GUARD_NAMES  # from the one table of guards (core.guards)
# The verdicts that may authenticate the envelope sender (``Guards.sender_authentication``).
SENDER_AUTHENTICATION_METHODS: Final = ("spf", "dkim", "dmarc")
DEFAULT_SENDER_AUTHENTICATION: Final = ("spf",)
LAST_ATTEMPT_SOURCES: Final = ("mail", "receipt")
DEFAULT_SUPPRESS_REASON: Final = REASON_POLICY
DEFAULT_RULE_LABEL: Final = "default"


class DsnFields(NamedTuple):
    """Explicit RecipientDsnFields; unset fields come from the bounce type's defaults."""

    action: str | None = None
    status: str | None = None
    diagnostic_code: str | None = None
    remote_mta: str | None = None
    last_attempt_date: str | None = None
    extension_fields: tuple[tuple[str, str], ...] = ()


class BounceAction(NamedTuple):
    """Bounce the recipient with ``bounce_type`` (or explicit DSN fields when ``dsn`` is set)."""

    bounce_type: str = "DoesNotExist"
    dsn: DsnFields | None = None
    type: Literal["bounce"] = "bounce"

    @property
    def defaults(self) -> "BounceTypeDefaults":
        """The status, SMTP code and DSN action of ``bounce_type`` (the DSN vocabulary is
        imported when a bounce is built, not with the policy)."""
        from bounce_runtime.core.vocabulary import BOUNCE_TYPE_DEFAULTS

        return BOUNCE_TYPE_DEFAULTS[self.bounce_type]

    @property
    def dsn_action(self) -> str:
        """The DSN Action this bounce reports."""
        return (self.dsn.action if self.dsn else None) or self.defaults.action

    @property
    def dsn_status(self) -> str:
        """The RFC 3463 status this bounce reports."""
        return (self.dsn.status if self.dsn else None) or self.defaults.status


class AcceptAction(NamedTuple):
    """Do not bounce (the mail is wanted)."""

    type: Literal["accept"] = "accept"


class SuppressAction(NamedTuple):
    """Do not bounce; count the recipient as suppressed with ``reason``."""

    reason: str = DEFAULT_SUPPRESS_REASON
    type: Literal["suppress"] = "suppress"


Action = BounceAction | AcceptAction | SuppressAction


class RuleMatch(NamedTuple):
    """Conditions of a rule; all that are set must hold. Nothing set matches every recipient."""

    recipients: Sequence[str] | None = None
    senders: Sequence[str] | None = None
    min_size_bytes: int | None = None
    max_size_bytes: int | None = None
    verdicts: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def needs_object_size(self) -> bool:
        """Whether the rule matches on the stored message's size."""
        return self.min_size_bytes is not None or self.max_size_bytes is not None


class Rule(NamedTuple):
    """One policy rule; ``label`` is its name, or ``rules[i]`` when it has none."""

    match: RuleMatch
    action: Action
    name: str | None = None
    label: str = ""


class MessageSettings(NamedTuple):
    """Message-level DSN settings: explanation text, Reporting-MTA and extension fields."""

    explanation: str | None = None
    reporting_mta: str | None = None
    extension_fields: tuple[tuple[str, str], ...] = ()


class Guards(NamedTuple):
    """Anti-backscatter guards; each on unless turned off. The fields are the names of
    ``core.guards.GUARDS``, in its order (a test checks it), then ``sender_authentication``.

    ``unauthenticated_sender`` bounces only when a verdict named in ``sender_authentication``
    (spf, dkim, dmarc) is PASS: by default SPF, the one that authenticates the envelope sender's
    domain, which is where the bounce goes.
    """

    null_sender: bool = True
    auto_submitted: bool = True
    list_traffic: bool = True
    failed_authentication: bool = True
    spam_or_virus: bool = True
    unauthenticated_sender: bool = True
    sender_authentication: tuple[str, ...] = DEFAULT_SENDER_AUTHENTICATION

    @property
    def reads_headers(self) -> bool:
        """Whether a guard that looks at header fields is on (and so needs the full header
        block); which guards read headers is ``core.guards.GUARDS``'s to say."""
        return any(getattr(self, name) for name in HEADER_GUARD_NAMES)


class PolicyMatch(NamedTuple):
    """What the policy says for one recipient, and which rule said it."""

    action: Action
    rule: str


DEFAULT_ACTION: Final = BounceAction()
DEFAULT_MESSAGE: Final = MessageSettings()
DEFAULT_GUARDS: Final = Guards()


def index_patterns(index: AddressIndex, patterns: Iterable[str], label: int, path: str) -> None:
    """Add every pattern to ``index`` under ``label``; ``PolicyError`` (at ``path``) if one is
    not a pattern."""
    for position, pattern in enumerate(patterns):
        compiled = compile_pattern(pattern)
        if compiled is None:
            raise PolicyError.at(
                f"{path}[{position}]", pattern, f"is not a pattern: use {PATTERN_FORMS}"
            )
        index.add(*compiled, label)
