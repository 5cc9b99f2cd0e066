"""The bounce policy model: ordered rules (first match wins per recipient) and a default.

``BouncePolicy`` holds validated rules with their recipient and sender patterns compiled into
``AddressIndex`` dicts, so ``decide`` costs the same for 10 patterns or 100,000. Its parts are
``core.policy_parts``'s; reading, checking and writing its JSON form ``core.policy_form``'s
(``core.policy_json`` adds the compiled form). This module imports neither of the latter two at
import time, and ``core.policy_json`` imports it: no import cycle.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

from collections.abc import Mapping, Sequence
from typing import Any

from bounce_runtime.core.addresses import AddressIndex, address_forms
from bounce_runtime.core.policy_parts import DEFAULT_ACTION as _DEFAULT_ACTION
from bounce_runtime.core.policy_parts import DEFAULT_GUARDS as _DEFAULT_GUARDS
from bounce_runtime.core.policy_parts import DEFAULT_MESSAGE as _DEFAULT_MESSAGE
from bounce_runtime.core.policy_parts import (
    DEFAULT_RULE_LABEL as DEFAULT_RULE_LABEL,
)
from bounce_runtime.core.policy_parts import (
    DEFAULT_SENDER_AUTHENTICATION as DEFAULT_SENDER_AUTHENTICATION,
)
from bounce_runtime.core.policy_parts import (
    DEFAULT_SUPPRESS_REASON as DEFAULT_SUPPRESS_REASON,
)
from bounce_runtime.core.policy_parts import (
    GUARD_NAMES as GUARD_NAMES,
)
from bounce_runtime.core.policy_parts import (
    LAST_ATTEMPT_SOURCES as LAST_ATTEMPT_SOURCES,
)
from bounce_runtime.core.policy_parts import (
    SENDER_AUTHENTICATION_METHODS as SENDER_AUTHENTICATION_METHODS,
)
from bounce_runtime.core.policy_parts import (
    AcceptAction as AcceptAction,
)
from bounce_runtime.core.policy_parts import (
    Action as Action,
)
from bounce_runtime.core.policy_parts import (
    BounceAction as BounceAction,
)
from bounce_runtime.core.policy_parts import (
    DsnFields as DsnFields,
)
from bounce_runtime.core.policy_parts import (
    Guards as Guards,
)
from bounce_runtime.core.policy_parts import (
    MessageSettings as MessageSettings,
)
from bounce_runtime.core.policy_parts import (
    PolicyMatch as PolicyMatch,
)
from bounce_runtime.core.policy_parts import (
    Rule as Rule,
)
from bounce_runtime.core.policy_parts import (
    RuleMatch as RuleMatch,
)
from bounce_runtime.core.policy_parts import (
    SuppressAction as SuppressAction,
)
from bounce_runtime.core.policy_parts import (
    index_patterns as index_patterns,
)


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
        from bounce_runtime.core.policy_form import parse_settings

        return cls(*parse_settings(data))

    @classmethod
    def from_json(cls, text: str) -> "BouncePolicy":
        """``from_dict`` of a JSON document; invalid JSON is a ``PolicyError`` too."""
        from bounce_runtime.core.policy_form import load_json, parse_settings

        return cls(*parse_settings(load_json(text)))

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (every setting spelled out); ``from_dict`` reads it back."""
        from bounce_runtime.core.policy_writer import policy_to_dict

        return policy_to_dict(self)

    def pattern_count(self) -> int:
        """How many recipient and sender patterns the rules hold."""
        return sum(
            len(rule.match.recipients or ()) + len(rule.match.senders or ()) for rule in self.rules
        )


def default_policy() -> BouncePolicy:
    """Every matched recipient bounces as DoesNotExist; all guards on."""
    return BouncePolicy()
