"""The policy's JSON forms refuse what is wrong with the exact field, value and reason, and the
compiled form refuses any header, index or body it was not written with (found by mutation
testing, ``make mutation``)."""

from __future__ import annotations

import binascii
import hashlib
import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.core.policy_json import (
    COMPILED_FORMAT,
    JoinedPatterns,
    compile_policy,
    load_policy_text,
    parse_policy,
)
from bounce_runtime.errors import PolicyError

ACCEPT = {"type": "accept"}
STATUSES = "PASS, FAIL, GRAY, PROCESSING_FAILED"
HEADER_ERROR = (
    f'compiled policy: the header is not {{"format":"{COMPILED_FORMAT}",'
    '"version":N,"digest":"sha256:<64 hex>","body":...'
)


def rule(match: dict[str, Any] | None = None, action: Any = None) -> dict[str, Any]:
    return {"match": match or {}, "action": ACCEPT if action is None else action}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"rules": ["accept all"]}, "rules[0]: 'accept all' is not an object"),
        ({"rules": [rule(action="bounce")]}, "rules[0].action: 'bounce' is not an object"),
        (
            {"default": {"type": "accept", "reason": "legal-hold"}},
            "default: 'reason' is not a field; allowed: type",
        ),
        (
            {"default": {"type": "bounce", "status": "5.1.1"}},
            "default: 'status' is not a field; allowed: type, bounce_type, dsn",
        ),
        ({"default": {"type": "bounce", "dsn": []}}, "default.dsn: [] is not an object"),
        (
            {"default": {"type": "suppress", "reason": 5}},
            "default.reason: 5 is not a reason code: 1 to 64 characters of a-z, 0-9 and single "
            "dashes, such as legal-hold",
        ),
        ({"message": []}, "message: [] is not an object"),
        ({"message": {"reporting_mta": ""}}, "message.reporting_mta: '' is not a non-empty string"),
        (
            {"message": {"extension_fields": ["X-A"]}},
            "message.extension_fields: ['X-A'] is not an object of extension field names to values",
        ),
        (
            {"rules": [rule({"verdicts": {"spam": []}})]},
            f"rules[0].match.verdicts.spam: [] is not a non-empty list of {STATUSES}",
        ),
        (
            {"rules": [rule({"verdicts": {"spam": "FAIL"}})]},
            f"rules[0].match.verdicts.spam: 'FAIL' is not a non-empty list of {STATUSES}",
        ),
        (
            {"rules": [rule({"recipients": [5]})]},
            "rules[0].match.recipients[0]: 5 is not a pattern: use user@example.com, "
            "example.com, *.example.com or *@example.com",
        ),
        (
            {"rules": [rule({"min_size_bytes": True})]},
            "rules[0].match.min_size_bytes: True is not a whole number of bytes from 0 to "
            "9007199254740991",
        ),
        (
            {"rules": [rule({"max_size_bytes": -1})]},
            "rules[0].match.max_size_bytes: -1 is not a whole number of bytes from 0 to "
            "9007199254740991",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field_the_value_and_the_rule(
    policy: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(policy)
    assert str(raised.value) == message


def test_a_size_range_of_one_value_is_accepted() -> None:
    policy = parse_policy({"rules": [rule({"min_size_bytes": 10, "max_size_bytes": 10})]})
    assert policy.decide("a@example.com", sender="s@example.net", object_size=10).rule == (
        "rules[0]"
    )


def test_a_suppress_reason_of_64_characters_is_the_longest_accepted() -> None:
    reason = "a" * 64
    policy = parse_policy({"default": {"type": "suppress", "reason": reason}})
    assert policy.default == parse_policy(policy.to_dict()).default
    with pytest.raises(PolicyError):
        parse_policy({"default": {"type": "suppress", "reason": reason + "a"}})


# The compiled form --------------------------------------------------------------------------


POLICY = parse_policy(
    {"rules": [rule({"recipients": ["example.com"], "senders": ["*@example.net"]})]}
)


def sealed(body: str) -> str:
    """A compiled policy of ``body`` (the text between ``"body":`` and the closing brace)."""
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return (
        f'{{"format":"{COMPILED_FORMAT}","version":1,"digest":"sha256:{digest}","body":{body}}}\n'
    )


def resealed(edit: Callable[[dict[str, Any]], None]) -> str:
    """POLICY compiled, its body changed by ``edit``, with a digest that fits again."""
    body = json.loads(compile_policy(POLICY))["body"]
    edit(body)
    return sealed(json.dumps(body, separators=(",", ":"), sort_keys=True))


def refused(text: str, *, full_check: bool = False) -> str:
    with pytest.raises(PolicyError) as raised:
        load_policy_text(text, full_check=full_check)
    return str(raised.value)


def test_the_full_check_finds_a_sender_index_that_is_not_that_of_the_patterns() -> None:
    def drift(body: dict[str, Any]) -> None:
        body["sender_indexes"][0]["domain"] = [[[0], "example.org"]]

    text = resealed(drift)
    load_policy_text(text)  # the fast load trusts the index: the digest fits
    assert refused(text, full_check=True) == (
        "compiled policy: its indexes are not those of its patterns"
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda b: b["sender_indexes"][0].update(domain=[[[1], "example.net"]]),
            "index labels (1,) are not rule indices",
        ),
        (lambda b: b.update(recipient_index=[]), "an index is not an object of kinds"),
        (
            lambda b: b.update(sender_indexes=[]),
            "sender_indexes is not a list with one entry per rule",
        ),
        (
            lambda b: b.pop("recipient_index"),
            "the body's fields are not policy, recipient_index, sender_indexes",
        ),
    ],
)
def test_a_resealed_body_that_is_not_well_formed_says_what_is_wrong(
    edit: Callable[[dict[str, Any]], None], problem: str
) -> None:
    assert refused(resealed(edit)) == f"compiled policy: not well formed ({problem})"


