"""The policy's JSON forms: the policy as written (parsed and checked in full), and the compiled
form the construct ships (loaded fast).

``parse_policy`` checks all of a policy, including the DSN limits SES documents, and raises
``PolicyError`` naming the field path, the value and what is allowed, so a bad policy fails when
the construct synthesizes, not at run time. ``policy_to_dict`` writes the canonical form back.

``compile_policy`` writes a checked policy with its address indexes precomputed: one JSON document
``{"format": ..., "version": N, "digest": "sha256:<hex>", "body": {...}}`` whose body holds the
canonical policy (each rule's patterns joined by newlines and compressed: read only on demand)
and the index groups (``AddressIndex.groups``); the digest is the SHA-256 of the body's UTF-8
text. ``load_policy_text`` reads either form: a compiled one with a structural check, its version
and digest (and the rules, defaults and settings checked in full: they are small), but no pattern
checked or compiled again; anything else as the policy as written. The digest detects a file
changed or cut short after it was compiled; it is not a signature (whoever can write the layer can
write a new digest).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, overload

from bounce_runtime.core.addresses import (
    KEY_SEPARATOR,
    PATTERN_FORMS,
    AddressIndex,
    IndexGroups,
    compile_pattern,
    regex,
)
from bounce_runtime.core.notification import VERDICT_NAMES, VERDICT_STATUSES
from bounce_runtime.core.policy import (
    DEFAULT_SUPPRESS_REASON,
    GUARD_NAMES,
    LAST_ATTEMPT_SOURCES,
    SENDER_AUTHENTICATION_METHODS,
    AcceptAction,
    Action,
    BounceAction,
    BouncePolicy,
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

POLICY_VERSION: Final = 1
COMPILED_FORMAT: Final = "cdk-ses-bounce/compiled-policy"
COMPILED_VERSION: Final = 1
_COMPILED_START = f'{{"format":"{COMPILED_FORMAT}",'
_DIGEST_PREFIX = ',"digest":"sha256:'
_BODY_PREFIX = '","body":'
_DIGEST_HEX_CHARS = 64
_COMPILED_BODY_KEYS = ("policy", "recipient_index", "sender_indexes")
_REASON_CODE = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_REASON_MAX_CHARS = 64
_RULE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def parse_policy_json(text: str) -> BouncePolicy:
    """``parse_policy`` of a JSON document; invalid JSON is a ``PolicyError`` too."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise PolicyError(f"policy: not valid JSON ({error})") from None
    return parse_policy(data)


def policy_to_dict(policy: BouncePolicy) -> dict[str, Any]:
    """The canonical JSON form (every setting spelled out); ``parse_policy`` reads it back."""
    return {
        "version": POLICY_VERSION,
        "rules": [_rule_to_dict(rule) for rule in policy.rules],
        "default": _action_to_dict(policy.default),
        "fold_subaddress": policy.fold_subaddress,
        "message": _message_to_dict(policy.message),
        "guards": {
            **{name: getattr(policy.guards, name) for name in GUARD_NAMES},
            "sender_authentication": list(policy.guards.sender_authentication),
        },
    }


