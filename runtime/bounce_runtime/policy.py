"""The declarative bounce policy: ordered rules (first match wins per recipient) and a default.

The policy is plain JSON (see the README for the schema). ``BouncePolicy.from_dict`` checks all of
it, including the DSN limits SES documents, and raises ``PolicyError`` naming the field path, the
value and what is allowed, so a bad policy fails when the construct synthesizes, not at run time.

Recipient and sender patterns are compiled into dicts: exact addresses, domains and wildcard
subdomains are looked up by key (a walk over the address's domain labels), so evaluation costs the
same for 10 patterns or 100,000.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from bounce_runtime.errors import PolicyError, short_repr
from bounce_runtime.notification import VERDICT_NAMES, VERDICT_STATUSES

POLICY_VERSION: Final = 1
BOUNCE_TYPES: Final = (
    "DoesNotExist",
    "MessageTooLarge",
    "ExceededQuota",
    "ContentRejected",
    "Undefined",
    "TemporaryFailure",
)
DSN_ACTIONS: Final = ("failed", "delayed", "delivered", "relayed", "expanded")
GUARD_NAMES: Final = (
    "null_sender",
    "auto_submitted",
    "list_traffic",
    "failed_authentication",
    "spam_or_virus",
)
LAST_ATTEMPT_SOURCES: Final = ("mail", "receipt")
EXTENSION_VALUE_MAX_CHARS: Final = 2048
DEFAULT_SUPPRESS_REASON: Final = "policy"
DEFAULT_RULE_LABEL: Final = "default"

# Regular expressions are kept as pattern strings and compiled on first use by `_regex`, so
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
_REASON_CODE = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_REASON_MAX_CHARS = 64
_RULE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_DOMAIN_LABEL = r"[^\s@*<>()\[\]\\\",;:.\x00-\x1f\x7f]+"
_DOMAIN = rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*"
_LOCAL_PART = r"[^\s@*<>()\[\]\\\",;:\x00-\x1f\x7f]+"
_DOMAIN_MAX_CHARS = 253
_CONTROL_EXCEPT_NEWLINE_TAB = r"[\x00-\x08\x0b-\x1f\x7f]"
_CR_LF = r"[\r\n]"
PATTERN_FORMS: Final = "user@example.com, example.com, *.example.com or *@example.com"


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
def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on its first use (and only then)."""
    return re.compile(pattern)


# Checks shared with dsn.validate_send_bounce_request: each returns what is wrong, or None.


def status_problem(status: str) -> str | None:
    """Why ``status`` is not an RFC 3463 status code, or None."""
    if _regex(_STATUS).fullmatch(status):
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
    if len(mta) <= _MTA_MAX_CHARS and _regex(_MTA).fullmatch(mta):
        return None
    return "is not an MTA name of the form 'dns; mail.example.com'"


def diagnostic_problem(code: str) -> str | None:
    """Why ``code`` is not a one-line RFC 3464 Diagnostic-Code ``smtp; 550 ...``, or None."""
    if _regex(_CR_LF).search(code) or _regex(_CONTROL_EXCEPT_NEWLINE_TAB).search(code):
        return "must not contain CR, LF or other control characters"
    if _regex(_DIAGNOSTIC).fullmatch(code):
        return None
    return "is not a diagnostic code of the form 'smtp; 550 5.1.1 text'"


def explanation_problem(text: str) -> str | None:
    """Why ``text`` cannot be a bounce's Explanation (control characters but newline, tab)."""
    if _regex(_CONTROL_EXCEPT_NEWLINE_TAB).search(text):
        return "contains control characters; only newline and tab are allowed"
    return None


def extension_name_problem(name: str) -> str | None:
    """Why ``name`` is not a DSN extension field name (1-50 of A-Z, a-z, 0-9, -), or None."""
    if _regex(_EXTENSION_NAME).fullmatch(name):
        return None
    return "is not an extension field name: 1 to 50 characters of A-Z, a-z, 0-9 and -"


def extension_value_problem(value: str) -> str | None:
    """Why ``value`` is not a DSN extension field value (<= 2048 characters, no CR/LF), or None."""
    if len(value) > EXTENSION_VALUE_MAX_CHARS:
        return f"is {len(value)} characters long: at most {EXTENSION_VALUE_MAX_CHARS} are allowed"
    if _regex(_CR_LF).search(value):
        return "contains CR or LF, which extension field values must not"
    return None


