"""The runtime's layers, as the tree shows them: a pure core, AWS adapters, the rest on top."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bounce_runtime

PACKAGE = Path(bounce_runtime.__file__).parent
CORE = sorted((PACKAGE / "core").glob("*.py"))
PURE = [PACKAGE / "contract.py", PACKAGE / "errors.py", *CORE]
# Modules a pure module may not import: AWS, I/O, processes, the clock, randomness.
IMPURE = {
    "boto3", "botocore", "os", "io", "sys", "socket", "subprocess", "pathlib", "shutil",
    "tempfile", "time", "random", "threading", "urllib", "http", "logging",
}  # fmt: skip
PURE_RUNTIME_MODULES = ("bounce_runtime.contract", "bounce_runtime.errors", "bounce_runtime.core")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (at any depth of the file, lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_pure_modules_import_no_aws_io_or_clock(path: Path) -> None:
    modules = imports_of(path)
    assert {m for m in modules if m.split(".")[0] in IMPURE} == set()
    own = {m for m in modules if m.startswith("bounce_runtime")}
    assert {m for m in own if not m.startswith(PURE_RUNTIME_MODULES)} == set()


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_pure_modules_read_no_clock_and_open_no_file(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert [ast.unparse(f) for f in calls if isinstance(f, ast.Name) and f.id == "open"] == []
    clock = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
    assert [ast.unparse(f) for f in calls if isinstance(f, ast.Attribute) and f.attr in clock] == []


def test_importing_the_pure_core_loads_no_botocore() -> None:
    names = ", ".join(f"bounce_runtime.core.{p.stem}" for p in CORE if p.stem != "__init__")
    code = f"import sys, {names}; print(sorted(m for m in sys.modules if 'boto' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_layers_say_what_they_are() -> None:
    assert (PACKAGE / "core/__init__.py").read_text() == (
        '"""Pure core: no boto3, no I/O, no clock."""\n'
    )
    assert (PACKAGE / "adapters/__init__.py").read_text() == (
        '"""AWS adapters: the only modules that talk to AWS (boto3 clients are injected)."""\n'
    )


def test_only_adapters_import_botocore() -> None:
    talking = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] in {"boto3", "botocore"} for m in imports_of(path))
    }
    # The handler builds the clients (boto3 imported on the first invocation); the operator
    # commands (operations/) call AWS for the operator.
    allowed = {"handler.py"} | {
        path.relative_to(PACKAGE).as_posix()
        for layer in ("adapters", "operations")
        for path in PACKAGE.glob(f"{layer}/*.py")
    }
    assert talking <= allowed
    assert "adapters/ses_sender.py" in talking


def test_every_error_class_lives_in_errors_and_carries_a_reason() -> None:
    from bounce_runtime import errors

    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        bases = {ast.unparse(b) for c in classes for b in c.bases}
        assert not bases & {"Exception", "ValueError", "RuntimeError"}, path
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(classes) >= 10
    abstract = {errors.ReasonedError, errors.PermanentError, errors.RetryableError}
    abstract.add(errors.TransientSendError)
    for cls in classes:
        reason = getattr(cls, "reason", None)
        assert isinstance(reason, str), cls
        if cls in abstract:  # a base: raised only through a subclass (or the legacy form)
            assert reason == "", cls
            continue
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", reason), (cls, reason)
        if issubclass(cls, errors.ReasonedError):
            error = cls("what went wrong")
            assert (str(error), error.reason) == ("what went wrong", reason)


def _runtime_imports(path: Path) -> set[str]:
    """The ``bounce_runtime`` modules ``path`` imports, lazy imports included, ``TYPE_CHECKING``
    imports excluded (they never run); ``from package import module`` counts as the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            typing_only.update(id(child) for child in ast.walk(node))
    modules = {
        p.relative_to(PACKAGE.parent)
        .with_suffix("")
        .as_posix()
        .replace("/", ".")
        .removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            found.add(node.module)
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" in modules
            )
    return found


def test_the_runtime_package_has_no_import_cycle() -> None:
    graph = {
        p.relative_to(PACKAGE.parent)
        .with_suffix("")
        .as_posix()
        .replace("/", ".")
        .removesuffix(".__init__"): _runtime_imports(p)
        for p in PACKAGE.rglob("*.py")
    }
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif len(path) < 12:
                visit(target, [*path, target])

    for module in sorted(graph):
        visit(module, [module])
    assert sorted(set(cycles)) == []
    assert (
        "bounce_runtime.core.policy_json" in graph["bounce_runtime.cli.plan"]
    )  # the graph is read


def test_the_handler_never_imports_the_operator_tools() -> None:
    """The Lambda asset leaves out cli/, operations/ and __main__.py
    (contract.OPERATOR_ONLY_PARTS): nothing the handler imports, lazily or not, may reach them."""
    from bounce_runtime.contract import OPERATOR_ONLY_PARTS

    def module_of(path: Path) -> str:
        relative = path.relative_to(PACKAGE.parent).with_suffix("").as_posix()
        return relative.replace("/", ".").removesuffix(".__init__")

    paths = {module_of(p): p for p in PACKAGE.rglob("*.py")}
    seen: set[str] = set()
    todo = ["bounce_runtime.handler"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_runtime_imports(paths[module]))
    parts = {part.removesuffix(".py") for part in OPERATOR_ONLY_PARTS}
    operator_only = {m for m in seen if m.count(".") and m.split(".")[1] in parts}
    assert "bounce_runtime.processor" in seen  # the closure was walked
    assert operator_only == set()


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix()
)
def test_no_runtime_module_is_over_about_450_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 470
