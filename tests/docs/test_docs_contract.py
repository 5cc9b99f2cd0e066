"""The documents' tables name exactly what `bounce_runtime.contract` defines: each fact has one
home in code, and the docs follow it."""

from __future__ import annotations

import re
from pathlib import Path

from bounce_runtime import contract

DOCS = Path(__file__).resolve().parents[2] / "docs"
# The first cell of a table row, when it is one `code` span: | `NAME` | ...
FIRST_CELL = re.compile(r"^\| `(?P<name>[^`]+)`(?: and `[^`]+`)? \|")


def section(document: str, heading: str) -> str:
    """The text under ``heading`` (a Markdown heading line) up to the next heading of its level."""
    text = (DOCS / document).read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    body = text.split(f"\n{heading}\n", 1)[1]
    return re.split(rf"\n{level} ", body, maxsplit=1)[0]


def first_cells(text: str) -> list[str]:
    return [match["name"] for line in text.splitlines() if (match := FIRST_CELL.match(line))]


def constants(prefix: str) -> set[str]:
    return {
        value
        for name, value in vars(contract).items()
        if name.startswith(prefix) and isinstance(value, str)
    }


def test_the_environment_table_lists_every_variable_of_the_contract() -> None:
    documented = first_cells(section("design.md", "## Environment contract (construct -> runtime)"))
    assert len(documented) == len(set(documented))
    assert set(documented) == constants("ENV_")


def test_the_metrics_table_lists_every_metric_the_runtime_writes() -> None:
    rows = [
        line for line in section("operations.md", "## Metrics").splitlines() if line[:3] == "| `"
    ]
    documented = {FIRST_CELL.match(row)["name"]: row.split("|")[2].strip() for row in rows}  # type: ignore[index]
    assert len(documented) == len(rows)
    assert set(documented) == constants("METRIC_") == set(contract.STANDARD_METRICS)
    by_reason = {name for name, cell in documented.items() if cell == "yes"}
    assert by_reason == set(contract.METRICS_BY_REASON)


def test_the_reason_tables_list_every_reason_code() -> None:
    reasons = section("operations.md", "## Reason codes")
    documented = [
        *first_cells(section("operations.md", "### Decision reasons")),
        *first_cells(section("operations.md", "### Retry reasons")),
        *first_cells(section("operations.md", "### Operator command reasons")),
    ]
    dead_letters = first_cells(section("operations.md", "### Reasons"))
    assert reasons  # the section exists
    assert len(documented) == len(set(documented))
    # `expired` is both a decision (the plan's outcome) and a dead-letter reason.
    assert set(documented) | set(dead_letters) >= constants("REASON_")
    assert set(documented) <= constants("REASON_")
    assert set(contract.RETRY_REASONS) == set(
        first_cells(section("operations.md", "### Retry reasons"))
    )


def test_the_policy_reference_example_is_a_valid_policy() -> None:
    from bounce_runtime.core.policy_json import load_policy_text

    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    policy = load_policy_text(example, full_check=True)
    assert policy.rules[0].name == "retired-sales"
    assert policy.guards.sender_authentication == ("spf",)


def test_the_policy_reference_lists_every_guard_from_the_guards_table() -> None:
    """docs/policy.md's guards table is the table in ``core.guards``, row for row."""
    from bounce_runtime.core.guards import GUARDS, HEADER_BLOCK_DOCS, HEADER_GUARD_NAMES

    table = section("policy.md", "## Guards (no backscatter)")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{guard.name}` | {doc.fires_when} | {doc.reason_text} |"
        for guard in GUARDS
        for doc in guard.docs
    ]
    header_guards = " or ".join(f"`{name}`" for name in HEADER_GUARD_NAMES)
    expected.extend(
        f"| {header_guards} | {doc.fires_when} | {doc.reason_text} |" for doc in HEADER_BLOCK_DOCS
    )
    assert sorted(rows) == sorted(expected)