def _error(path: str, value: object, problem: str) -> PolicyError:
    return PolicyError(f"{path}: {short_repr(value)} {problem}")


# Address patterns ---------------------------------------------------------------------------

PatternKind = Literal["address", "domain", "subdomains"]


def _valid_domain(domain: str) -> bool:
    return len(domain) <= _DOMAIN_MAX_CHARS and _regex(_DOMAIN).fullmatch(domain) is not None


def compile_pattern(pattern: str) -> tuple[PatternKind, str] | None:
    """``(kind, lowercase key)`` for an address pattern, or None when it is not one.

    ``user@example.com`` -> address; ``example.com`` and ``*@example.com`` -> domain (that domain
    only); ``*.example.com`` and ``*@*.example.com`` -> subdomains (any depth, not the domain).
    """
    text = pattern.lower()
    if "@" in text:
        local, _, domain = text.rpartition("@")
        if local == "*":
            return compile_pattern(domain) if "@" not in domain else None
        if not _regex(_LOCAL_PART).fullmatch(local) or not _valid_domain(domain):
            return None
        return "address", f"{local}@{domain}"
    if text.startswith("*."):
        return ("subdomains", text[2:]) if _valid_domain(text[2:]) else None
    return ("domain", text) if _valid_domain(text) else None


def _parent_domains(domain: str) -> Iterator[str]:
    """Proper suffixes of ``domain``: a.b.example.com -> b.example.com, example.com, com."""
    start = domain.find(".")
    while start != -1:
        yield domain[start + 1 :]
        start = domain.find(".", start + 1)


def address_forms(address: str, *, fold_subaddress: bool) -> tuple[str, ...]:
    """The lowercase forms an address is looked up by: itself, then ``user@`` for ``user+tag@``."""
    lowered = address.lower()
    if not fold_subaddress:
        return (lowered,)
    local, at, domain = lowered.rpartition("@")
    base = local.split("+", 1)[0]
    if at and base and base != local:
        return (lowered, f"{base}@{domain}")
    return (lowered,)


class AddressIndex:
    """Address patterns compiled into dicts; maps each matching address to labels (rule indices)."""

    def __init__(self) -> None:
        self._exact: dict[str, set[int]] = {}
        self._domains: dict[str, set[int]] = {}
        self._subdomains: dict[str, set[int]] = {}

    def add(self, kind: PatternKind, key: str, label: int) -> None:
        """Register a compiled pattern under ``label``."""
        table = {"address": self._exact, "domain": self._domains, "subdomains": self._subdomains}
        table[kind].setdefault(key, set()).add(label)

    def labels(self, forms: tuple[str, ...]) -> set[int]:
        """Labels of every pattern matching the lowercase address ``forms`` (same domain).

        Costs one dict lookup per form plus one per label of the domain, whatever the size.
        """
        found: set[int] = set()
        for form in forms:
            found.update(self._exact.get(form, ()))
        domain = forms[0].rpartition("@")[2] if forms else ""
        if domain:
            found.update(self._domains.get(domain, ()))
            for parent in _parent_domains(domain):
                found.update(self._subdomains.get(parent, ()))
        return found


