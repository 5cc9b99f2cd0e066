"""The policy as written: its JSON form parsed and checked in full, and written back.

``parse_settings`` checks all of a policy, including the DSN limits SES documents, and raises
``PolicyError`` naming the field path, the value and what is allowed, so a bad policy fails when
the construct synthesizes, not at run time (``core.policy_writer`` writes the canonical form
back). It reads the parts of ``core.policy_parts`` and never imports ``core.policy``
(``BouncePolicy`` is built from what it returns): no import cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from bounce_runtime.core.addresses import (
    PATTERN_FORMS,
    compile_pattern,
    regex,
)
from bounce_runtime.core.notification import VERDICT_NAMES, VERDICT_STATUSES
from bounce_runtime.core.policy_parts import (
    DEFAULT_SUPPRESS_REASON,
    GUARD_NAMES,
    LAST_ATTEMPT_SOURCES,
    SENDER_AUTHENTICATION_METHODS,
    AcceptAction,
    Action,
    BounceAction,
    DsnFields,
    Guards,
    MessageSettings,
    Rule,
    RuleMatch,
    SuppressAction,
)
from bounce_runtime.core.vocabulary import (
    BOUNCE_TYPES,
    DSN_ACTIONS,
    diagnostic_problem,
    explanation_problem,
    extension_name_problem,
    extension_value_problem,
    mta_problem,
    status_action_problem,
    status_problem,
    unicode_problem,
)
from bounce_runtime.errors import PolicyError

if TYPE_CHECKING:
    pass

POLICY_VERSION: Final = 1
_REASON_CODE = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_REASON_MAX_CHARS = 64
_RULE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def load_json(text: str) -> object:
    """The JSON document ``text`` of a policy; invalid JSON is a ``PolicyError``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise PolicyError(f"policy: not valid JSON ({error})") from None


# Parsing ------------------------------------------------------------------------------------


