"""Staging of the Lambda code and policy layer: content-only directories, so asset hashes are
stable across machines and the same from a source checkout and from an installed wheel.

Standard library only: the build tool (tools/py314) loads this module without aws_cdk."""

from __future__ import annotations

import _imp
import atexit
import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path

from bounce_runtime.contract import OPERATOR_ONLY_PARTS

RUNTIME_PACKAGE = "bounce_runtime"
EXCLUDED_FROM_RUNTIME = ("__pycache__", "*.pyc", "*.pyo", "tests", "test_*.py", ".*")

# The function's Python (lambda_.Runtime.PYTHON_3_14): CPython 3.14's bytecode magic number
# (`importlib.util.MAGIC_NUMBER` there) and the cache tag in its bytecode file names.
LAMBDA_PYTHON_MAGIC = bytes.fromhex("2b0e0d0a")
LAMBDA_PYTHON_CACHE_TAG = "cpython-314"
# The runtime package compiled by that Python (`make bytecode`): not in git, shipped in the wheel.
RUNTIME_BYTECODE_DIR = Path(__file__).resolve().parent / "runtime-bytecode"
# PEP 552 flags: hash-based, source not checked (Lambda's code is read-only and never changes).
_UNCHECKED_HASH = 0b01

_log = logging.getLogger(__name__)


def runtime_package_dir() -> Path:
    """The directory of the installed (or editable) `bounce_runtime` package."""
    spec = importlib.util.find_spec(RUNTIME_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the {RUNTIME_PACKAGE} package is not importable: install cdk-ses-bounce with pip"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _new_staging_dir() -> Path:
    """A fresh temporary directory, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="cdk-ses-bounce-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def lambda_source_hash(source: bytes) -> bytes:
    """The source hash the Lambda's Python writes into (and expects in) hash-based bytecode."""
    return _imp.source_hash(int.from_bytes(LAMBDA_PYTHON_MAGIC, "little"), source)


def bytecode_name(module: Path) -> Path:
    """Where the Lambda's Python looks for the bytecode of `module` (a path to a .py file)."""
    return module.parent / "__pycache__" / f"{module.stem}.{LAMBDA_PYTHON_CACHE_TAG}.pyc"


def is_bytecode_of(bytecode: bytes, source: bytes) -> bool:
    """Whether `bytecode` is the Lambda Python's unchecked-hash bytecode of exactly `source`."""
    return (
        bytecode[:4] == LAMBDA_PYTHON_MAGIC
        and int.from_bytes(bytecode[4:8], "little") == _UNCHECKED_HASH
        and bytecode[8:16] == lambda_source_hash(source)
    )


def _modules(package_dir: Path) -> list[Path]:
    """The package's modules, relative to the folder that holds the package."""
    return sorted(p.relative_to(package_dir.parent) for p in package_dir.rglob("*.py"))


def _matching_bytecode(root: Path, module: Path, bytecode_dir: Path) -> Path | None:
    """The bytecode file in `bytecode_dir` of the current source of `root / module`, if any."""
    compiled = bytecode_dir / bytecode_name(module)
    if compiled.is_file() and is_bytecode_of(compiled.read_bytes(), (root / module).read_bytes()):
        return compiled
    return None


def modules_without_bytecode(package_dir: Path, bytecode_dir: Path) -> list[Path]:
    """The modules of `package_dir` (paths relative to its parent) that have no bytecode of their
    current source in `bytecode_dir` (laid out as in the asset)."""
    return [
        module
        for module in _modules(package_dir)
        if _matching_bytecode(package_dir.parent, module, bytecode_dir) is None
    ]


def stage_runtime(
    *, package_dir: Path | None = None, bytecode_dir: Path = RUNTIME_BYTECODE_DIR
) -> Path:
    """A directory holding exactly `bounce_runtime/` (no caches, tests or operator tools) and, for
    each module
    whose source it matches, the Lambda Python's bytecode from `bytecode_dir`; a module without
    matching bytecode ships as source only and compiles at cold start (logged as a warning)."""
    package_dir = package_dir or runtime_package_dir()
    root = _new_staging_dir()
    excluded = shutil.ignore_patterns(*EXCLUDED_FROM_RUNTIME)

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set(excluded(folder, names))
        if Path(folder) == package_dir:
            ignored.update(name for name in names if name in OPERATOR_ONLY_PARTS)
        return ignored

    shutil.copytree(package_dir, root / RUNTIME_PACKAGE, ignore=ignore)
    missing = []
    for module in _modules(root / RUNTIME_PACKAGE):
        compiled = _matching_bytecode(root, module, bytecode_dir)
        if compiled is None:
            missing.append(module.as_posix())
            continue
        (root / bytecode_name(module)).parent.mkdir(exist_ok=True)
        shutil.copyfile(compiled, root / bytecode_name(module))
    if missing:
        _log.warning(
            "Lambda asset: no CPython 3.14 bytecode matching %d module(s) (%s); they compile at "
            "every cold start. In a checkout, `make bytecode` builds it.",
            len(missing),
            ", ".join(missing),
        )
    return root


def stage_policy(policy_text: str, relative_path: str) -> Path:
    """A directory holding `policy_text` (the compiled policy) at `relative_path`: a layer's
    content."""
    root = _new_staging_dir()
    target = root / relative_path
    target.parent.mkdir(parents=True)
    target.write_text(policy_text, encoding="utf-8")
    return root
