"""The bounce policy model: ordered rules (first match wins per recipient) and a default.

``BouncePolicy`` holds validated rules with their recipient and sender patterns compiled into
``AddressIndex`` dicts, so ``decide`` costs the same for 10 patterns or 100,000. Reading, checking
and writing the policy's JSON form is ``core.policy_json``'s work.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from bounce_runtime.contract import REASON_POLICY
from bounce_runtime.core.addresses import (
    PATTERN_FORMS,
    AddressIndex,
    address_forms,
    compile_pattern,
)
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


_DEFAULT_ACTION: Final = BounceAction()
_DEFAULT_MESSAGE: Final = MessageSettings()
_DEFAULT_GUARDS: Final = Guards()


class BouncePolicy:
    """A validated policy with its recipient patterns compiled for constant-time lookup.

    Immutable; equal to another policy with the same rules, default, message settings and guards.
    """

    __slots__ = (
        "_recipient_index",
        "_sender_indexes",
        "_unconditional",
        "default",
        "fold_subaddress",
        "guards",
        "message",
        "rules",
    )
    rules: tuple[Rule, ...]
    default: Action
    fold_subaddress: bool
    message: MessageSettings
    guards: Guards
    _recipient_index: AddressIndex
    _sender_indexes: tuple[AddressIndex | None, ...]
    _unconditional: frozenset[int]

    def __init__(
        self,
        rules: tuple[Rule, ...] = (),
        default: Action = _DEFAULT_ACTION,
        fold_subaddress: bool = False,
        message: MessageSettings = _DEFAULT_MESSAGE,
        guards: Guards = _DEFAULT_GUARDS,
    ) -> None:
        recipient_index = AddressIndex()
        sender_indexes: list[AddressIndex | None] = []
        for index, rule in enumerate(rules):
            if rule.match.recipients is not None:
                index_patterns(
                    recipient_index,
                    rule.match.recipients,
                    index,
                    f"rules[{index}].match.recipients",
                )
            if rule.match.senders is None:
                sender_indexes.append(None)
            else:
                senders = AddressIndex()
                index_patterns(senders, rule.match.senders, 0, f"rules[{index}].match.senders")
                sender_indexes.append(senders)
        self._assign(
            rules, default, fold_subaddress, message, guards, recipient_index, sender_indexes
        )

    @classmethod
    def with_indexes(
        cls,
        rules: tuple[Rule, ...],
        default: Action,
        fold_subaddress: bool,
        message: MessageSettings,
        guards: Guards,
        *,
        recipient_index: AddressIndex,
        sender_indexes: Sequence[AddressIndex | None],
    ) -> "BouncePolicy":
        """A policy whose indexes were built from its patterns before (the compiled form's
        loader): no pattern is checked or indexed again. ``sender_indexes`` has one entry per
        rule, None where the rule has no sender condition."""
        if len(sender_indexes) != len(rules):
            raise ValueError(f"{len(sender_indexes)} sender indexes for {len(rules)} rules")
        policy = cls.__new__(cls)
        policy._assign(
            rules, default, fold_subaddress, message, guards, recipient_index, sender_indexes
        )
        return policy

    def _assign(
        self,
        rules: tuple[Rule, ...],
        default: Action,
        fold_subaddress: bool,
        message: MessageSettings,
        guards: Guards,
        recipient_index: AddressIndex,
        sender_indexes: Sequence[AddressIndex | None],
    ) -> None:
        assign = object.__setattr__  # this class's own __setattr__ refuses: it is immutable
        assign(self, "rules", rules)
        assign(self, "default", default)
        assign(self, "fold_subaddress", fold_subaddress)
        assign(self, "message", message)
        assign(self, "guards", guards)
        assign(self, "_recipient_index", recipient_index)
        assign(self, "_sender_indexes", tuple(sender_indexes))
        unconditional = (i for i, rule in enumerate(rules) if rule.match.recipients is None)
        assign(self, "_unconditional", frozenset(unconditional))

    @property
    def recipient_index(self) -> AddressIndex:
        """The rules' recipient patterns, labelled by rule index."""
        return self._recipient_index

    @property
    def sender_indexes(self) -> tuple[AddressIndex | None, ...]:
        """Per rule, its sender patterns (label 0), or None when it has no sender condition."""
        return self._sender_indexes

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"BouncePolicy is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"BouncePolicy is immutable: cannot delete {name!r}")

    def _settings(self) -> tuple[object, ...]:
        return (self.rules, self.default, self.fold_subaddress, self.message, self.guards)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BouncePolicy):
            return NotImplemented
        return self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    def __repr__(self) -> str:
        return (
            f"BouncePolicy(rules={self.rules!r}, default={self.default!r}, "
            f"fold_subaddress={self.fold_subaddress!r}, message={self.message!r}, "
            f"guards={self.guards!r})"
        )

    @property
    def needs_object_size(self) -> bool:
        """Whether a rule matches on message size, so the adapter must look up the object size."""
        return any(rule.match.needs_object_size for rule in self.rules)

    def decide(
        self,
        recipient: str,
        *,
        sender: str,
        object_size: int | None = None,
        verdicts: Mapping[str, str | None] | None = None,
    ) -> PolicyMatch:
        """The first rule that matches ``recipient`` (else the default).

        ``verdicts`` maps spam/virus/spf/dkim/dmarc to a status (None: not scanned, matches no
        verdict condition). A size condition never matches when ``object_size`` is None.
        """
        forms = address_forms(recipient, fold_subaddress=self.fold_subaddress)
        candidates = self._recipient_index.labels(forms) | self._unconditional
        sender_forms = address_forms(sender, fold_subaddress=self.fold_subaddress)
        for index in sorted(candidates):
            rule = self.rules[index]
            if self._conditions_hold(index, rule.match, sender_forms, object_size, verdicts or {}):
                return PolicyMatch(rule.action, rule.label)
        return PolicyMatch(self.default, DEFAULT_RULE_LABEL)

    def _conditions_hold(
        self,
        index: int,
        match: RuleMatch,
        sender_forms: tuple[str, ...],
        object_size: int | None,
        verdicts: Mapping[str, str | None],
    ) -> bool:
        senders = self._sender_indexes[index]
        if senders is not None and not (sender_forms[0] and senders.labels(sender_forms)):
            return False
        if match.needs_object_size:
            if object_size is None:
                return False
            if match.min_size_bytes is not None and object_size < match.min_size_bytes:
                return False
            if match.max_size_bytes is not None and object_size > match.max_size_bytes:
                return False
        return all(verdicts.get(name) in statuses for name, statuses in match.verdicts)

    @classmethod
    def from_dict(cls, data: object) -> "BouncePolicy":
        """Validate and compile a policy from its JSON form; raise ``PolicyError`` if invalid."""
        from bounce_runtime.core.policy_json import parse_policy

        return parse_policy(data)

    @classmethod
    def from_json(cls, text: str) -> "BouncePolicy":
        """``from_dict`` of a JSON document; invalid JSON is a ``PolicyError`` too."""
        from bounce_runtime.core.policy_json import parse_policy_json

        return parse_policy_json(text)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (every setting spelled out); ``from_dict`` reads it back."""
        from bounce_runtime.core.policy_json import policy_to_dict

        return policy_to_dict(self)

    def pattern_count(self) -> int:
        """How many recipient and sender patterns the rules hold."""
        return sum(
            len(rule.match.recipients or ()) + len(rule.match.senders or ()) for rule in self.rules
        )


def default_policy() -> BouncePolicy:
    """Every matched recipient bounces as DoesNotExist; all guards on."""
    return BouncePolicy()


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
