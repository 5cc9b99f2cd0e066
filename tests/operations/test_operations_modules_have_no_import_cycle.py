"""The operations package, split along its seams, has no import cycle and no module past ~450
lines (issue 16)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "runtime" / "bounce_runtime" / "operations"
PREFIX = "bounce_runtime.operations."
MAX_LINES = 450
# The modules dead_letters.py was split into (issue 16), and the command group over them.
DEAD_LETTER_MODULES = (
    "dead_letters",
    "reason_classes",
    "dead_letter_scan",
    "dead_letter_triage",
    "replay",
    "stack_lookup",
    "commands",
    "command_support",
)


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            node.module.removeprefix(PREFIX)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX)
        }
        graph[path.stem] = names
    return graph


def test_no_module_imports_itself_through_others() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert {"reason_classes", "dead_letter_scan", "replay", "stack_lookup"} <= set(graph)


def test_every_dead_letter_module_is_short_enough_to_read() -> None:
    lengths = {
        name: len((PACKAGE / f"{name}.py").read_text(encoding="utf-8").splitlines())
        for name in DEAD_LETTER_MODULES
    }

    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
