"""The DSN vocabulary's checks accept ASCII only (no lookalike digits or letters reach the wire),
text that UTF-8 can encode, and sizes within their bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bounce_runtime.contract import identity_arn_problem
from bounce_runtime.core.addresses import compile_pattern
from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.core.vocabulary import (
    diagnostic_problem,
    explanation_problem,
    extension_name_problem,
    extension_value_problem,
    mta_problem,
    status_problem,
    unicode_problem,
)
from bounce_runtime.errors import PolicyError


@pytest.mark.parametrize(
    "status",
    [
        "5.\u0661.\u0661",  # ARABIC-INDIC DIGIT ONE
        "5.1.\uff11",  # FULLWIDTH DIGIT ONE
        "\u0665.1.1",
    ],
)
def test_a_status_with_non_ascii_digits_is_refused(status: str) -> None:
    assert status_problem(status) is not None
    assert status_problem("5.1.1") is None


@pytest.mark.parametrize(
    "mta",
    [
        "dns; mail.\u212aelvin.example",  # KELVIN SIGN folds to k under Unicode rules
        "dns; \u017fmtp.example",  # LATIN SMALL LETTER LONG S folds to s
        "DNS; mail.\u0131.example",  # dotless i
    ],
)
def test_an_mta_name_with_lookalike_letters_is_refused(mta: str) -> None:
    assert mta_problem(mta) is not None
    assert mta_problem("DNS; Mail.Kelvin.example") is None


def test_diagnostic_and_extension_names_are_ascii() -> None:
    assert diagnostic_problem("\u017fmtp; 550 5.1.1 gone") is not None
    assert diagnostic_problem("smtp; 550 5.1.1 gone, jürgen") is None  # free text may be Unicode
    assert extension_name_problem("X-\u212a") is not None


@pytest.mark.parametrize("pattern", ["jürgen@example.com", "exämple.com", "*.exämple.com"])
def test_address_patterns_are_ascii(pattern: str) -> None:
    assert compile_pattern(pattern) is None
    with pytest.raises(
        PolicyError, match=r"rules\[0\]\.match\.recipients\[0\]: .* is not a pattern"
    ):
        BouncePolicy.from_dict(
            {"rules": [{"match": {"recipients": [pattern]}, "action": {"type": "accept"}}]}
        )
    assert compile_pattern("xn--exmple-cua.com") == ("domain", "xn--exmple-cua.com")


def test_a_policy_status_with_non_ascii_digits_is_refused_at_synth() -> None:
    with pytest.raises(PolicyError, match="is not an RFC 3463 status"):
        BouncePolicy.from_dict(
            {"default": {"type": "bounce", "dsn": {"status": "5.\u0661.\u0661"}}}
        )


def test_a_diagnostic_code_fits_one_rfc_5322_line_with_its_field_name() -> None:
    longest = "smtp; 550 5.1.1 " + "x" * (981 - len("smtp; 550 5.1.1 "))
    assert len(f"Diagnostic-Code: {longest}") == 998
    assert diagnostic_problem(longest) is None
    assert diagnostic_problem(longest + "x") == (
        "is 982 characters long: at most 981 are allowed (one 998-character line of RFC 5322 "
        "with 'Diagnostic-Code: ')"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (("x" * 99 + "\n") * 100, None),  # 10,000 characters
        (("x" * 99 + "\n") * 100 + "x", "is 10001 characters long: at most 10000 are allowed"),
        ("\n".join(["y" * 998] * 3), None),
        ("short\n" + "y" * 999, "has a line of 999 characters: at most 998 are allowed (RFC 5322 "
         "2.1.1)"),
        ("a\u2028b", "contains control characters; only newline and tab are allowed"),
        ("a\x85b", "contains control characters; only newline and tab are allowed"),
        ("gone\ud800", "contains a lone surrogate (U+D800), not valid Unicode"),
        ("J\u00fcrgen is gone.\n\tSorry.", None),
    ],
)  # fmt: skip
def test_the_explanation_is_bounded_and_encodable(text: str, problem: str | None) -> None:
    assert explanation_problem(text) == problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ascii", None),
        ("caf\u00e9 \U0001f600", None),
        ("\ud800", "contains a lone surrogate (U+D800), not valid Unicode"),
        ("ok \udcff", "contains a lone surrogate (U+DCFF), not valid Unicode"),
    ],
)
def test_text_must_encode_as_utf8(text: str, problem: str | None) -> None:
    assert unicode_problem(text) == problem
    assert extension_value_problem(text) == problem
    assert diagnostic_problem(f"smtp; 550 {text}") == problem


@pytest.mark.parametrize(
    ("policy", "path"),
    [
        ({"message": {"explanation": "gone\ud800"}}, "message.explanation"),
        ({"message": {"extension_fields": {"X-A": "\udcff"}}}, "message.extension_fields.X-A"),
        (
            {"default": {"type": "bounce", "dsn": {"diagnostic_code": "smtp; 550 \ud800"}}},
            "default.dsn.diagnostic_code",
        ),
    ],
)
def test_a_policy_with_a_lone_surrogate_is_refused_naming_the_field(
    policy: dict[str, Any], path: str
) -> None:
    # compile_policy used to fail on it with a UnicodeEncodeError at synth; the runtime's botocore
    # after the send claim.
    with pytest.raises(PolicyError) as raised:
        BouncePolicy.from_dict(policy)
    assert str(raised.value).startswith(f"{path}: ")
    assert "contains a lone surrogate (U+D" in str(raised.value)
    with pytest.raises(PolicyError, match="lone surrogate"):
        BouncePolicy.from_json(json.dumps(policy))  # "\\ud800" escapes: valid JSON, not Unicode


def test_identity_arns_are_ascii_and_bounded() -> None:
    arn = "arn:aws:ses:eu-west-1:123456789012:identity/"
    assert identity_arn_problem(arn + "example.com") is None
    assert identity_arn_problem(arn + "x" * 320) is None
    assert identity_arn_problem(arn + "x" * 321) is not None
    assert (
        identity_arn_problem("arn:aws:ses:eu-west-1:\u0661" + "1" * 11 + ":identity/x") is not None
    )
    assert identity_arn_problem(arn + "\u212aelvin.example") is not None
