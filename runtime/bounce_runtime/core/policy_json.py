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
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, overload

from bounce_runtime.core.addresses import KEY_SEPARATOR, AddressIndex, IndexGroups
from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.core.policy_form import (
    POLICY_VERSION as POLICY_VERSION,
)
from bounce_runtime.core.policy_form import load_json, parse_settings
from bounce_runtime.core.policy_writer import policy_to_dict as policy_to_dict
from bounce_runtime.errors import PolicyError

COMPILED_FORMAT: Final = "cdk-ses-bounce/compiled-policy"
COMPILED_VERSION: Final = 1
_COMPILED_START = f'{{"format":"{COMPILED_FORMAT}",'
_DIGEST_PREFIX = ',"digest":"sha256:'
_BODY_PREFIX = '","body":'
_DIGEST_HEX_CHARS = 64
_COMPILED_BODY_KEYS = ("policy", "recipient_index", "sender_indexes")


def parse_policy(value: object) -> BouncePolicy:
    """Validate and compile a policy from its JSON form; raise ``PolicyError`` naming the field
    path, the value and what is allowed."""
    return BouncePolicy(*parse_settings(value))


def parse_policy_json(text: str) -> BouncePolicy:
    """``parse_policy`` of a JSON document; invalid JSON is a ``PolicyError`` too."""
    return parse_policy(load_json(text))


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
        rules, default, fold_subaddress, message, guards = parse_settings(
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