class JoinedPatterns(Sequence[str]):
    """A rule's patterns as the compiled policy stores them: joined by newlines (no pattern holds
    whitespace), zlib-compressed and base64-encoded. Decoded and split on first use: deciding
    uses the indexes, so a cold start never reads them (and loads a file about half the size).
    Equal to (and hashed like) the tuple of the same patterns."""

    __slots__ = ("_encoded", "_items")

    def __init__(self, encoded: str) -> None:
        self._encoded = encoded
        self._items: tuple[str, ...] | None = None

    @staticmethod
    def encode(patterns: Iterable[str]) -> str:
        """The stored form of ``patterns`` (deterministic)."""
        import binascii
        import zlib

        joined = KEY_SEPARATOR.join(patterns).encode("utf-8")
        return binascii.b2a_base64(zlib.compress(joined, 9), newline=False).decode("ascii")

    def _split(self) -> tuple[str, ...]:
        if self._items is None:
            import binascii
            import zlib

            try:
                joined = zlib.decompress(binascii.a2b_base64(self._encoded)).decode("utf-8")
            except (ValueError, zlib.error) as error:
                raise PolicyError(
                    f"compiled policy: patterns cannot be decoded ({error})"
                ) from None
            self._items = tuple(joined.split(KEY_SEPARATOR))
        return self._items

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._split()[index]

    def __len__(self) -> int:
        return len(self._split())

    def __iter__(self) -> Iterator[str]:
        return iter(self._split())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JoinedPatterns):
            return self._encoded == other._encoded or self._split() == other._split()
        if isinstance(other, tuple):
            return self._split() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._split())

    def __repr__(self) -> str:
        return repr(self._split())


