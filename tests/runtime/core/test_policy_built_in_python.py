"""BouncePolicy built in Python: bad patterns named by their rule, immutable, hashed by its
settings, and senders folded like recipients (found by mutation testing, ``make mutation``)."""

from __future__ import annotations

import pytest

from bounce_runtime.core.addresses import AddressIndex
from bounce_runtime.core.policy import AcceptAction, BouncePolicy, Rule, RuleMatch
from bounce_runtime.errors import PolicyError

PATTERN_FORMS = "user@example.com, example.com, *.example.com or *@example.com"


@pytest.mark.parametrize("field", ["recipients", "senders"])
def test_a_bad_pattern_in_a_rule_built_in_python_is_named(field: str) -> None:
    match = RuleMatch(**{field: ["example.com", "not a pattern"]})
    rules = (Rule(RuleMatch(), AcceptAction()), Rule(match, AcceptAction()))
    with pytest.raises(PolicyError) as raised:
        BouncePolicy(rules)
    assert str(raised.value) == (
        f"rules[1].match.{field}[1]: 'not a pattern' is not a pattern: use {PATTERN_FORMS}"
    )


def test_indexes_must_come_one_per_rule() -> None:
    policy = BouncePolicy()
    with pytest.raises(ValueError) as raised:
        BouncePolicy.with_indexes(
            (Rule(RuleMatch(), AcceptAction()),),
            policy.default,
            False,
            policy.message,
            policy.guards,
            recipient_index=AddressIndex(),
            sender_indexes=[None, None],
        )
    assert str(raised.value) == "2 sender indexes for 1 rules"


def test_a_policy_cannot_be_changed() -> None:
    policy = BouncePolicy()
    with pytest.raises(AttributeError) as raised:
        del policy.rules
    assert str(raised.value) == "BouncePolicy is immutable: cannot delete 'rules'"
    with pytest.raises(AttributeError) as raised:
        policy.rules = ()
    assert str(raised.value) == "BouncePolicy is immutable: cannot set 'rules'"


def test_policies_hash_by_their_settings() -> None:
    policies = [
        BouncePolicy(),
        BouncePolicy(fold_subaddress=True),
        BouncePolicy.from_dict({"default": {"type": "accept"}}),
    ]
    assert len({hash(policy) for policy in policies}) == 3
    assert hash(BouncePolicy.from_dict({"fold_subaddress": True})) == hash(policies[1])


def test_a_sender_is_folded_like_a_recipient() -> None:
    policy = BouncePolicy.from_dict(
        {
            "fold_subaddress": True,
            "rules": [{"match": {"senders": ["news@example.net"]}, "action": {"type": "accept"}}],
        }
    )
    assert policy.decide("a@example.com", sender="news+may@example.net").rule == "rules[0]"
