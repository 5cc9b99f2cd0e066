"""Address grammar and patterns: what a bare address and a host name are, what a recipient or
sender pattern is, and ``AddressIndex``, which compiles patterns into dicts so a lookup costs the
same for 10 patterns or 100,000.

Every grammar here is ASCII only (IDN domains are written as ``xn--``): no lookalike letter or
digit can pass for an ASCII one. The construct checks its props with the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from functools import cache
from typing import Final, Literal

from bounce_runtime.contract import recipient_key

PATTERN_FORMS: Final = "user@example.com, example.com, *.example.com or *@example.com"
_DOMAIN_LABEL = r"[^\s@*<>()\[\]\\\",;:.\x00-\x1f\x7f]+"
_DOMAIN = rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*"
_LOCAL_PART = r"[^\s@*<>()\[\]\\\",;:\x00-\x1f\x7f]+"
_DOMAIN_MAX_CHARS = 253


@cache
def regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on its first use (and only then, not at import), ASCII only: ``\\d``
    is 0-9, and ``(?i)`` folds A-Z alone (no Arabic-Indic digit in a status, no Kelvin sign or
    long s in a host name). Every grammar of the runtime is compiled by it."""
    return re.compile(pattern, re.ASCII)


PatternKind = Literal["address", "domain", "subdomains"]

# A host name (RFC 1035 2.3.1, RFC 1123 2.1): dot-separated LDH labels of 1-63 characters, at most
# 253 in all. The grammar of a mail domain (two labels or more) and of an RFC 3464 MTA name.
HOST_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME_MAX_CHARS: Final = _DOMAIN_MAX_CHARS
_MAIL_DOMAIN = rf"{HOST_LABEL}(?:\.{HOST_LABEL})+"
# A bare address (RFC 5321 4.1.2 Mailbox with a Dot-string local part; no quoted strings): what
# SES identities and the bounce sender are. RFC 5321 4.5.3.1: local part at most 64 octets, a
# path (the address in angle brackets) at most 256, so the address at most 254.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_STRING = rf"{_ATOM}(?:\.{_ATOM})*"
LOCAL_PART_MAX_CHARS: Final = 64
BARE_ADDRESS_MAX_CHARS: Final = 254
BARE_ADDRESS_FORM: Final = (
    "one bare address local@domain is required (ASCII, an IDN domain as xn--; no display name, "
    "spaces or angle brackets)"
)
_NOT_BARE = frozenset(' \t<>()"')


def is_mail_domain(value: str) -> bool:
    """Whether ``value`` is a mail domain: an ASCII host name of two labels or more."""
    return (
        value.isascii()
        and len(value) <= HOST_NAME_MAX_CHARS
        and regex(_MAIL_DOMAIN).fullmatch(value) is not None
    )


def bare_address_problem(value: str) -> str | None:
    """Why ``value`` is not one bare address ``local@domain`` (the bounce sender), or None.

    The answer reads after the value (``'a@b@c.example' has 2 '@': one bare address ...``)."""
    if not value.isascii():
        position = next(i for i, c in enumerate(value) if not c.isascii())
        return f"has U+{ord(value[position]):04X} at position {position}: {BARE_ADDRESS_FORM}"
    if any(c in _NOT_BARE or not c.isprintable() for c in value):
        return (
            "has a display name, a space, a control character or angle brackets: "
            f"{BARE_ADDRESS_FORM}"
        )
    ats = value.count("@")
    if ats != 1:
        return f"has {ats} '@': {BARE_ADDRESS_FORM}"
    if len(value) > BARE_ADDRESS_MAX_CHARS:
        return (
            f"is {len(value)} characters long, more than the {BARE_ADDRESS_MAX_CHARS} of "
            f"RFC 5321: {BARE_ADDRESS_FORM}"
        )
    local, _, domain = value.partition("@")
    if len(local) > LOCAL_PART_MAX_CHARS or not regex(_DOT_STRING).fullmatch(local):
        return (
            f"has the local part {local!r}: 1 to {LOCAL_PART_MAX_CHARS} characters of A-Z, a-z, "
            "0-9 and !#$%&'*+/=?^_`{|}~- in dot-separated runs is required"
        )
    if not is_mail_domain(domain):
        return (
            f"has the domain {domain!r}: a host name is required (two or more dot-separated "
            "labels of A-Z, a-z, 0-9 and -, each 1 to 63 characters, not starting or ending with "
            "-; an IDN as xn--)"
        )
    return None


def _valid_domain(domain: str) -> bool:
    return len(domain) <= _DOMAIN_MAX_CHARS and regex(_DOMAIN).fullmatch(domain) is not None


