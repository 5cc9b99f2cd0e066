"""Each BounceProcessor prop is declared alike in its four places: the keyword-only parameters
of `BounceProcessor.__init__`, its docstring's `:param` lines, the `Props` dataclass the
builders receive, and the README's props table; and a default that the signature (or
`defaults.py`, for a `None` that means "the construct's default") gives is the one the docstring
and the table state."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_ses_bounce import BounceProcessor, defaults
from cdk_ses_bounce.props import Props

README = Path(__file__).resolve().parents[2] / "README.md"
PARAM = re.compile(r"^\s*:param (?P<name>\w+):(?P<text>.*)$")
ROW = re.compile(r"^\| `(?P<name>\w+)` \| (?P<cell>.*) \|$")
# Props whose signature default is None and whose real default lives in defaults.py.
CONSTRUCT_DEFAULTS: dict[str, Any] = {
    "mail_retention": defaults.MAIL_RETENTION,
    "tls_policy": defaults.TLS_POLICY,
    "removal_policy": defaults.BUCKET_REMOVAL_POLICY,
}


def signature_props() -> dict[str, Any]:
    """Keyword-only parameter -> its default (`inspect.Parameter.empty` when required)."""
    parameters = inspect.signature(BounceProcessor.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def docstring_props() -> dict[str, str]:
    """`:param` name -> its text (continuation lines joined)."""
    found: dict[str, str] = {}
    current = None
    for line in (BounceProcessor.__init__.__doc__ or "").splitlines():
        if match := PARAM.match(line):
            current = match["name"]
            found[current] = match["text"].strip()
        elif current is not None and line.strip():
            found[current] += " " + line.strip()
        else:
            current = None
    return found


def readme_props() -> dict[str, str]:
    """The README's props table: prop -> its default cell."""
    text = README.read_text(encoding="utf-8")
    table = text.split("\n### Props (all keyword-only)\n", 1)[1].strip("\n").split("\n\n", 1)[0]
    rows = [ROW.match(line) for line in table.splitlines()[2:]]
    assert all(rows), "every row of the props table is | `prop` | default |"
    return {row["name"]: row["cell"] for row in rows if row}


def spelled(value: Any) -> str | None:
    """How the docs spell a default: `repr`-like for plain values, human for durations and enum
    members (`2 minutes`, `three months`); None for a value the docs do not spell."""
    if isinstance(value, bool | int | str):
        return str(value)
    if isinstance(value, cdk.Duration):
        return value.to_human_string()
    if isinstance(value, enum.Enum):
        return value.name
    return None


def stated_default(name: str) -> str | None:
    value = signature_props()[name]
    if value is None or value is inspect.Parameter.empty:
        value = CONSTRUCT_DEFAULTS.get(name)
    return None if value is None else spelled(value)


def test_signature_docstring_and_props_name_the_same_props_in_the_same_order() -> None:
    signature = list(signature_props())
    assert list(docstring_props()) == signature
    assert [field.name for field in dataclasses.fields(Props)] == signature


def test_the_readme_table_names_every_prop_once() -> None:
    documented = list(readme_props())
    assert len(documented) == len(set(documented))
    assert set(documented) == set(signature_props())


@pytest.mark.parametrize("name", sorted(signature_props()))
def test_a_stated_default_is_the_declared_one(name: str) -> None:
    expected = stated_default(name)
    if expected is None:
        return  # required, or a default the docs describe in words (a new bucket, none, ...)
    readme_cell = readme_props()[name].lower()
    docstring = docstring_props()[name].lower()
    for spelling in {expected.lower(), expected.lower().replace("_", " ")}:
        if spelling in readme_cell and spelling in docstring:
            return
    raise AssertionError(
        f"{name}: default {expected!r} is not stated in both the README table "
        f"({readme_props()[name]!r}) and the docstring ({docstring_props()[name]!r})"
    )


def test_a_changed_default_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check above is not vacuous: with another default, the docs no longer agree.
    monkeypatch.setitem(CONSTRUCT_DEFAULTS, "mail_retention", cdk.Duration.days(9))
    with pytest.raises(AssertionError, match="mail_retention"):
        test_a_stated_default_is_the_declared_one("mail_retention")
