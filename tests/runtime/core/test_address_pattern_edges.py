"""Address patterns and lookups at their edges: the longest domain, subaddresses with several
tags, a pattern shared by two rules, quoted local parts (found by mutation testing,
``make mutation``)."""

from __future__ import annotations

from bounce_runtime.core.addresses import AddressIndex, address_forms, compile_pattern
from bounce_runtime.core.policy import BouncePolicy


def test_a_domain_of_253_characters_is_the_longest_pattern() -> None:
    longest = ".".join(["a" * 63] * 4)[:253]
    assert len(longest) == 253
    assert compile_pattern(longest) == ("domain", longest)
    assert compile_pattern(longest + "a") is None


def test_a_subdomain_pattern_needs_a_valid_domain() -> None:
    assert compile_pattern("*.example.com") == ("subdomains", "example.com")
    assert compile_pattern("*.exa mple.com") is None
    assert compile_pattern("*.") is None


def test_subaddress_folding_drops_every_tag_and_needs_an_address() -> None:
    fold = {"fold_subaddress": True}
    assert address_forms("User+a+b@Example.com", **fold) == (
        "user+a+b@example.com",
        "user@example.com",
    )
    assert address_forms("user@example.com", **fold) == ("user@example.com",)
    assert address_forms("user+tag", **fold) == ("user+tag",)
    assert address_forms('"a@b"+tag@example.com', **fold) == (
        '"a@b"+tag@example.com',
        '"a@b"@example.com',
    )


def test_a_pattern_in_two_rules_keeps_both() -> None:
    index = AddressIndex()
    index.add("domain", "example.com", 0)
    index.add("domain", "example.com", 3)
    index.add("address", "a@example.org", 1)
    assert index.labels(("x@example.com",)) == {0, 3}
    assert len(index) == 2
    assert index.labels(()) == set()


def test_the_first_of_two_rules_on_one_domain_wins_when_it_matches() -> None:
    policy = BouncePolicy.from_dict(
        {
            "rules": [
                {
                    "match": {"recipients": ["example.com"], "senders": ["*@partner.example"]},
                    "action": {"type": "accept"},
                },
                {"match": {"recipients": ["example.com"]}, "action": {"type": "suppress"}},
            ]
        }
    )
    assert policy.decide("a@example.com", sender="b@partner.example").rule == "rules[0]"
    assert policy.decide("a@example.com", sender="b@other.example").rule == "rules[1]"


def test_a_quoted_local_part_with_an_at_sign_is_looked_up_by_its_domain() -> None:
    policy = BouncePolicy.from_dict(
        {"rules": [{"match": {"recipients": ["example.com"]}, "action": {"type": "accept"}}]}
    )
    assert policy.decide('"a@b"@example.com', sender="s@example.net").rule == "rules[0]"