def compile_pattern(pattern: str) -> tuple[PatternKind, str] | None:
    """``(kind, lowercase key)`` for an address pattern, or None when it is not one.

    ``user@example.com`` -> address; ``example.com`` and ``*@example.com`` -> domain (that domain
    only); ``*.example.com`` and ``*@*.example.com`` -> subdomains (any depth, not the domain).
    """
    if not pattern.isascii():  # addresses and domains in patterns are ASCII (IDNs as xn--)
        return None
    text = recipient_key(pattern)
    if "@" in text:
        local, _, domain = text.rpartition("@")
        if local == "*":
            return compile_pattern(domain) if "@" not in domain else None
        if not regex(_LOCAL_PART).fullmatch(local) or not _valid_domain(domain):
            return None
        return "address", f"{local}@{domain}"
    if text.startswith("*."):
        return ("subdomains", text[2:]) if _valid_domain(text[2:]) else None
    return ("domain", text) if _valid_domain(text) else None


def parent_domains(domain: str) -> Iterator[str]:
    """Proper suffixes of ``domain``: a.b.example.com -> b.example.com, example.com, com."""
    start = domain.find(".")
    while start != -1:
        yield domain[start + 1 :]
        start = domain.find(".", start + 1)


def address_forms(address: str, *, fold_subaddress: bool) -> tuple[str, ...]:
    """The lowercase forms an address is looked up by: itself, then ``user@`` for ``user+tag@``."""
    lowered = recipient_key(address)
    if not fold_subaddress:
        return (lowered,)
    local, at, domain = lowered.rpartition("@")
    base = local.split("+", 1)[0]
    if at and base and base != local:
        return (lowered, f"{base}@{domain}")
    return (lowered,)


# The compiled form of an index: per kind, groups of (labels, keys) whose keys all carry exactly
# those labels; keys joined by newlines (no pattern contains whitespace).
IndexGroups = dict[str, list[tuple[tuple[int, ...], str]]]
KEY_SEPARATOR: Final = "\n"


class AddressIndex:
    """Address patterns compiled into dicts; maps each matching address to labels (rule indices)."""

    __slots__ = ("_tables",)

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, AbstractSet[int]]] = {
            "address": {},
            "domain": {},
            "subdomains": {},
        }

    def add(self, kind: PatternKind, key: str, label: int) -> None:
        """Register a compiled pattern under ``label``."""
        table = self._tables[kind]
        current = table.get(key)
        table[key] = frozenset((label,)) if current is None else current | {label}

    def labels(self, forms: tuple[str, ...]) -> set[int]:
        """Labels of every pattern matching the lowercase address ``forms`` (same domain).

        Costs one dict lookup per form plus one per label of the domain, whatever the size.
        """
        found: set[int] = set()
        exact = self._tables["address"]
        for form in forms:
            found.update(exact.get(form, ()))
        domain = forms[0].rpartition("@")[2] if forms else ""
        if domain:
            found.update(self._tables["domain"].get(domain, ()))
            subdomains = self._tables["subdomains"]
            for parent in parent_domains(domain):
                found.update(subdomains.get(parent, ()))
        return found

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    def groups(self) -> IndexGroups:
        """The index in its compiled form (``from_groups`` reads it back), deterministic."""
        result: IndexGroups = {}
        for kind, table in self._tables.items():
            by_labels: dict[tuple[int, ...], list[str]] = {}
            for key, labels in table.items():
                by_labels.setdefault(tuple(sorted(labels)), []).append(key)
            result[kind] = [
                (labels, KEY_SEPARATOR.join(keys)) for labels, keys in sorted(by_labels.items())
            ]
        return result

    @classmethod
    def from_groups(cls, groups: IndexGroups, label_count: int) -> AddressIndex:
        """The index of ``groups`` (from ``groups()``), built with little more than
        ``str.split``: the keys are not checked again. ``ValueError`` when the groups are not
        well formed (a kind missing, a label outside ``range(label_count)``, a key twice)."""
        index = cls()
        if set(groups) != set(index._tables):
            raise ValueError(f"index kinds {sorted(groups)} are not {sorted(index._tables)}")
        for kind in index._tables:
            table: dict[str, AbstractSet[int]] = {}
            expected = 0
            for labels, keys in groups[kind]:
                if not labels or any(not 0 <= label < label_count for label in labels):
                    raise ValueError(f"index labels {labels} are not rule indices")
                split = keys.split(KEY_SEPARATOR)
                expected += len(split)
                if table:
                    table.update(dict.fromkeys(split, frozenset(labels)))
                else:  # the first (often the only) group: no copy
                    table = dict.fromkeys(split, frozenset(labels))
            if len(table) != expected:
                raise ValueError(f"a {kind} key appears in more than one group")
            index._tables[kind] = table
        return index