def _object(value: object, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    allowed = tuple(allowed)
    if not isinstance(value, dict):
        raise PolicyError.at(path, value, "is not an object")
    for key in value:
        if key not in allowed:
            raise PolicyError.at(
                path or "policy", key, f"is not a field; allowed: {', '.join(allowed)}"
            )
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _bool(data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError.at(_join(path, key), value, "is not true or false")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError.at(path, value, "is not a non-empty string")
    if (problem := unicode_problem(value)) is not None:
        raise PolicyError.at(path, value, problem)
    return value


def _one_of(value: object, path: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise PolicyError.at(path, value, f"is not one of {', '.join(allowed)}")
    return value


def _checked(value: object, path: str, problem: Callable[[str], str | None]) -> str:
    text = _text(value, path)
    found = problem(text)
    if found:
        raise PolicyError.at(path, text, found)
    return text


def _extension_fields(value: object, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise PolicyError.at(path, value, "is not an object of extension field names to values")
    fields = []
    for name, text in value.items():
        problem = extension_name_problem(name)
        if problem:
            raise PolicyError.at(f"{path}", name, problem)
        if not isinstance(text, str):
            raise PolicyError.at(f"{path}.{name}", text, "is not a string")
        problem = extension_value_problem(text)
        if problem:
            raise PolicyError.at(f"{path}.{name}", text, problem)
        fields.append((name, text))
    return tuple(fields)


def _patterns(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError.at(path, value, f"is not a non-empty list of patterns ({PATTERN_FORMS})")
    for position, pattern in enumerate(value):
        if not isinstance(pattern, str) or compile_pattern(pattern) is None:
            raise PolicyError.at(
                f"{path}[{position}]", pattern, f"is not a pattern: use {PATTERN_FORMS}"
            )
    return tuple(value)


# Size bounds stay within JSON's exact-integer range (2**53 - 1, RFC 8259 section 6): the
# compiled policy is JSON, and no stored message comes near it (SES receives at most 40 MB).
MAX_SIZE_BYTES = 2**53 - 1


def _size(data: Mapping[str, Any], key: str, path: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SIZE_BYTES:
        raise PolicyError.at(
            _join(path, key), value, f"is not a whole number of bytes from 0 to {MAX_SIZE_BYTES}"
        )
    return value


def _verdict_conditions(value: object, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    conditions = _object(value, path, VERDICT_NAMES)
    parsed = []
    for name in VERDICT_NAMES:
        if name not in conditions:
            continue
        statuses = conditions[name]
        if not isinstance(statuses, list) or not statuses:
            raise PolicyError.at(
                f"{path}.{name}",
                statuses,
                f"is not a non-empty list of {', '.join(VERDICT_STATUSES)}",
            )
        for position, status in enumerate(statuses):
            _one_of(status, f"{path}.{name}[{position}]", VERDICT_STATUSES)
        parsed.append((name, tuple(statuses)))
    return tuple(parsed)


# Reads a rule's recipients or senders: the checked list of the JSON form, or the newline-joined
# string of the compiled form (checked when it was compiled).
PatternReader = Callable[[object, str], Sequence[str]]


def _rule_match(value: object, path: str, patterns: PatternReader) -> RuleMatch:
    data = _object(
        value, path, ("recipients", "senders", "min_size_bytes", "max_size_bytes", "verdicts")
    )
    recipients = data.get("recipients")
    senders = data.get("senders")
    match = RuleMatch(
        recipients=None if recipients is None else patterns(recipients, f"{path}.recipients"),
        senders=None if senders is None else patterns(senders, f"{path}.senders"),
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
        raise PolicyError.at(
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
        raise PolicyError.at(f"{path}.status", dsn.status, problem)
    if problem:
        raise PolicyError.at(
            f"{path}.action",
            dsn.action,
            f"does not fit status {bounce.dsn_status!r} of bounce type {bounce_type}: "
            "set dsn.status too",
        )
    return dsn


def _action(value: object, path: str) -> Action:
    if not isinstance(value, dict):
        raise PolicyError.at(path, value, "is not an object")
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
            or not regex(_REASON_CODE).fullmatch(reason)
        ):
            raise PolicyError.at(
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


def _rules(value: object, patterns: PatternReader) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        raise PolicyError.at("rules", value, "is not a list of rules")
    rules = []
    seen_names: set[str] = set()
    for index, item in enumerate(value):
        path = f"rules[{index}]"
        data = _object(item, path, ("name", "match", "action"))
        name = data.get("name")
        if name is not None:
            if not isinstance(name, str) or not regex(_RULE_NAME).fullmatch(name):
                raise PolicyError.at(
                    f"{path}.name",
                    name,
                    "is not a rule name: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', "
                    "starting with a letter or digit",
                )
            if name in seen_names:
                raise PolicyError.at(f"{path}.name", name, "is already the name of an earlier rule")
            seen_names.add(name)
        if "action" not in data:
            raise PolicyError(f"{path}.action: missing; every rule needs an action")
        rules.append(
            Rule(
                match=_rule_match(data.get("match", {}), f"{path}.match", patterns),
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
            raise PolicyError.at("message.explanation", explanation, problem)
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
    data = _object(value, "guards", (*GUARD_NAMES, "sender_authentication"))
    settings: dict[str, Any] = {name: _bool(data, name, "guards", True) for name in GUARD_NAMES}
    if "sender_authentication" in data:
        settings["sender_authentication"] = _sender_authentication(data)
    return Guards(**settings)


def _sender_authentication(data: Mapping[str, Any]) -> tuple[str, ...]:
    """``guards.sender_authentication``: the verdicts whose PASS authenticates the sender."""
    path = "guards.sender_authentication"
    methods = data["sender_authentication"]
    allowed = ", ".join(SENDER_AUTHENTICATION_METHODS)
    if not isinstance(methods, list) or not methods:
        raise PolicyError.at(path, methods, f"is not a non-empty list of {allowed}")
    for position, method in enumerate(methods):
        _one_of(method, f"{path}[{position}]", SENDER_AUTHENTICATION_METHODS)
        if method in methods[:position]:
            raise PolicyError.at(f"{path}[{position}]", method, "is listed twice")
    return tuple(methods)


Settings = tuple[tuple[Rule, ...], Action, bool, MessageSettings, Guards]


def _settings(value: object, patterns: PatternReader) -> Settings:
    """Rules, default, fold_subaddress, message settings and guards of a policy's JSON form."""
    if not isinstance(value, dict):
        raise PolicyError.at("policy", value, "is not an object")
    data = _object(
        value, "", ("version", "rules", "default", "fold_subaddress", "message", "guards")
    )
    version = data.get("version", POLICY_VERSION)
    if version != POLICY_VERSION or isinstance(version, bool):
        raise PolicyError.at(
            "version", version, f"is not a supported policy version ({POLICY_VERSION})"
        )
    return (
        _rules(data.get("rules", []), patterns),
        _action(data["default"], "default") if "default" in data else BounceAction(),
        _bool(data, "fold_subaddress", "", False),
        _message(data.get("message", {})),
        _guards(data.get("guards", {})),
    )


def parse_settings(value: object, patterns: PatternReader | None = None) -> Settings:
    """Rules, default, fold_subaddress, message settings and guards of a policy's JSON form,
    checked in full (``BouncePolicy(*settings)`` builds the policy); ``patterns`` reads a rule's
    recipients and senders (default: the JSON form's checked lists)."""
    return _settings(value, _patterns if patterns is None else patterns)
