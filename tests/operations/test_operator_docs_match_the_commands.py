"""docs/operations.md tells operators what each command may call and what preflight checks: the
permissions table must be exactly the declaration the grants are built from, every preflight
check must have its row, and every preflight option must be named."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bounce_runtime.cli import build_parser
from bounce_runtime.operations.permissions import COMMAND_PERMISSIONS, RESOURCE_KINDS
from bounce_runtime.operations.preflight_checks import CHECK_NAMES

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
PERMISSION_ROW = re.compile(
    r"^\| `(?P<command>[a-z -]+)` \| (?P<actions>[^|]+) \| (?P<resource>[^|]+) \| "
    r"(?P<when>[^|]+) \|$"
)
CHECK_ROW = re.compile(r"^\| `(?P<check>[a-z-]+)` \| .+ \| .+ \|$")


def _section(title: str) -> str:
    return DOC.read_text(encoding="utf-8").split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_permissions_table_is_the_declaration() -> None:
    section = _section("Permissions of the operator commands")
    rows = [m.groupdict() for line in section.splitlines() if (m := PERMISSION_ROW.match(line))]
    documented = sorted(
        (
            row["command"],
            tuple(a.strip().strip("`") for a in row["actions"].split(",")),
            row["resource"].strip(),
            row["when"].strip(),
        )
        for row in rows
    )
    declared = sorted(
        (command, p.actions, RESOURCE_KINDS[p.resource], p.when)
        for command, permissions in COMMAND_PERMISSIONS.items()
        for p in permissions
    )
    assert documented == declared


def test_every_command_with_permissions_is_a_command_of_the_cli() -> None:
    parser = build_parser()
    top = _subcommands(parser)
    for command in COMMAND_PERMISSIONS:
        group, _, sub = command.partition(" ")
        assert group in top, command
        if sub:
            assert sub in _subcommands(top[group]), command


def test_every_preflight_check_has_a_row() -> None:
    section = _section("Preflight: can this processor bounce mail right now?")
    rows = {m["check"] for line in section.splitlines() if (m := CHECK_ROW.match(line))}
    assert rows == set(CHECK_NAMES)


def test_every_preflight_option_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    preflight = _subcommands(build_parser())["preflight"]
    for action in preflight._actions:
        for option in action.option_strings:
            if option not in ("-h", "--help"):
                assert f"`{option} " in text or f"`{option}`" in text, option


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)
