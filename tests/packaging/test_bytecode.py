"""The Lambda asset ships CPython 3.14 bytecode of the runtime: reproducible, never stale, and what
CPython 3.14 loads instead of compiling the source (checked on 3.14 itself, under Pyodide)."""

from __future__ import annotations

import json
import py_compile
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cdk_ses_bounce.assets import (
    LAMBDA_PYTHON_MAGIC,
    RUNTIME_BYTECODE_DIR,
    RUNTIME_PACKAGE,
    bytecode_name,
    is_bytecode_of,
    lambda_source_hash,
    modules_without_bytecode,
    runtime_package_dir,
    stage_runtime,
)
from py314 import compile_package, run_script

PROBE = Path(__file__).resolve().parents[1] / "py314" / "shipped_bytecode_probe.py"
BROKEN_SOURCE = 'raise ImportError("the source was compiled, not the shipped bytecode")\n'
# The Lambda's entry point (the function's `handler` setting names it).
HANDLER = Path(RUNTIME_PACKAGE) / "handler.py"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def modules_of(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / RUNTIME_PACKAGE).rglob("*.py"))


@pytest.fixture(scope="module")
def compiled_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The runtime compiled by CPython 3.14 in two separate runs (side by side, to save time)."""
    outputs = (tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda out: compile_package(runtime_package_dir(), out), outputs))
    return outputs


def test_compiling_twice_gives_the_same_bytes(compiled_twice: tuple[Path, Path]) -> None:
    first, second = (tree(output) for output in compiled_twice)
    expected = {bytecode_name(m).as_posix() for m in modules_of(runtime_package_dir().parent)}
    assert set(first) == expected
    assert first == second


def test_the_lambda_python_writes_the_header_the_staging_checks(
    compiled_twice: tuple[Path, Path],
) -> None:
    # Magic number, PEP 552 flags and source hash as CPython 3.14 wrote them, computed here on 3.11.
    source_root = runtime_package_dir().parent
    for module in modules_of(source_root):
        bytecode = (compiled_twice[0] / bytecode_name(module)).read_bytes()
        source = (source_root / module).read_bytes()
        assert bytecode[:4] == LAMBDA_PYTHON_MAGIC
        assert bytecode[4:8] == (0b01).to_bytes(4, "little")
        assert bytecode[8:16] == lambda_source_hash(source)
        assert is_bytecode_of(bytecode, source)
        assert not is_bytecode_of(bytecode, source + b"\n")


def test_make_bytecode_built_bytecode_of_every_runtime_module() -> None:
    missing = modules_without_bytecode(runtime_package_dir(), RUNTIME_BYTECODE_DIR)
    assert missing == [], f"run `make bytecode`: no current 3.14 bytecode for {missing}"


def test_two_stagings_are_identical() -> None:
    first, second = stage_runtime(), stage_runtime()
    assert first != second
    assert tree(first) == tree(second)
    assert f"{RUNTIME_PACKAGE}/__pycache__/handler.cpython-314.pyc" in tree(first)


def test_stale_or_foreign_bytecode_is_not_shipped(
    tmp_path: Path, compiled_twice: tuple[Path, Path]
) -> None:
    package = tmp_path / "source" / RUNTIME_PACKAGE
    shutil.copytree(runtime_package_dir(), package, ignore=shutil.ignore_patterns("__pycache__"))
    bytecode = tmp_path / "bytecode"
    shutil.copytree(compiled_twice[0], bytecode)
    edited, timestamped, checked, foreign, removed = modules_of(package.parent)[:5]
    # A source changed after compiling; 3.14 bytecode that checks the source's timestamp or hash
    # (flags 0 or 0b11); bytecode of another Python (this 3.11); no bytecode at all.
    source = package.parent
    (source / edited).write_text((source / edited).read_text() + "# changed\n")
    for module, flags in ((timestamped, 0), (checked, 0b11)):
        valid = (bytecode / bytecode_name(module)).read_bytes()
        (bytecode / bytecode_name(module)).write_bytes(
            valid[:4] + flags.to_bytes(4, "little") + valid[8:]
        )
    py_compile.compile(
        str(source / foreign),
        cfile=str(bytecode / bytecode_name(foreign)),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    (bytecode / bytecode_name(removed)).unlink()

    staged = stage_runtime(package_dir=package, bytecode_dir=bytecode)

    not_shipped = {edited, timestamped, checked, foreign, removed}
    for module in modules_of(staged):
        shipped = staged / bytecode_name(module)
        if module in not_shipped:
            assert not shipped.exists(), module
        else:
            assert shipped.read_bytes() == (bytecode / bytecode_name(module)).read_bytes()
    assert modules_without_bytecode(package, bytecode) == sorted(not_shipped)


def run_probe(*assets: Path) -> list[dict[str, Any]]:
    result = run_script(PROBE, [str(a) for a in assets], mounts=assets)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n(run `make py314-site`?)"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"] == [3, 14]
    results: list[dict[str, Any]] = report["assets"]
    return results


def test_cpython_314_loads_the_shipped_bytecode_not_the_source(
    tmp_path: Path, compiled_twice: tuple[Path, Path]
) -> None:
    staged = stage_runtime(bytecode_dir=compiled_twice[0])
    # Every source replaced by code that fails: the import works only from the bytecode.
    shipped = tmp_path / "shipped"
    shutil.copytree(staged, shipped)
    for module in modules_of(shipped):
        (shipped / module).write_text(BROKEN_SOURCE)
    # Controls: the same without the handler's bytecode, its source broken, then intact.
    without_bytecode = tmp_path / "without-bytecode"
    shutil.copytree(shipped, without_bytecode)
    (without_bytecode / bytecode_name(HANDLER)).unlink()
    compiled_at_import = tmp_path / "compiled-at-import"
    shutil.copytree(without_bytecode, compiled_at_import)
    shutil.copyfile(runtime_package_dir().parent / HANDLER, compiled_at_import / HANDLER)

    loaded, broken, compiled = run_probe(shipped, without_bytecode, compiled_at_import)

    assert loaded["error"] is None
    # Every runtime module the handler needs came from the asset, through its bytecode.
    assert f"{RUNTIME_PACKAGE}.handler" in loaded["modules"]
    for module in loaded["modules"].values():
        source = Path(module["file"])
        assert source.is_relative_to(shipped)
        assert module["cached"] == str(shipped / bytecode_name(source.relative_to(shipped)))
        assert module["loader"] == "SourceFileLoader"
    assert loaded["written"] == []

    assert broken["error"] == "ImportError: the source was compiled, not the shipped bytecode"
    # Without shipped bytecode, 3.14 compiles the source and (were the folder writable) caches it.
    assert compiled["error"] is None
    assert compiled["written"] == [bytecode_name(HANDLER).as_posix()]
