"""Address grammar and patterns: what a recipient or sender pattern is, and ``AddressIndex``,
which compiles patterns into dicts so a lookup costs the same for 10 patterns or 100,000."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal

from bounce_runtime.contract import recipient_key
from bounce_runtime.core.vocabulary import regex

PATTERN_FORMS: Final = "user@example.com, example.com, *.example.com or *@example.com"
_DOMAIN_LABEL = r"[^\s@*<>()\[\]\\\",;:.\x00-\x1f\x7f]+"
_DOMAIN = rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*"
_LOCAL_PART = r"[^\s@*<>()\[\]\\\",;:\x00-\x1f\x7f]+"
_DOMAIN_MAX_CHARS = 253

PatternKind = Literal["address", "domain", "subdomains"]


def _valid_domain(domain: str) -> bool:
    return len(domain) <= _DOMAIN_MAX_CHARS and regex(_DOMAIN).fullmatch(domain) is not None


def compile_pattern(pattern: str) -> tuple[PatternKind, str] | None:
    """``(kind, lowercase key)`` for an address pattern, or None when it is not one.

    ``user@example.com`` -> address; ``example.com`` and ``*@example.com`` -> domain (that domain
    only); ``*.example.com`` and ``*@*.example.com`` -> subdomains (any depth, not the domain).
    """
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
            for parent in parent_domains(domain):
                found.update(self._subdomains.get(parent, ()))
        return found