# Policy model -------------------------------------------------------------------------------


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
    def defaults(self) -> BounceTypeDefaults:
        """The status, SMTP code and DSN action of ``bounce_type``."""
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

    recipients: tuple[str, ...] | None = None
    senders: tuple[str, ...] | None = None
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
    """Anti-backscatter guards; each on unless turned off."""

    null_sender: bool = True
    auto_submitted: bool = True
    list_traffic: bool = True
    failed_authentication: bool = True
    spam_or_virus: bool = True

    @property
    def reads_headers(self) -> bool:
        """Whether a guard looks at header fields (and so needs the full header block)."""
        return self.auto_submitted or self.list_traffic


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
        unconditional: set[int] = set()
        sender_indexes: list[AddressIndex | None] = []
        for index, rule in enumerate(rules):
            if rule.match.recipients is None:
                unconditional.add(index)
            else:
                _index_patterns(
                    recipient_index,
                    rule.match.recipients,
                    index,
                    f"rules[{index}].match.recipients",
                )
            if rule.match.senders is None:
                sender_indexes.append(None)
            else:
                senders = AddressIndex()
                _index_patterns(senders, rule.match.senders, 0, f"rules[{index}].match.senders")
                sender_indexes.append(senders)
        assign = object.__setattr__  # this class's own __setattr__ refuses: it is immutable
        assign(self, "rules", rules)
        assign(self, "default", default)
        assign(self, "fold_subaddress", fold_subaddress)
        assign(self, "message", message)
        assign(self, "guards", guards)
        assign(self, "_recipient_index", recipient_index)
        assign(self, "_sender_indexes", tuple(sender_indexes))
        assign(self, "_unconditional", frozenset(unconditional))

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
        return _parse_policy(data)

    @classmethod
    def from_json(cls, text: str) -> "BouncePolicy":
        """``from_dict`` of a JSON document; invalid JSON is a ``PolicyError`` too."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise PolicyError(f"policy: not valid JSON ({error})") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (every setting spelled out); ``from_dict`` reads it back."""
        return {
            "version": POLICY_VERSION,
            "rules": [_rule_to_dict(rule) for rule in self.rules],
            "default": _action_to_dict(self.default),
            "fold_subaddress": self.fold_subaddress,
            "message": _message_to_dict(self.message),
            "guards": {name: getattr(self.guards, name) for name in GUARD_NAMES},
        }

    def pattern_count(self) -> int:
        """How many recipient and sender patterns the rules hold."""
        return sum(
            len(rule.match.recipients or ()) + len(rule.match.senders or ()) for rule in self.rules
        )


def default_policy() -> BouncePolicy:
    """Every matched recipient bounces as DoesNotExist; all guards on."""
    return BouncePolicy()


# Parsing ------------------------------------------------------------------------------------


def _index_patterns(index: AddressIndex, patterns: Iterable[str], label: int, path: str) -> None:
    for position, pattern in enumerate(patterns):
        compiled = compile_pattern(pattern)
        if compiled is None:
            raise _error(f"{path}[{position}]", pattern, f"is not a pattern: use {PATTERN_FORMS}")
        index.add(*compiled, label)


