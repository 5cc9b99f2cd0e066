"""The IAM actions `support.iam_calls` maps recorded calls to exist in the Service Authorization
Reference, and an action is evaluated on `*` exactly when the reference gives it no resource
type (its data as parliament ships it, read without importing parliament)."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from support.iam_calls import NO_RESOURCE_TYPE, OPERATIONS


@cache
def _reference() -> dict[str, list[set[str]]]:
    """action -> its resource types, once per service entry that lists it (SES v1 and v2 share
    the `ses` prefix; `""` is the reference's empty "Resource types" cell)."""
    spec = importlib.util.find_spec("parliament")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "iam_definition.json"
    services: list[dict[str, Any]] = json.loads(path.read_text())
    found: dict[str, list[set[str]]] = {}
    for service in services:
        for privilege in service["privileges"]:
            action = f"{service['prefix']}:{privilege['privilege']}"
            types = {r["resource_type"].rstrip("*") for r in privilege["resource_types"]}
            found.setdefault(action, []).append(types)
    return found


MAPPED = sorted({action for actions in OPERATIONS.values() for action in actions.values()})


@pytest.mark.parametrize("action", MAPPED)
def test_each_mapped_action_is_in_the_reference(action: str) -> None:
    assert action in _reference(), f"{action} is not an IAM action"


@pytest.mark.parametrize("action", MAPPED)
def test_an_action_is_evaluated_on_star_exactly_when_it_has_no_resource_type(action: str) -> None:
    without_type = all(types == {""} for types in _reference()[action])
    assert (action in NO_RESOURCE_TYPE) == without_type, _reference()[action]


def test_the_reference_is_read() -> None:
    # A lookup that would pass on an empty reference: the data must be there.
    assert _reference()["ses:SendBounce"] and _reference()["ses:GetSendQuota"] == [{""}]
