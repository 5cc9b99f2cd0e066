"""What this processor owns: its receipt rule's recipients and the mail objects its rule writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bounce_runtime.core.notification import ReceivedNotification, parse_notification_body
from bounce_runtime.core.ownership import OwnedRecipients, mail_object_problem
from support.events import BUCKET, MESSAGE_ID, OBJECT_KEY_PREFIX, notification

OWNED = OwnedRecipients.of(["Example.com", "Sales@Other.example"])


def parsed(**fields: Any) -> ReceivedNotification:
    return parse_notification_body(json.dumps(notification(**fields)))


@pytest.mark.parametrize(
    ("recipient", "owned"),
    [
        ("a@example.com", True),
        ("A@EXAMPLE.COM", True),
        ("sales@other.example", True),
        ("SALES@other.EXAMPLE", True),
        ("bob@other.example", False),
        ("victim@third-party.example", False),
        ("a@sub.example.com", False),  # a domain matches its addresses, not its subdomains
        ("a@example.com.evil.example", False),
        ("a@evilexample.com", False),
        ("example.com", False),
        ("@example.com", False),
        ("a@", False),
        ("a@b@example.com", False),
        ("", False),
    ],
)
def test_a_recipient_is_owned_as_ses_matches_it(recipient: str, owned: bool) -> None:
    assert OWNED.owns(recipient) is owned


def test_what_the_construct_accepts_is_accepted() -> None:
    # The construct's check is the gate (an entry refused here would stop every invocation).
    owned = OwnedRecipients.of(["o'brien+x@example.com", "xn--bcher-kva.example"])
    assert owned.owns("O'Brien+X@example.com")
    assert owned.owns("a@xn--bcher-kva.example")


@pytest.mark.parametrize(
    "recipient",
    [
        "x@\u212aelvin.example",  # KELVIN SIGN: str.lower() makes it k
        "x@KELVIN.EXAMPLE".replace("K", "\u212a"),
        "\u017fales@other.example",  # LONG S: casefold() makes it s
        "x@kelv\u0130n.example",  # I WITH DOT ABOVE: lower() makes it i + a combining dot
    ],
)
def test_a_lookalike_recipient_is_not_owned(recipient: str) -> None:
    owned = OwnedRecipients.of(["kelvin.example", "sales@other.example"])
    assert not owned.owns(recipient)
    assert owned.owns("x@KELVIN.example")


@pytest.mark.parametrize(
    "entry", ["\u212aelvin.example", "j\u00f6rg@example.com", "b\udcff.example"]
)
def test_an_owned_recipient_that_is_not_ascii_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"^\[0\] .* is not a domain \(example.com\)"):
        OwnedRecipients.of([entry])


def test_owned_recipients_are_kept_as_lookup_keys() -> None:
    assert (
        OwnedRecipients(
            addresses=frozenset({"sales@other.example"}), domains=frozenset({"example.com"})
        )
        == OWNED
    )


@pytest.mark.parametrize(
    ("recipients", "message"),
    [
        ([""], "[0] '' is not a domain (example.com) or an address (user@example.com)"),
        (["a.example", 7], "[1] 7 is not a domain (example.com) or an address (user@example.com)"),
        (["a b.example"], "[0] 'a b.example' is not"),
        (["@example.com"], "[0] '@example.com' is not"),
        (["a@b@example.com"], "[0] 'a@b@example.com' is not"),
        (["*.example.com"], "[0] '*.example.com' is not"),
        (["a\u2003b.example"], "[0] 'a\\u2003b.example' is not"),  # an em space
        (["a@b.example\n"], "[0] 'a@b.example\\n' is not"),
    ],
)
def test_a_bad_owned_recipient_is_named(recipients: list[Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        OwnedRecipients.of(recipients)
    assert str(raised.value).startswith(message)


def test_the_object_ses_wrote_is_owned() -> None:
    assert mail_object_problem(parsed(), bucket=BUCKET, prefix=OBJECT_KEY_PREFIX) is None
    no_prefix = parsed(object_key=MESSAGE_ID)
    assert mail_object_problem(no_prefix, bucket=BUCKET, prefix="") is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"bucket": "someone-elses-bucket"},
            "receipt.action.bucketName 'someone-elses-bucket' is not this processor's bucket "
            f"'{BUCKET}'",
        ),
        (
            {"bucket": BUCKET.upper()},
            f"receipt.action.bucketName '{BUCKET.upper()}' is not this processor's bucket",
        ),
        (
            {"object_key": "payroll/" + MESSAGE_ID},
            f"receipt.action.objectKey 'payroll/{MESSAGE_ID}' is not "
            f"'{OBJECT_KEY_PREFIX}{MESSAGE_ID}' (this processor's prefix + mail.messageId, the "
            "key SES writes)",
        ),
        ({"object_key": MESSAGE_ID}, f"receipt.action.objectKey '{MESSAGE_ID}' is not"),
        (
            {"object_key": f"{OBJECT_KEY_PREFIX}../payroll/{MESSAGE_ID}"},
            "receipt.action.objectKey 'inbound/../payroll/",
        ),
        (
            {"object_key": OBJECT_KEY_PREFIX + "another-message"},
            "receipt.action.objectKey 'inbound/another-message' is not",
        ),
        ({"object_key": OBJECT_KEY_PREFIX}, "receipt.action.objectKey 'inbound/' is not"),
        (
            {"message_id": "../payroll/x", "object_key": OBJECT_KEY_PREFIX + "../payroll/x"},
            "mail.messageId '../payroll/x' is not an SES message id",
        ),
        (
            {"message_id": "a/b", "object_key": OBJECT_KEY_PREFIX + "a/b"},
            "mail.messageId 'a/b' is not an SES message id",
        ),
        (
            {"message_id": "..", "object_key": OBJECT_KEY_PREFIX + ".."},
            "mail.messageId '..' is not an SES message id",
        ),
        (
            {"message_id": "m\u0661", "object_key": OBJECT_KEY_PREFIX + "m\u0661"},
            "mail.messageId 'm\u0661' is not an SES message id",
        ),
    ],
)
def test_a_foreign_mail_object_is_named(fields: dict[str, Any], problem: str) -> None:
    found = mail_object_problem(parsed(**fields), bucket=BUCKET, prefix=OBJECT_KEY_PREFIX)
    assert found is not None
    assert found.startswith(problem)


def test_the_plan_suppresses_a_recipient_the_rule_does_not_own_whatever_the_policy_says() -> None:
    from datetime import UTC, datetime

    from bounce_runtime.core.decision import RecipientDecision, plan_message
    from bounce_runtime.core.policy import BounceAction, BouncePolicy

    policy = BouncePolicy.from_dict(
        {"rules": [{"match": {"recipients": ["victim@third-party.example"]},
                    "action": {"type": "bounce", "bounce_type": "MessageTooLarge"}}]}
    )  # fmt: skip
    message = parsed(recipients=["victim@third-party.example", "a@example.com"])
    now = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    plan = plan_message(message, policy, now=now, owned=OWNED)
    assert plan.decisions == (
        RecipientDecision(
            "victim@third-party.example", "suppress", "not-owned", "receipt-rule-recipients"
        ),
        RecipientDecision("a@example.com", "bounce", "default-rule", "default", BounceAction()),
    )
    assert plan.outcome == "bounce"
    only_foreign = parsed(recipients=["victim@third-party.example"])
    assert plan_message(only_foreign, policy, now=now, owned=OWNED).outcome == "suppress"
    assert plan_message(only_foreign, policy, now=now).outcome == "bounce"  # no check: local use