def _object(value: object, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    allowed = tuple(allowed)
    if not isinstance(value, dict):
        raise _error(path, value, "is not an object")
    for key in value:
        if key not in allowed:
            raise _error(path or "policy", key, f"is not a field; allowed: {', '.join(allowed)}")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _bool(data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _error(_join(path, key), value, "is not true or false")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _error(path, value, "is not a non-empty string")
    return value


def _one_of(value: object, path: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise _error(path, value, f"is not one of {', '.join(allowed)}")
    return value


def _checked(value: object, path: str, problem: Callable[[str], str | None]) -> str:
    text = _text(value, path)
    found = problem(text)
    if found:
        raise _error(path, text, found)
    return text


def _extension_fields(value: object, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise _error(path, value, "is not an object of extension field names to values")
    fields = []
    for name, text in value.items():
        problem = extension_name_problem(name)
        if problem:
            raise _error(f"{path}", name, problem)
        if not isinstance(text, str):
            raise _error(f"{path}.{name}", text, "is not a string")
        problem = extension_value_problem(text)
        if problem:
            raise _error(f"{path}.{name}", text, problem)
        fields.append((name, text))
    return tuple(fields)


def _patterns(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _error(path, value, f"is not a non-empty list of patterns ({PATTERN_FORMS})")
    for position, pattern in enumerate(value):
        if not isinstance(pattern, str) or compile_pattern(pattern) is None:
            raise _error(f"{path}[{position}]", pattern, f"is not a pattern: use {PATTERN_FORMS}")
    return tuple(value)


def _size(data: Mapping[str, Any], key: str, path: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _error(_join(path, key), value, "is not a whole number of bytes >= 0")
    return value


def _verdict_conditions(value: object, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    conditions = _object(value, path, VERDICT_NAMES)
    parsed = []
    for name in VERDICT_NAMES:
        if name not in conditions:
            continue
        statuses = conditions[name]
        if not isinstance(statuses, list) or not statuses:
            raise _error(
                f"{path}.{name}",
                statuses,
                f"is not a non-empty list of {', '.join(VERDICT_STATUSES)}",
            )
        for position, status in enumerate(statuses):
            _one_of(status, f"{path}.{name}[{position}]", VERDICT_STATUSES)
        parsed.append((name, tuple(statuses)))
    return tuple(parsed)


def _rule_match(value: object, path: str) -> RuleMatch:
    data = _object(
        value, path, ("recipients", "senders", "min_size_bytes", "max_size_bytes", "verdicts")
    )
    recipients = data.get("recipients")
    senders = data.get("senders")
    match = RuleMatch(
        recipients=None if recipients is None else _patterns(recipients, f"{path}.recipients"),
        senders=None if senders is None else _patterns(senders, f"{path}.senders"),
        min_size_bytes=_size(data, "min_size_bytes", path),
        max_size_bytes=_size(data, "max_size_bytes", path),
        verdicts=(
            _verdict_conditions(data["verdicts"], f"{path}.verdicts")
            if data.get("verdicts") is not None
            else ()
        ),
    )
    if (
        match.min_size_bytes is not None
        and match.max_size_bytes is not None
        and match.min_size_bytes > match.max_size_bytes
    ):
        raise _error(
            f"{path}.max_size_bytes",
            match.max_size_bytes,
            f"is less than min_size_bytes ({match.min_size_bytes})",
        )
    return match


def _dsn_fields(value: object, path: str, bounce_type: str) -> DsnFields:
    data = _object(
        value,
        path,
        (
            "action",
            "status",
            "diagnostic_code",
            "remote_mta",
            "last_attempt_date",
            "extension_fields",
        ),
    )

    def optional(key: str, check: Any) -> str | None:
        return None if data.get(key) is None else check(data[key], f"{path}.{key}")

    dsn = DsnFields(
        action=optional("action", lambda v, p: _one_of(v, p, DSN_ACTIONS)),
        status=optional("status", lambda v, p: _checked(v, p, status_problem)),
        diagnostic_code=optional(
            "diagnostic_code", lambda v, p: _checked(v, p, diagnostic_problem)
        ),
        remote_mta=optional("remote_mta", lambda v, p: _checked(v, p, mta_problem)),
        last_attempt_date=optional(
            "last_attempt_date", lambda v, p: _one_of(v, p, LAST_ATTEMPT_SOURCES)
        ),
        extension_fields=(
            _extension_fields(data["extension_fields"], f"{path}.extension_fields")
            if data.get("extension_fields") is not None
            else ()
        ),
    )
    bounce = BounceAction(bounce_type, dsn)
    problem = status_action_problem(bounce.dsn_status, bounce.dsn_action)
    if problem and dsn.status:
        raise _error(f"{path}.status", dsn.status, problem)
    if problem:
        raise _error(
            f"{path}.action",
            dsn.action,
            f"does not fit status {bounce.dsn_status!r} of bounce type {bounce_type}: "
            "set dsn.status too",
        )
    return dsn


def _action(value: object, path: str) -> Action:
    if not isinstance(value, dict):
        raise _error(path, value, "is not an object")
    action_type = _one_of(value.get("type"), f"{path}.type", ("bounce", "accept", "suppress"))
    if action_type == "accept":
        _object(value, path, ("type",))
        return AcceptAction()
    if action_type == "suppress":
        data = _object(value, path, ("type", "reason"))
        reason = data.get("reason", DEFAULT_SUPPRESS_REASON)
        if (
            not isinstance(reason, str)
            or len(reason) > _REASON_MAX_CHARS
            or not _regex(_REASON_CODE).fullmatch(reason)
        ):
            raise _error(
                f"{path}.reason",
                reason,
                f"is not a reason code: 1 to {_REASON_MAX_CHARS} characters of a-z, 0-9 and "
                "single dashes, such as legal-hold",
            )
        return SuppressAction(reason)
    data = _object(value, path, ("type", "bounce_type", "dsn"))
    bounce_type = _one_of(
        data.get("bounce_type", "DoesNotExist"), f"{path}.bounce_type", BOUNCE_TYPES
    )
    dsn = (
        _dsn_fields(data["dsn"], f"{path}.dsn", bounce_type)
        if data.get("dsn") is not None
        else None
    )
    return BounceAction(bounce_type, dsn)


def _rules(value: object) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        raise _error("rules", value, "is not a list of rules")
    rules = []
    seen_names: set[str] = set()
    for index, item in enumerate(value):
        path = f"rules[{index}]"
        data = _object(item, path, ("name", "match", "action"))
        name = data.get("name")
        if name is not None:
            if not isinstance(name, str) or not _regex(_RULE_NAME).fullmatch(name):
                raise _error(
                    f"{path}.name",
                    name,
                    "is not a rule name: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', "
                    "starting with a letter or digit",
                )
            if name in seen_names:
                raise _error(f"{path}.name", name, "is already the name of an earlier rule")
            seen_names.add(name)
        if "action" not in data:
            raise PolicyError(f"{path}.action: missing; every rule needs an action")
        rules.append(
            Rule(
                match=_rule_match(data.get("match", {}), f"{path}.match"),
                action=_action(data["action"], f"{path}.action"),
                name=name,
                label=name or path,
            )
        )
    return tuple(rules)


def _message(value: object) -> MessageSettings:
    data = _object(value, "message", ("explanation", "reporting_mta", "extension_fields"))
    explanation = data.get("explanation")
    if explanation is not None:
        explanation = _text(explanation, "message.explanation")
        if (problem := explanation_problem(explanation)) is not None:
            raise _error("message.explanation", explanation, problem)
    return MessageSettings(
        explanation=explanation,
        reporting_mta=(
            _checked(data["reporting_mta"], "message.reporting_mta", mta_problem)
            if data.get("reporting_mta") is not None
            else None
        ),
        extension_fields=(
            _extension_fields(data["extension_fields"], "message.extension_fields")
            if data.get("extension_fields") is not None
            else ()
        ),
    )


def _guards(value: object) -> Guards:
    data = _object(value, "guards", GUARD_NAMES)
    return Guards(**{name: _bool(data, name, "guards", True) for name in GUARD_NAMES})


def _parse_policy(value: object) -> BouncePolicy:
    if not isinstance(value, dict):
        raise _error("policy", value, "is not an object")
    data = _object(
        value, "", ("version", "rules", "default", "fold_subaddress", "message", "guards")
    )
    version = data.get("version", POLICY_VERSION)
    if version != POLICY_VERSION or isinstance(version, bool):
        raise _error("version", version, f"is not a supported policy version ({POLICY_VERSION})")
    return BouncePolicy(
        rules=_rules(data.get("rules", [])),
        default=_action(data["default"], "default") if "default" in data else BounceAction(),
        fold_subaddress=_bool(data, "fold_subaddress", "", False),
        message=_message(data.get("message", {})),
        guards=_guards(data.get("guards", {})),
    )


# Serialising --------------------------------------------------------------------------------


def _action_to_dict(action: Action) -> dict[str, Any]:
    if isinstance(action, SuppressAction):
        return {"type": "suppress", "reason": action.reason}
    if isinstance(action, AcceptAction):
        return {"type": "accept"}
    result: dict[str, Any] = {"type": "bounce", "bounce_type": action.bounce_type}
    if action.dsn is not None:
        dsn = {
            key: getattr(action.dsn, key)
            for key in ("action", "status", "diagnostic_code", "remote_mta", "last_attempt_date")
            if getattr(action.dsn, key) is not None
        }
        if action.dsn.extension_fields:
            dsn["extension_fields"] = dict(action.dsn.extension_fields)
        result["dsn"] = dsn
    return result


def _rule_to_dict(rule: Rule) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if rule.match.recipients is not None:
        match["recipients"] = list(rule.match.recipients)
    if rule.match.senders is not None:
        match["senders"] = list(rule.match.senders)
    if rule.match.min_size_bytes is not None:
        match["min_size_bytes"] = rule.match.min_size_bytes
    if rule.match.max_size_bytes is not None:
        match["max_size_bytes"] = rule.match.max_size_bytes
    if rule.match.verdicts:
        match["verdicts"] = {name: list(statuses) for name, statuses in rule.match.verdicts}
    result: dict[str, Any] = {"match": match, "action": _action_to_dict(rule.action)}
    if rule.name is not None:
        result = {"name": rule.name, **result}
    return result


def _message_to_dict(message: MessageSettings) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if message.explanation is not None:
        result["explanation"] = message.explanation
    if message.reporting_mta is not None:
        result["reporting_mta"] = message.reporting_mta
    if message.extension_fields:
        result["extension_fields"] = dict(message.extension_fields)
    return result
