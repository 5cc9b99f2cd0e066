"""The guards table is the one place a guard is declared: the policy's names, the ``Guards``
fields, ``reads_headers`` and the reasons all follow it."""

from __future__ import annotations

import itertools

from bounce_runtime import contract
from bounce_runtime.core.guards import GUARDS, HEADER_GUARD_NAMES
from bounce_runtime.core.policy import GUARD_NAMES, Guards
from bounce_runtime.core.policy_json import parse_policy


def test_the_policy_names_and_the_guards_fields_are_the_table_s() -> None:
    assert tuple(guard.name for guard in GUARDS) == GUARD_NAMES
    assert Guards._fields == (*GUARD_NAMES, "sender_authentication")
    assert all(getattr(Guards(), name) is True for name in GUARD_NAMES)  # each on by default


def test_every_guard_reason_is_a_contract_reason() -> None:
    reasons = {v for k, v in vars(contract).items() if k.startswith("REASON_")}
    for guard in GUARDS:
        assert guard.reasons and set(guard.reasons) <= reasons, guard.name
        assert guard.docs, guard.name
        for reason in guard.reasons:  # each reason is shown in the guard's docs rows
            assert any(f"`{reason}" in doc.reason_text for doc in guard.docs), reason


def test_reads_headers_is_on_exactly_when_a_header_guard_is_on() -> None:
    """A header guard left out of ``reads_headers`` would see no headers: a backscatter leak."""
    for values in itertools.product((False, True), repeat=len(GUARD_NAMES)):
        guards = Guards(**dict(zip(GUARD_NAMES, values, strict=True)))
        expected = any(
            on for name, on in zip(GUARD_NAMES, values, strict=True) if name in HEADER_GUARD_NAMES
        )
        assert guards.reads_headers is expected
    assert set(HEADER_GUARD_NAMES) == {"auto_submitted", "list_traffic"}


def test_the_policy_json_form_reads_every_guard() -> None:
    for name in GUARD_NAMES:
        policy = parse_policy({"guards": {name: False}})
        assert getattr(policy.guards, name) is False
        assert policy.to_dict()["guards"][name] is False
