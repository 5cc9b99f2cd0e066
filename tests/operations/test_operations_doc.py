"""docs/operations.md tells operators what each dead-letter reason means and whether replay helps:
its table must list exactly the reasons the tools classify, with the same answer."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bounce_runtime import contract
from bounce_runtime.cli import build_parser
from bounce_runtime.operations.dead_letters import REASON_CLASSES, REPLAY_NO

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ROW = re.compile(r"^\| `(?P<reason>[a-z-]+)` \| .+ \| (?P<replay>[a-z-]+) \|$")


def test_the_reason_table_matches_the_classification() -> None:
    section = DOC.read_text(encoding="utf-8").split("### Reasons", 1)[1].split("\n### ", 1)[0]
    rows = [match.groupdict() for line in section.splitlines() if (match := ROW.match(line))]

    documented = {row["reason"]: row["replay"] for row in rows}
    assert len(rows) == len(documented)
    assert {reason: documented.get(reason) for reason in REASON_CLASSES} == {
        reason: reason_class.replay for reason, reason_class in REASON_CLASSES.items()
    }
    # Any other row is a reason code the runtime never dead-letters with: the tool refuses it.
    others = {
        reason: replay for reason, replay in documented.items() if reason not in REASON_CLASSES
    }
    reason_codes = {value for name, value in vars(contract).items() if name.startswith("REASON_")}
    assert set(others) <= reason_codes - set(contract.DEAD_LETTER_REASONS)
    assert set(others.values()) <= {REPLAY_NO}


def test_every_option_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    parser = build_parser()
    group = subcommands(parser)["dead-letters"]
    for command in subcommands(group).values():
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option} " in text or f"`{option}`" in text, option


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)