def compile_policy(policy: BouncePolicy) -> str:
    """The compiled form of ``policy`` (what the construct writes into the policy layer);
    ``load_policy_text`` reads it back without checking or compiling a pattern again.

    Deterministic: the same policy always gives the same text (so asset hashes stay stable).
    """
    document = policy_to_dict(policy)
    for rule in document["rules"]:
        for field in ("recipients", "senders"):
            if field in rule["match"]:
                rule["match"][field] = JoinedPatterns.encode(rule["match"][field])
    body = json.dumps(
        {
            "policy": document,
            "recipient_index": policy.recipient_index.groups(),
            "sender_indexes": [
                None if index is None else index.groups() for index in policy.sender_indexes
            ],
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return (
        f'{_COMPILED_START}"version":{COMPILED_VERSION},"digest":"sha256:{digest}",'
        f'"body":{body}}}\n'
    )


def is_compiled(text: str) -> bool:
    """Whether ``text`` is (meant to be) a compiled policy rather than a policy as written."""
    return text.startswith(_COMPILED_START)


def load_policy_text(text: str, *, full_check: bool = False) -> BouncePolicy:
    """The policy in ``text``: the compiled form (fast, see the module docstring) or the policy
    as written (checked in full). ``full_check`` checks a compiled policy in full as well (every
    pattern, and that its indexes are those of its patterns): for operators, not cold starts.

    Raises ``PolicyError`` saying what is wrong.
    """
    if not is_compiled(text):
        return parse_policy_json(text)
    policy = _load_compiled(text)
    if full_check:
        checked = parse_policy(policy_to_dict(policy))
        if checked != policy or _index_groups(checked) != _index_groups(policy):
            raise PolicyError("compiled policy: its indexes are not those of its patterns")
    return policy


def _index_groups(policy: BouncePolicy) -> list[IndexGroups | None]:
    senders = [None if index is None else index.groups() for index in policy.sender_indexes]
    return [policy.recipient_index.groups(), *senders]


def _load_compiled(text: str) -> BouncePolicy:
    # The header, {"format":"...","version":N,"digest":"sha256:<64 hex>","body":, is ASCII: the
    # body's offset in characters is its offset in bytes. Read with str methods, not a regex
    # (compiling one would cost more than the rest of a small policy's load).
    version_start = len(_COMPILED_START) + len('"version":')
    version_end = text.find(",", version_start, version_start + 10)
    digest_start = version_end + len(_DIGEST_PREFIX)
    body_start = digest_start + _DIGEST_HEX_CHARS + len(_BODY_PREFIX)
    version_text = text[version_start:version_end] if version_end > 0 else ""
    digest = text[digest_start : digest_start + _DIGEST_HEX_CHARS]
    if not (
        text.startswith(f'{_COMPILED_START}"version":')
        and version_text.isdigit()
        and version_text.isascii()
        and text.startswith(_DIGEST_PREFIX, version_end)
        and len(digest) == _DIGEST_HEX_CHARS
        and all(c in "0123456789abcdef" for c in digest)
        and text.startswith(_BODY_PREFIX, digest_start + _DIGEST_HEX_CHARS)
    ):
        raise PolicyError(
            f"compiled policy: the header is not {_COMPILED_START}"
            '"version":N,"digest":"sha256:<64 hex>","body":...'
        )
    version = int(version_text)
    if version != COMPILED_VERSION:
        raise PolicyError(
            f"compiled policy: version {version} is not the one this runtime reads "
            f"({COMPILED_VERSION}): compile it with the same cdk-ses-bounce version"
        )
    # The body runs from the header to the closing brace, before any trailing whitespace. The
    # header and the tail are ASCII, so the body's UTF-8 bytes are at the same distance from the
    # ends: hashed and parsed in place, without copying it.
    end = len(text)
    while end and text[end - 1] in " \t\r\n":
        end -= 1
    if end <= body_start or text[end - 1] != "}":
        raise PolicyError("compiled policy: cut short (no closing brace)")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise PolicyError(f"compiled policy: not UTF-8 text ({error})") from None
    body_bytes = memoryview(encoded)[body_start : len(encoded) - (len(text) - end) - 1]
    if hashlib.sha256(body_bytes).hexdigest() != digest:
        raise PolicyError(
            "compiled policy: the digest does not match the body: the file was changed or cut "
            "short after it was compiled; compile it again"
        )
    try:
        data, body_end = json.JSONDecoder().raw_decode(text, body_start)
        if body_end != end - 1:
            raise ValueError("the body is not one JSON object")
        if not isinstance(data, dict) or sorted(data) != sorted(_COMPILED_BODY_KEYS):
            raise ValueError(f"the body's fields are not {', '.join(_COMPILED_BODY_KEYS)}")
        rules, default, fold_subaddress, message, guards = _settings(
            data["policy"], _joined_patterns
        )
        senders = data["sender_indexes"]
        if not isinstance(senders, list) or len(senders) != len(rules):
            raise ValueError("sender_indexes is not a list with one entry per rule")
        sender_indexes = []
        for rule, groups in zip(rules, senders, strict=True):
            if (groups is None) != (rule.match.senders is None):
                raise ValueError(f"{rule.label}: sender index and sender condition disagree")
            sender_indexes.append(None if groups is None else _index(groups, 1))
        return BouncePolicy.with_indexes(
            rules,
            default,
            fold_subaddress,
            message,
            guards,
            recipient_index=_index(data["recipient_index"], len(rules)),
            sender_indexes=sender_indexes,
        )
    except PolicyError as error:
        raise PolicyError(f"compiled policy: {error}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        raise PolicyError(f"compiled policy: not well formed ({error})") from None


def _index(groups: object, label_count: int) -> AddressIndex:
    """An ``AddressIndex`` from its groups, after checking their shape (not their keys)."""
    if not isinstance(groups, dict):
        raise ValueError("an index is not an object of kinds")
    typed: IndexGroups = {}
    for kind, entries in groups.items():
        if not isinstance(entries, list) or not all(
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], list)
            and all(isinstance(label, int) for label in entry[0])
            and isinstance(entry[1], str)
            and entry[1]
            for entry in entries
        ):
            raise ValueError(f"index {kind!r} is not a list of [labels, keys]")
        typed[kind] = [(tuple(labels), keys) for labels, keys in entries]
    return AddressIndex.from_groups(typed, label_count)


def _joined_patterns(value: object, path: str) -> Sequence[str]:
    if not isinstance(value, str) or not value or not value.isascii():
        raise PolicyError.at(path, value, "is not a compressed list of patterns")
    return JoinedPatterns(value)


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


def parse_policy(value: object) -> BouncePolicy:
    """Validate and compile a policy from its JSON form; raise ``PolicyError`` naming the field
    path, the value and what is allowed."""
    return BouncePolicy(*_settings(value, _patterns))


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
