"""The README's lists of metrics, grants and alarms name exactly what the construct has: a method
or alarm added without its README entry (or an entry left after a removal) fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSTRUCT = ROOT / "constructs" / "cdk_ses_bounce"


def readme_section(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n{heading}\n", 1)[1]
    level = heading.split(" ", 1)[0]
    return re.split(rf"\n{level} ", body, maxsplit=1)[0]


def processor_methods(prefix: str) -> set[str]:
    """The public ``prefix*`` methods of ``BounceProcessor`` and the mixins it is built from."""
    tree = ast.parse((CONSTRUCT / "bounce_processor.py").read_text(encoding="utf-8"))
    [processor] = [
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BounceProcessor"
    ]
    bases = {ast.unparse(base) for base in processor.bases}
    found: set[str] = set()
    for path in CONSTRUCT.glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name in {*bases, processor.name}:
                found.update(
                    item.name
                    for item in node.body
                    if isinstance(item, ast.FunctionDef) and item.name.startswith(prefix)
                )
    return found


def test_the_readme_lists_every_metric_method() -> None:
    section = readme_section("### Attributes, metrics and grants")
    listed = set(re.findall(r"`(metric_\w+)\(", section))
    assert listed == processor_methods("metric_")
    assert "metric_bounces_sent" in listed  # the section was read


def test_the_readme_lists_every_grant() -> None:
    section = readme_section("### Attributes, metrics and grants")
    listed = set(re.findall(r"`(grant_\w+)\(", section))
    assert listed == processor_methods("grant_")
    assert "grant_read_mail" in listed


def test_the_readme_alarm_table_lists_every_alarm() -> None:
    rows = readme_section("### Alarms").splitlines()
    listed = {m["name"] for row in rows if (m := re.match(r"^\| `(?P<name>\w+Alarm)` \|", row))}
    tree = ast.parse((CONSTRUCT / "alarms.py").read_text(encoding="utf-8"))
    built = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z]\w+Alarm", node.value)
    }
    assert listed == built
    assert "DeadLetterQueueNotEmptyAlarm" in listed
