"""The address grammar, defined once: a bare address and a host name, ASCII only.

Whatever ``bare_address_problem`` accepts is accepted by the SendBounce request validator and by
botocore; every grammar of the runtime refuses a lookalike letter or digit wherever it stands.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounce_runtime.contract import identity_arn_problem, recipient_key
from bounce_runtime.core.addresses import (
    BARE_ADDRESS_FORM,
    bare_address_problem,
    compile_pattern,
    is_mail_domain,
)
from bounce_runtime.core.dsn import validate_send_bounce_request
from bounce_runtime.core.ownership import owned_recipient_problem
from bounce_runtime.core.vocabulary import (
    extension_name_problem,
    mta_problem,
    status_problem,
)

Accepts = Callable[[Mapping[str, Any]], None]


@pytest.mark.parametrize(
    "address",
    [
        "b@example.com",
        "mailer-daemon@mail.example.co.uk",
        "o'brien+bounces@example.com",
        "a.b.c@xn--bcher-kva.example",
        "!#$%&'*+/=?^_`{|}~-@example.com",
        "x@" + ".".join(["a" * 63] * 3) + ".com",
        "l" * 64 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 57 + ".com",  # 254
    ],
)
def test_a_bare_address_is_accepted(address: str) -> None:
    assert bare_address_problem(address) is None


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("", "has 0 '@'"),
        ("example.com", "has 0 '@'"),
        ("a@b@example.com", "has 2 '@'"),
        ("Bounces <b@example.com>", "has a display name, a space, a control character or angle "
         "brackets"),
        ("<b@example.com>", "has a display name, a space, a control character or angle brackets"),
        ("b@example.com (bounces)", "has a display name, a space, a control character or angle "
         "brackets"),
        ('"b c"@example.com', "has a display name, a space, a control character or angle "
         "brackets"),
        ("b@example.com\n", "has a display name, a space, a control character or angle brackets"),
        ("b\t@example.com", "has a display name, a space, a control character or angle brackets"),
        ("j\u00f6rg@example.com", "has U+00F6 at position 1"),
        ("b@\u212aelvin.example", "has U+212A at position 2"),  # KELVIN SIGN
        ("\u017fales@example.com", "has U+017F at position 0"),  # LONG S
        ("b@ex\udcffample.com", "has U+DCFF at position 4"),  # a lone surrogate
        ("l" * 65 + "@example.com", "has the local part '" + "l" * 65 + "': 1 to 64 characters"),
        (".b@example.com", "has the local part '.b': 1 to 64"),
        ("a..b@example.com", "has the local part 'a..b': 1 to 64"),
        ("b.@example.com", "has the local part 'b.': 1 to 64"),
        ("@example.com", "has the local part '': 1 to 64"),
        ("b@", "has the domain '': a host name is required"),
        ("b@localhost", "has the domain 'localhost': a host name is required"),
        ("b@-example.com", "has the domain '-example.com': a host name is required"),
        ("b@example-.com", "has the domain 'example-.com': a host name is required"),
        ("b@exa_mple.com", "has the domain 'exa_mple.com': a host name is required"),
        ("b@example.com.", "has the domain 'example.com.': a host name is required"),
        ("b@" + "a" * 64 + ".com", "has the domain '" + "a" * 64 + ".com': a host name"),
        ("b@[192.0.2.1]", "has the domain '[192.0.2.1]': a host name is required"),
        ("l" * 64 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 58 + ".com",
         "is 255 characters long, more than the 254 of RFC 5321"),
    ],
)  # fmt: skip
def test_what_is_not_one_bare_address_is_named(address: str, problem: str) -> None:
    found = bare_address_problem(address)
    assert found is not None and found.startswith(problem)
    if not problem.startswith(("has the local part", "has the domain")):  # those say what is
        assert found.endswith(f": {BARE_ADDRESS_FORM}")


def test_a_mail_domain_is_an_ascii_host_name_of_two_labels_or_more() -> None:
    assert is_mail_domain("example.com") and is_mail_domain("xn--bcher-kva.example")
    assert is_mail_domain(".".join(["a" * 63] * 4)[:253].rstrip("."))
    assert not is_mail_domain("a" * 250 + ".com")  # 254 characters
    for domain in ("com", "exämple.com", "\u212aelvin.example", "a..b", "a.-b.com", "", "a b.com"):
        assert not is_mail_domain(domain), domain


_ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
_LABEL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_BARE_ADDRESSES = st.builds(
    lambda atoms, labels: ".".join(atoms) + "@" + ".".join(labels),
    st.lists(st.text(alphabet=_ATEXT, min_size=1, max_size=8), min_size=1, max_size=3),
    st.lists(_LABEL, min_size=2, max_size=4),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=_BARE_ADDRESSES)
def test_every_bare_address_makes_a_request_ses_and_botocore_accept(
    address: str, botocore_accepts: Accepts
) -> None:
    assert bare_address_problem(address) is None
    domain = address.rpartition("@")[2]
    request = {
        "OriginalMessageId": "m1",
        "BounceSender": address,
        "MessageDsn": {"ReportingMta": f"dns; {domain}"},
        "BouncedRecipientInfoList": [{"Recipient": "r@example.com", "BounceType": "Undefined"}],
    }
    validate_send_bounce_request(request)
    botocore_accepts(request)


# Lookalikes: every grammar that checks an address, a host, a status, an extension field name or
# an ARN refuses a non-ASCII character in place of an ASCII one.


# Characters that pass for ASCII ones: by case folding (str.lower/upper/casefold give ASCII), as
# digits (int() reads them), or as compatibility forms (NFKC gives ASCII: fullwidth letters).
def _passes_for_ascii(char: str) -> bool:
    folded = {char.lower(), char.upper(), char.casefold(), unicodedata.normalize("NFKC", char)}
    return any(text.isascii() and text.isalnum() for text in folded) or char.isdigit()


LOOKALIKES = sorted(
    chr(code) for code in range(0x80, 0x10000) if _passes_for_ascii(chr(code))
)  # fmt: skip
VALID: dict[str, tuple[str, Callable[[str], object]]] = {
    "bare address": ("bounces@mail.example.com", bare_address_problem),
    "mail domain": ("mail.example.com", lambda value: not is_mail_domain(value)),
    "policy pattern": ("user@mail.example.com", lambda value: compile_pattern(value) is None),
    "owned recipient": ("user@mail.example.com", owned_recipient_problem),
    "MTA name": ("dns; mail.example.com", mta_problem),
    "RFC 3463 status": ("5.1.1", status_problem),
    "extension field name": ("X-Mail-Team", extension_name_problem),
    "identity ARN": (
        "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
        identity_arn_problem,
    ),
}


def test_the_lookalikes_include_the_known_ones() -> None:
    for char in ("\u212a", "\u017f", "\u0131", "\u0661", "\uff11", "\uff41", "\ufb00"):
        assert char in LOOKALIKES, f"U+{ord(char):04X}"
    assert len(LOOKALIKES) > 500


@settings(max_examples=300)
@given(
    kind=st.sampled_from(sorted(VALID)),
    position=st.integers(min_value=0, max_value=60),
    lookalike=st.sampled_from(LOOKALIKES),
)
def test_a_lookalike_anywhere_is_refused_by_every_grammar(
    kind: str, position: int, lookalike: str
) -> None:
    valid, refuses = VALID[kind]
    assert not refuses(valid)
    index = position % len(valid)
    replaced = valid[:index] + lookalike + valid[index + 1 :]
    inserted = valid[:index] + lookalike + valid[index:]
    assert refuses(replaced), (kind, replaced)
    assert refuses(inserted), (kind, inserted)


def test_lookup_keys_lowercase_ascii_only() -> None:
    assert recipient_key("User@Example.COM") == "user@example.com"
    assert recipient_key("x@\u212aelvin.Example") == "x@\u212aelvin.example"  # not "kelvin"
    assert recipient_key("\u0130@EXAMPLE.com") == "\u0130@example.com"
