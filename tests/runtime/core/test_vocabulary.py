"""The DSN vocabulary's checks accept ASCII only: no lookalike digits or letters reach the wire."""

from __future__ import annotations

import pytest

from bounce_runtime.core.addresses import compile_pattern
from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.core.vocabulary import (
    diagnostic_problem,
    extension_name_problem,
    mta_problem,
    status_problem,
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