@pytest.mark.parametrize(
    "entries",
    [
        "",
        [[[0], ""]],
        [[["0"], "example.com"]],
        [[0, "example.com"]],
        [[[0], "example.com", "extra"]],
        [{"labels": [0], "keys": "example.com"}],
    ],
    ids=repr,
)
def test_index_entries_of_any_other_shape_are_refused(entries: Any) -> None:
    text = resealed(lambda b: b["recipient_index"].update(domain=entries))
    assert refused(text) == (
        "compiled policy: not well formed (index 'domain' is not a list of [labels, keys])"
    )


def test_stored_patterns_that_are_not_ascii_are_refused() -> None:
    text = resealed(lambda b: b["policy"]["rules"][0]["match"].update(recipients="é"))
    assert refused(text) == (
        "compiled policy: rules[0].match.recipients: 'é' is not a compressed list of patterns"
    )


def test_a_body_followed_by_more_json_is_refused() -> None:
    assert refused(sealed("{} {}")) == (
        "compiled policy: not well formed (the body is not one JSON object)"
    )


def with_digest(text: str, change: Callable[[str], str]) -> str:
    start = text.index("sha256:") + len("sha256:")
    return text[:start] + change(text[start : start + 64]) + text[start + 64 :]


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace('"version":1,', '"version":1234567890,'),  # its comma 10 digits on
        lambda t: with_digest(t, str.upper),
        lambda t: with_digest(t, lambda digest: "X" + digest[1:]),
        lambda t: t.replace("sha256:", "sha512:"),
    ],
    ids=["long version", "upper-case digest", "digest with an X", "another hash"],
)
def test_a_header_not_written_by_compile_is_refused(damage: Callable[[str], str]) -> None:
    assert refused(damage(compile_policy(POLICY))) == HEADER_ERROR


def test_text_after_the_closing_brace_is_refused() -> None:
    assert refused(compile_policy(POLICY).rstrip() + "X") == (
        "compiled policy: cut short (no closing brace)"
    )


def test_a_changed_body_is_refused_saying_to_compile_it_again() -> None:
    text = compile_policy(POLICY).replace('"accept"', '"suppress"', 1)
    assert refused(text) == (
        "compiled policy: the digest does not match the body: the file was changed or cut short "
        "after it was compiled; compile it again"
    )


def test_patterns_stored_with_another_compression_are_the_same_patterns() -> None:
    joined = "\n".join(["a@example.com", "example.org"]).encode("utf-8")
    fast = binascii.b2a_base64(zlib.compress(joined, 1), newline=False).decode("ascii")
    stored = JoinedPatterns.encode(["a@example.com", "example.org"])
    assert fast != stored
    assert JoinedPatterns(fast) == JoinedPatterns(stored)
    assert JoinedPatterns(stored) != JoinedPatterns(JoinedPatterns.encode(["a@example.com"]))
    assert repr(JoinedPatterns(stored)) == "('a@example.com', 'example.org')"


def test_a_compiled_policy_equals_the_policy_it_was_compiled_from() -> None:
    loaded = load_policy_text(compile_policy(POLICY))
    assert loaded == POLICY
    assert hash(loaded) == hash(POLICY)
    assert isinstance(loaded, BouncePolicy)


def test_the_largest_json_exact_size_is_accepted_and_one_more_refused() -> None:
    largest = 2**53 - 1  # JSON's exact-integer limit (RFC 8259 section 6)
    policy = parse_policy({"rules": [rule({"max_size_bytes": largest})]})
    assert policy.rules[0].match.max_size_bytes == largest
    with pytest.raises(PolicyError, match="max_size_bytes: 9007199254740992 is not"):
        parse_policy({"rules": [rule({"max_size_bytes": largest + 1})]})
