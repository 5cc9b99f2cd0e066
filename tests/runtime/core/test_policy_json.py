"""The compiled policy form: loads to the same policy as a full parse, refuses what was changed."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.core.policy_json import (
    COMPILED_VERSION,
    JoinedPatterns,
    compile_policy,
    is_compiled,
    load_policy_text,
    parse_policy,
    policy_to_dict,
)
from bounce_runtime.errors import PolicyError

VERDICTS = ("PASS", "FAIL", "GRAY", "PROCESSING_FAILED")

labels = st.sampled_from(["a", "b", "mail", "x-1", "EXAMPLE", "co", "Sub"])
domains = st.lists(labels, min_size=1, max_size=3).map(".".join)
locals_ = st.sampled_from(["user", "User", "a+tag", "a", "b.c", "postmaster"])
patterns = st.one_of(
    st.builds(lambda local, d: f"{local}@{d}", locals_, domains),
    domains,
    domains.map(lambda d: f"*.{d}"),
    domains.map(lambda d: f"*@{d}"),
    domains.map(lambda d: f"*@*.{d}"),
)
actions = st.one_of(
    st.just({"type": "accept"}),
    st.builds(lambda r: {"type": "suppress", "reason": r}, st.sampled_from(["policy", "hold"])),
    st.builds(
        lambda t: {"type": "bounce", "bounce_type": t},
        st.sampled_from(["DoesNotExist", "MessageTooLarge", "TemporaryFailure"]),
    ),
    st.just({"type": "bounce", "dsn": {"status": "5.7.1", "remote_mta": "dns; mx.a.co"}}),
)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if draw(st.booleans()):
        match["recipients"] = draw(st.lists(patterns, min_size=1, max_size=6))
    if draw(st.booleans()):
        match["senders"] = draw(st.lists(patterns, min_size=1, max_size=3))
    if draw(st.booleans()):
        match["max_size_bytes"] = draw(st.integers(0, 10_000))
    if draw(st.booleans()):
        match["verdicts"] = {"spf": draw(st.lists(st.sampled_from(VERDICTS), min_size=1))}
    return {"match": match, "action": draw(actions)}


guards = st.fixed_dictionaries(
    {},
    optional={
        "unauthenticated_sender": st.booleans(),
        "failed_authentication": st.booleans(),
        "sender_authentication": st.lists(
            st.sampled_from(["spf", "dkim", "dmarc"]), min_size=1, max_size=3, unique=True
        ),
    },
)
policies = st.builds(
    lambda rules, default, fold, guards: {
        "rules": rules,
        "default": default,
        "fold_subaddress": fold,
        "guards": guards,
    },
    st.lists(rules(), max_size=6),
    actions,
    st.booleans(),
    guards,
)
addresses = st.builds(lambda local, d: f"{local}@{d}", locals_, domains)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, st.lists(st.tuples(addresses, addresses), min_size=1, max_size=8))
def test_compiled_load_decides_as_the_full_parse(
    document: dict[str, Any], messages: list[tuple[str, str]]
) -> None:
    parsed = parse_policy(document)
    text = compile_policy(parsed)
    loaded = load_policy_text(text)
    assert loaded == parsed
    assert policy_to_dict(loaded) == policy_to_dict(parsed)
    assert compile_policy(loaded) == text  # deterministic, and a fixed point
    for recipient, sender in messages:
        for size in (None, 0, 5_000, 20_000):
            for spf in (None, *VERDICTS):
                kwargs: dict[str, Any] = {"sender": sender, "verdicts": {"spf": spf}}
                if size is not None:
                    kwargs["object_size"] = size
                assert loaded.decide(recipient, **kwargs) == parsed.decide(recipient, **kwargs)
    assert load_policy_text(text, full_check=True) == parsed


def test_plain_json_is_still_checked_in_full() -> None:
    assert not is_compiled('{"rules": []}')
    with pytest.raises(PolicyError, match=r"rules\[0\]\.match\.recipients\[0\]: 'not a pattern'"):
        load_policy_text(json.dumps({"rules": [{"match": {"recipients": ["not a pattern"]},
                                                "action": {"type": "accept"}}]}))  # fmt: skip


def test_the_compiled_form_is_one_json_document_with_its_digest() -> None:
    policy = parse_policy({"rules": [{"match": {"recipients": ["A@Example.com", "*.b.co"]},
                                      "action": {"type": "accept"}}]})  # fmt: skip
    text = compile_policy(policy)
    document = json.loads(text)
    assert list(document) == ["format", "version", "digest", "body"]
    assert (document["format"], document["version"]) == (
        "cdk-ses-bounce/compiled-policy",
        COMPILED_VERSION,
    )
    body = text[text.index('"body":') + len('"body":') : text.rindex("}")]
    assert document["digest"] == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    stored = document["body"]["policy"]["rules"][0]["match"]["recipients"]
    assert stored == JoinedPatterns.encode(["A@Example.com", "*.b.co"])
    assert zlib.decompress(base64.b64decode(stored)) == b"A@Example.com\n*.b.co"
    assert document["body"]["recipient_index"] == {
        "address": [[[0], "a@example.com"]],
        "domain": [],
        "subdomains": [[[0], "b.co"]],
    }
    assert is_compiled(text)


def test_a_compiled_policy_keeps_its_patterns_joined_until_they_are_read() -> None:
    policy = parse_policy({"rules": [{"match": {"recipients": ["a@b.co", "c.co"]},
                                      "action": {"type": "accept"}}]})  # fmt: skip
    loaded = load_policy_text(compile_policy(policy))
    recipients = loaded.rules[0].match.recipients
    assert isinstance(recipients, JoinedPatterns)
    assert (len(recipients), recipients[1], list(recipients)) == (2, "c.co", ["a@b.co", "c.co"])
    assert recipients == ("a@b.co", "c.co") and recipients == ("a@b.co", "c.co")
    assert hash(recipients) == hash(("a@b.co", "c.co"))
    assert recipients != ("a@b.co",)
    assert loaded.pattern_count() == 2


def resealed(text: str, change: Any) -> str:
    """``text`` with its body changed by ``change(body dict)`` and a digest that fits it."""
    document = json.loads(text)
    change(document["body"])
    body = json.dumps(document["body"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    head = text[: text.index('"digest":')]
    return f'{head}"digest":"sha256:{digest}","body":{body}}}\n'


@pytest.fixture
def compiled() -> str:
    return compile_policy(
        parse_policy(
            {
                "rules": [
                    {"match": {"recipients": ["a@b.co"], "senders": ["*@x.co"]},
                     "action": {"type": "accept"}},
                    {"match": {"recipients": ["*.d.co"]}, "action": {"type": "bounce"}},
                ]
            }
        )
    )  # fmt: skip


def test_a_changed_body_fails_the_digest(compiled: str) -> None:
    tampered = compiled.replace("a@b.co", "a@b.cx", 1)
    with pytest.raises(PolicyError, match="the digest does not match the body"):
        load_policy_text(tampered)


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda t: t[: len(t) // 2], "cut short"),
        (lambda t: t[:-4] + "}}\n", "digest does not match"),
        (lambda t: t.replace('"version":1', '"version":2'), "version 2 is not the one"),
        (lambda t: t.replace('"digest":"sha256:', '"digest":"md5:'), "the header is not"),
        (lambda t: t.rstrip() + "  \n\n", None),  # trailing whitespace is fine
    ],
)
def test_a_damaged_file_is_refused_with_what_is_wrong(
    compiled: str, cut: Any, message: str | None
) -> None:
    if message is None:
        load_policy_text(cut(compiled))
        return
    with pytest.raises(PolicyError, match=message):
        load_policy_text(cut(compiled))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("sender_indexes"), "the body's fields are not"),
        (lambda b: b.update(sender_indexes=[None, None]), "sender index and sender condition"),
        (lambda b: b.update(sender_indexes=[None]), "one entry per rule"),
        (
            lambda b: b["recipient_index"]["address"].append([[7], "z@z.co"]),
            r"labels \(7,\) are not rule indices",
        ),
        (
            lambda b: b["recipient_index"]["address"].append([[1], "a@b.co"]),
            "appears in more than one group",
        ),
        (lambda b: b["recipient_index"].pop("domain"), "index kinds"),
        (lambda b: b["recipient_index"].update(address="x"), "is not a list of"),
        (
            lambda b: b["policy"]["rules"][0]["match"].update(recipients=["a@b.co"]),
            "is not a compressed list of patterns",
        ),
        (
            lambda b: b["policy"]["rules"][1].update(action={"type": "explode"}),
            r"rules\[1\]\.action\.type: 'explode' is not one of",
        ),
    ],
)
def test_a_resealed_but_malformed_body_is_refused(compiled: str, change: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as raised:
        load_policy_text(resealed(compiled, change))
    assert str(raised.value).startswith("compiled policy: ")


def test_full_check_finds_an_index_that_is_not_that_of_the_patterns(compiled: str) -> None:
    def drift(body: dict[str, Any]) -> None:
        body["recipient_index"]["address"] = [[[0], "someone@else.co"]]

    sealed = resealed(compiled, drift)
    fast = load_policy_text(sealed)  # the fast load trusts the index (the digest fits)
    assert fast.decide("someone@else.co", sender="s@x.co").rule == "rules[0]"
    with pytest.raises(PolicyError, match="its indexes are not those of its patterns"):
        load_policy_text(sealed, full_check=True)


def test_a_pattern_that_the_full_check_refuses(compiled: str) -> None:
    def bad(body: dict[str, Any]) -> None:
        encoded = JoinedPatterns.encode(["*.d.co", "not a pattern"])
        body["policy"]["rules"][1]["match"]["recipients"] = encoded

    with pytest.raises(PolicyError, match=re.escape("rules[1].match.recipients[1]")):
        load_policy_text(resealed(compiled, bad), full_check=True)


def test_lone_surrogates_are_refused_not_raised() -> None:
    text = compile_policy(BouncePolicy())[:-2] + "\ud800}"
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy_text(text)


def test_patterns_that_cannot_be_decoded_are_a_policy_error_when_read(compiled: str) -> None:
    def garble(body: dict[str, Any]) -> None:
        body["policy"]["rules"][1]["match"]["recipients"] = "bm90IHpsaWI="  # "not zlib"

    loaded = load_policy_text(resealed(compiled, garble))  # deciding never reads them
    assert loaded.decide("x@a.d.co", sender="s@x.co").rule == "rules[1]"
    with pytest.raises(PolicyError, match="patterns cannot be decoded"):
        list(loaded.rules[1].match.recipients or ())
