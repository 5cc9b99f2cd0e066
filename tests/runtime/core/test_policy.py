"""The bounce policy: validation messages, JSON round trip, and the recipient matcher."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from bounce_runtime.core.policy import (
    AcceptAction,
    BounceAction,
    BouncePolicy,
    DsnFields,
    Guards,
    PolicyMatch,
    SuppressAction,
    default_policy,
)
from bounce_runtime.core.vocabulary import BOUNCE_TYPE_DEFAULTS
from bounce_runtime.errors import PolicyError

EXAMPLE: dict[str, Any] = {
    "version": 1,
    "rules": [
        {
            "name": "retired-sales",
            "match": {
                "recipients": ["sales@example.com", "*.old.example.com", "old.example.com"],
                "senders": ["*@partner.example"],
                "min_size_bytes": 10485760,
                "verdicts": {"spam": ["FAIL"]},
            },
            "action": {"type": "bounce", "bounce_type": "MessageTooLarge"},
        },
        {"match": {"recipients": ["ok@example.com"]}, "action": {"type": "accept"}},
        {
            "match": {"recipients": ["quiet@example.com"]},
            "action": {"type": "suppress", "reason": "legal-hold"},
        },
        {
            "match": {"recipients": ["x@example.com"]},
            "action": {
                "type": "bounce",
                "dsn": {
                    "action": "failed",
                    "status": "5.7.1",
                    "diagnostic_code": "smtp; 550 5.7.1 Relaying denied",
                    "remote_mta": "dns; mx.example.com",
                    "last_attempt_date": "receipt",
                    "extension_fields": {"X-Policy": "p1"},
                },
            },
        },
    ],
    "default": {"type": "bounce", "bounce_type": "DoesNotExist"},
    "fold_subaddress": False,
    "message": {
        "explanation": "This address no longer receives mail.",
        "reporting_mta": "dns; mail.example.com",
        "extension_fields": {"X-Team": "ops"},
    },
    "guards": {
        "null_sender": True,
        "auto_submitted": True,
        "list_traffic": True,
        "failed_authentication": True,
        "spam_or_virus": True,
        "unauthenticated_sender": True,
        "sender_authentication": ["spf"],
    },
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """A copy of EXAMPLE with the dotted ``path`` (list indexes as numbers) set to ``value``."""
    data = copy.deepcopy(EXAMPLE)
    keys: list[Any] = [int(key) if key.isdigit() else key for key in path.split(".")]
    target: Any = data
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return data


def test_bounce_type_defaults_table() -> None:
    table = {
        name: (entry.status, entry.smtp_code, entry.action)
        for name, entry in BOUNCE_TYPE_DEFAULTS.items()
    }
    assert table == {
        "DoesNotExist": ("5.1.1", 550, "failed"),
        "MessageTooLarge": ("5.3.4", 552, "failed"),
        "ExceededQuota": ("5.2.2", 552, "failed"),
        "ContentRejected": ("5.7.1", 550, "failed"),
        "Undefined": ("5.0.0", 554, "failed"),
        "TemporaryFailure": ("4.0.0", 450, "delayed"),
    }
    assert (
        BOUNCE_TYPE_DEFAULTS["DoesNotExist"].diagnostic_code
        == "smtp; 550 5.1.1 mailbox does not exist"
    )


def test_default_policy() -> None:
    policy = default_policy()
    assert policy == BouncePolicy.from_dict({})
    assert policy.to_dict() == {
        "version": 1,
        "rules": [],
        "default": {"type": "bounce", "bounce_type": "DoesNotExist"},
        "fold_subaddress": False,
        "message": {},
        "guards": {
            "null_sender": True,
            "auto_submitted": True,
            "list_traffic": True,
            "failed_authentication": True,
            "spam_or_virus": True,
            "unauthenticated_sender": True,
            "sender_authentication": ["spf"],
        },
    }
    assert policy.decide("anyone@anywhere.example", sender="s@example.net") == PolicyMatch(
        BounceAction("DoesNotExist"), "default"
    )
    assert policy.needs_object_size is False


def test_example_parses_and_round_trips_through_json() -> None:
    policy = BouncePolicy.from_dict(EXAMPLE)
    assert policy.rules[0].label == "retired-sales"
    assert policy.rules[1].label == "rules[1]"
    assert policy.rules[2].action == SuppressAction("legal-hold")
    assert policy.rules[3].action == BounceAction(
        "DoesNotExist",
        DsnFields(
            action="failed",
            status="5.7.1",
            diagnostic_code="smtp; 550 5.7.1 Relaying denied",
            remote_mta="dns; mx.example.com",
            last_attempt_date="receipt",
            extension_fields=(("X-Policy", "p1"),),
        ),
    )
    assert policy.message.extension_fields == (("X-Team", "ops"),)
    assert policy.guards == Guards()
    assert policy.needs_object_size is True
    assert policy.pattern_count() == 7
    serialised = json.loads(json.dumps(policy.to_dict()))
    assert BouncePolicy.from_dict(serialised) == policy
    assert serialised["rules"][0] == EXAMPLE["rules"][0]


def test_from_json_rejects_invalid_json() -> None:
    with pytest.raises(PolicyError) as caught:
        BouncePolicy.from_json("{")
    assert str(caught.value) == (
        "policy: not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))"
    )


BOUNCE_TYPE_LIST = (
    "DoesNotExist, MessageTooLarge, ExceededQuota, ContentRejected, Undefined, TemporaryFailure"
)
PATTERN_HELP = "use user@example.com, example.com, *.example.com or *@example.com"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "policy: [] is not an object"),
        (
            {"rule": []},
            "policy: 'rule' is not a field; allowed: version, rules, default, "
            "fold_subaddress, message, guards",
        ),
        ({"version": 2}, "version: 2 is not a supported policy version (1)"),
        ({"rules": {}}, "rules: {} is not a list of rules"),
        (
            with_change("rules.2.action.bounce_type", "Gone"),
            "rules[2].action: 'bounce_type' is not a field; allowed: type, reason",
        ),
        (
            with_change("rules.0.action.bounce_type", "Gone"),
            f"rules[0].action.bounce_type: 'Gone' is not one of {BOUNCE_TYPE_LIST}",
        ),
        (
            with_change("rules.1.action.type", "drop"),
            "rules[1].action.type: 'drop' is not one of bounce, accept, suppress",
        ),
        (
            with_change("rules.2.action.reason", "Legal Hold"),
            "rules[2].action.reason: 'Legal Hold' is not a reason code: 1 to 64 characters of "
            "a-z, 0-9 and single dashes, such as legal-hold",
        ),
        (
            with_change("rules.0.match.recipients.1", "sales-*@example.com"),
            f"rules[0].match.recipients[1]: 'sales-*@example.com' is not a pattern: {PATTERN_HELP}",
        ),
        (
            with_change("rules.0.match.recipients", []),
            "rules[0].match.recipients: [] is not a non-empty list of patterns "
            "(user@example.com, example.com, *.example.com or *@example.com)",
        ),
        (
            with_change("rules.0.match.senders.0", "bad..domain"),
            f"rules[0].match.senders[0]: 'bad..domain' is not a pattern: {PATTERN_HELP}",
        ),
        (
            with_change("rules.0.match.recipient", ["x@example.com"]),
            "rules[0].match: 'recipient' is not a field; allowed: recipients, senders, "
            "min_size_bytes, max_size_bytes, verdicts",
        ),
        (
            with_change("rules.0.match.min_size_bytes", -1),
            "rules[0].match.min_size_bytes: -1 is not a whole number of bytes from 0 to "
            "9007199254740991",
        ),
        (  # past JSON's exact integers; too long even for repr (CPython's 4,300-digit limit)
            with_change("rules.0.match.max_size_bytes", 10**5000),
            "rules[0].match.max_size_bytes: <an integer of about 5000 digits> is not a whole "
            "number of bytes from 0 to 9007199254740991",
        ),
        (
            with_change("rules.0.match.max_size_bytes", 10),
            "rules[0].match.max_size_bytes: 10 is less than min_size_bytes (10485760)",
        ),
        (
            with_change("rules.0.match.verdicts", {"spam": ["BAD"]}),
            "rules[0].match.verdicts.spam[0]: 'BAD' is not one of PASS, FAIL, GRAY, "
            "PROCESSING_FAILED",
        ),
        (
            with_change("rules.0.match.verdicts", {"smap": ["FAIL"]}),
            "rules[0].match.verdicts: 'smap' is not a field; allowed: spam, virus, spf, dkim, "
            "dmarc",
        ),
        (
            with_change("rules.1.name", "retired-sales"),
            "rules[1].name: 'retired-sales' is already the name of an earlier rule",
        ),
        (
            with_change("rules.1.name", "has space"),
            "rules[1].name: 'has space' is not a rule name: 1 to 64 characters of A-Z, a-z, "
            "0-9, '.', '_' and '-', starting with a letter or digit",
        ),
        ({"rules": [{"match": {}}]}, "rules[0].action: missing; every rule needs an action"),
        (
            with_change("rules.3.action.dsn.status", "5.1"),
            "rules[3].action.dsn.status: '5.1' is not an RFC 3463 status: class.subject.detail, "
            "class 2, 4 or 5, e.g. 5.1.1",
        ),
        (
            with_change("rules.3.action.dsn.status", "4.2.2"),
            "rules[3].action.dsn.status: '4.2.2' does not fit action 'failed': failed needs a "
            "5.x.x status, delayed 4.x.x, delivered, relayed and expanded 2.x.x",
        ),
        (
            {"default": {"type": "bounce", "dsn": {"action": "delayed"}}},
            "default.dsn.action: 'delayed' does not fit status '5.1.1' of bounce type "
            "DoesNotExist: set dsn.status too",
        ),
        (
            with_change("rules.3.action.dsn.action", "bounced"),
            "rules[3].action.dsn.action: 'bounced' is not one of failed, delayed, delivered, "
            "relayed, expanded",
        ),
        (
            with_change("rules.3.action.dsn.remote_mta", "mx.example.com"),
            "rules[3].action.dsn.remote_mta: 'mx.example.com' is not an MTA name of the form "
            "'dns; mail.example.com' (an ASCII host name of at most 253 characters)",
        ),
        (
            with_change("rules.3.action.dsn.diagnostic_code", "550 no\r\nBcc: x"),
            "rules[3].action.dsn.diagnostic_code: '550 no\\r\\nBcc: x' must not contain CR, LF "
            "or other control characters",
        ),
        (
            with_change("rules.3.action.dsn.diagnostic_code", "550 5.1.1 no"),
            "rules[3].action.dsn.diagnostic_code: '550 5.1.1 no' is not a diagnostic code of the "
            "form 'smtp; 550 5.1.1 text'",
        ),
        (
            with_change("rules.3.action.dsn.last_attempt_date", "2024-01-01"),
            "rules[3].action.dsn.last_attempt_date: '2024-01-01' is not one of mail, receipt",
        ),
        (
            with_change("rules.3.action.dsn.extension_fields", {"X_Policy": "p1"}),
            "rules[3].action.dsn.extension_fields: 'X_Policy' is not an extension field name: "
            "1 to 50 characters of A-Z, a-z, 0-9 and -",
        ),
        (
            with_change("message.extension_fields", {"X-" + "a" * 49: "v"}),
            "message.extension_fields: 'X-" + "a" * 49 + "' is not an extension field name: "
            "1 to 50 characters of A-Z, a-z, 0-9 and -",
        ),
        (
            with_change("message.extension_fields", {"X-Team": "a" * 2049}),
            "message.extension_fields.X-Team: '"
            + "a" * 76
            + "... is 2049 characters long: at most 2048 are allowed",
        ),
        (
            with_change("message.extension_fields", {"X-Team": "ops\nBcc: x"}),
            "message.extension_fields.X-Team: 'ops\\nBcc: x' contains CR or LF, which extension "
            "field values must not",
        ),
        (
            with_change("message.extension_fields", {"X-Team": 7}),
            "message.extension_fields.X-Team: 7 is not a string",
        ),
        (
            with_change("message.reporting_mta", "dns;"),
            "message.reporting_mta: 'dns;' is not an MTA name of the form 'dns; mail.example.com' "
            "(an ASCII host name of at most 253 characters)",
        ),
        (
            with_change("message.explanation", "bye\x07"),
            "message.explanation: 'bye\\x07' contains control characters; only newline and tab "
            "are allowed",
        ),
        (
            with_change("message.explanation", ""),
            "message.explanation: '' is not a non-empty string",
        ),
        (
            with_change("guards.null_sender", "no"),
            "guards.null_sender: 'no' is not true or false",
        ),
        (
            with_change("guards.spam", False),
            "guards: 'spam' is not a field; allowed: null_sender, auto_submitted, list_traffic, "
            "failed_authentication, spam_or_virus, unauthenticated_sender, sender_authentication",
        ),
        (
            with_change("guards.unauthenticated_sender", None),
            "guards.unauthenticated_sender: None is not true or false",
        ),
        (
            with_change("guards.sender_authentication", []),
            "guards.sender_authentication: [] is not a non-empty list of spf, dkim, dmarc",
        ),
        (
            with_change("guards.sender_authentication", "spf"),
            "guards.sender_authentication: 'spf' is not a non-empty list of spf, dkim, dmarc",
        ),
        (
            with_change("guards.sender_authentication", ["spf", "arc"]),
            "guards.sender_authentication[1]: 'arc' is not one of spf, dkim, dmarc",
        ),
        (
            with_change("guards.sender_authentication", ["SPF"]),
            "guards.sender_authentication[0]: 'SPF' is not one of spf, dkim, dmarc",
        ),
        (
            with_change("guards.sender_authentication", ["dkim", "spf", "dkim"]),
            "guards.sender_authentication[2]: 'dkim' is listed twice",
        ),
        (with_change("fold_subaddress", 1), "fold_subaddress: 1 is not true or false"),
    ],
)
def test_invalid_policy_messages(data: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        BouncePolicy.from_dict(data)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_sender_authentication_is_read_and_written_back() -> None:
    policy = BouncePolicy.from_dict(
        {"guards": {"unauthenticated_sender": True, "sender_authentication": ["dkim", "spf"]}}
    )
    assert policy.guards == Guards(sender_authentication=("dkim", "spf"))
    assert policy.to_dict()["guards"]["sender_authentication"] == ["dkim", "spf"]
    assert BouncePolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    assert BouncePolicy.from_dict({}).guards.sender_authentication == ("spf",)
    off = BouncePolicy.from_dict({"guards": {"unauthenticated_sender": False}})
    assert off.guards == Guards(unauthenticated_sender=False)


def test_guards_can_be_turned_off_one_by_one() -> None:
    policy = BouncePolicy.from_dict({"guards": {"list_traffic": False}})
    assert policy.guards == Guards(list_traffic=False)
    assert policy.guards.reads_headers is True
    assert (
        BouncePolicy.from_dict(
            {"guards": {"auto_submitted": False, "list_traffic": False}}
        ).guards.reads_headers
        is False
    )


MATCHER = BouncePolicy.from_dict(
    {
        "rules": [
            {
                "name": "exact",
                "match": {"recipients": ["Sales@Example.com"]},
                "action": {"type": "accept"},
            },
            {
                "name": "apex",
                "match": {"recipients": ["old.example.com"]},
                "action": {"type": "suppress"},
            },
            {
                "name": "subdomains",
                "match": {"recipients": ["*.old.example.com"]},
                "action": {"type": "bounce", "bounce_type": "Undefined"},
            },
            {
                "name": "local-wildcard",
                "match": {"recipients": ["*@retired.example"]},
                "action": {"type": "bounce", "bounce_type": "ExceededQuota"},
            },
            {
                "name": "later-exact",
                "match": {"recipients": ["sales@example.com", "team@example.com"]},
                "action": {"type": "bounce", "bounce_type": "ContentRejected"},
            },
        ],
        "default": {"type": "accept"},
    }
)


@pytest.mark.parametrize(
    ("recipient", "rule"),
    [
        ("sales@example.com", "exact"),
        ("SALES@EXAMPLE.COM", "exact"),
        ("team@Example.Com", "later-exact"),
        ("sales+news@example.com", "default"),
        ("anyone@old.example.com", "apex"),
        ("anyone@mx.old.example.com", "subdomains"),
        ("anyone@a.b.c.old.example.com", "subdomains"),
        ("anyone@notold.example.com", "default"),
        ("x@retired.example", "local-wildcard"),
        ("x@sub.retired.example", "default"),
        ("no-at-sign", "default"),
    ],
)
def test_matcher_picks_the_first_matching_rule(recipient: str, rule: str) -> None:
    assert MATCHER.decide(recipient, sender="s@example.net").rule == rule


def test_subaddress_folding() -> None:
    data = {
        "rules": [
            {"match": {"recipients": ["sales@example.com"]}, "action": {"type": "accept"}},
            {"match": {"recipients": ["sales+vip@example.com"]}, "action": {"type": "suppress"}},
        ],
        "fold_subaddress": True,
    }
    policy = BouncePolicy.from_dict(data)
    assert policy.decide("Sales+Promo@example.com", sender="").rule == "rules[0]"
    assert policy.decide("sales+vip@example.com", sender="").rule == "rules[0]"
    assert policy.decide("+tag@example.com", sender="").rule == "default"
    unfolded = BouncePolicy.from_dict({**data, "fold_subaddress": False})
    assert unfolded.decide("sales+promo@example.com", sender="").rule == "default"
    assert unfolded.decide("sales+vip@example.com", sender="").rule == "rules[1]"


def test_sender_size_and_verdict_conditions_all_must_hold() -> None:
    policy = BouncePolicy.from_dict(EXAMPLE)
    verdicts = {"spam": "FAIL"}
    big = 10485760
    hit = policy.decide(
        "sales@example.com", sender="a@partner.example", object_size=big, verdicts=verdicts
    )
    assert hit == PolicyMatch(BounceAction("MessageTooLarge"), "retired-sales")
    for sender, size, spam in [
        ("a@other.example", big, "FAIL"),
        ("", big, "FAIL"),
        ("a@partner.example", big - 1, "FAIL"),
        ("a@partner.example", None, "FAIL"),
        ("a@partner.example", big, "PASS"),
        ("a@partner.example", big, None),
    ]:
        found = policy.decide(
            "sales@example.com", sender=sender, object_size=size, verdicts={"spam": spam}
        )
        assert found.rule == "default", (sender, size, spam)


def test_max_size_and_rule_without_recipients() -> None:
    policy = BouncePolicy.from_dict(
        {
            "rules": [
                {"match": {"max_size_bytes": 100}, "action": {"type": "accept"}},
                {
                    "match": {"verdicts": {"virus": ["FAIL", "GRAY"]}},
                    "action": {"type": "suppress", "reason": "virus"},
                },
            ]
        }
    )
    assert policy.decide("a@b.example", sender="s@x", object_size=100).action == AcceptAction()
    assert policy.decide(
        "a@b.example", sender="s@x", object_size=101, verdicts={"virus": "GRAY"}
    ).action == SuppressAction("virus")
    assert policy.decide("a@b.example", sender="s@x", object_size=101).rule == "default"


def test_one_hundred_thousand_patterns_evaluate_in_constant_time() -> None:
    addresses = [f"user{number}@example.com" for number in range(50_000)]
    domains = [f"dept{number}.example.org" for number in range(25_000)]
    wildcards = [f"*.region{number}.example.net" for number in range(25_000)]
    policy = BouncePolicy.from_dict(
        {
            "rules": [
                {"match": {"recipients": addresses + domains}, "action": {"type": "accept"}},
                {"match": {"recipients": wildcards}, "action": {"type": "suppress"}},
            ]
        }
    )
    assert policy.pattern_count() == 100_000
    assert policy.decide("USER49999@example.com", sender="s@x").rule == "rules[0]"
    assert policy.decide("someone@dept24999.example.org", sender="s@x").rule == "rules[0]"
    assert policy.decide("someone@mx.region7.example.net", sender="s@x").rule == "rules[1]"
    assert policy.decide("user50000@example.com", sender="s@x").rule == "default"
    lookups = [f"user{number * 7}@example.com" for number in range(2_000)]
    lookups += [f"nobody@a.b.c.region{number}.example.net" for number in range(2_000)]
    started = time.perf_counter()
    for recipient in lookups:
        policy.decide(recipient, sender="s@x")
    elapsed = time.perf_counter() - started
    # A scan over 100,000 patterns would take seconds for 4,000 lookups; dict lookups take ms.
    assert elapsed < 1.0, f"{len(lookups)} lookups took {elapsed:.3f}s"
