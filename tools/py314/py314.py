"""CPython 3.14, the Lambda's Python, on this machine: Pyodide (CPython compiled to WebAssembly)
under the project's Node 22, offline once the wheels are in the cache.

    python tools/py314/py314.py site             install the 3.14 test wheels (once)
    python tools/py314/py314.py tests [ARG]...   the runtime's tests on 3.14 (`make test-py314`)
    python tools/py314/py314.py bytecode         compile the runtime for the Lambda asset
    python tools/py314/py314.py run SCRIPT [ARG]...

Tests and benchmarks import this module (`tools/py314` is on pytest's pythonpath).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE = REPO / "node_modules" / ".bin" / "node"
LAUNCHER = HERE / "launcher.mjs"
# Pyodide's default stack overflows in the deeper pytest and botocore call chains.
NODE_FLAGS = ("--stack-size=8000",)
REQUIREMENTS = HERE / "requirements.txt"
SITE = REPO / ".cache" / "py314" / "site"
SITE_STAMP = SITE / ".requirements-sha256"
RUN_TESTS = HERE / "run_tests.py"
COMPILE = HERE / "compile_package.py"
COMPILE_SITE = HERE / "compile_site.py"


def command(
    script: Path,
    args: Sequence[str] = (),
    mounts: Iterable[Path] = (),
    paths: Sequence[Path] = (),
) -> list[str]:
    """The command line that runs `script` on CPython 3.14: the current directory, the script's
    folder and `mounts` visible at their own paths; `paths` and the test wheels on sys.path."""
    options: list[str] = []
    for folder in (*mounts, *paths):
        options += ["--mount", str(folder)]
    for folder in (*paths, SITE):
        options += ["--path", str(folder)]
    return [str(NODE), *NODE_FLAGS, str(LAUNCHER), *options, str(script), *args]


def run_script(
    script: Path, args: Sequence[str] = (), mounts: Iterable[Path] = (), *, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run `script` on CPython 3.14 and capture its output (text)."""
    if not NODE.exists():
        raise RuntimeError(f"{NODE} is missing: run `make setup`")
    return subprocess.run(
        command(script, args, mounts), cwd=cwd, capture_output=True, text=True, check=False
    )


def install_site() -> None:
    """Install the pure-Python wheels of requirements.txt for CPython 3.14 into SITE and compile
    them there (each run then imports them fast), unless this requirements file's are there."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if SITE_STAMP.is_file() and SITE_STAMP.read_text().strip() == wanted:
        return
    shutil.rmtree(SITE, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    target = ["--target", str(SITE), "--no-compile", "--python-version", "3.14"]
    pure = ["--platform", "any", "--only-binary=:all:", "-r", str(REQUIREMENTS)]
    subprocess.run([*pip, *target, *pure], check=True)
    compiled = run_script(COMPILE_SITE, [str(SITE)])
    if compiled.returncode != 0:
        raise RuntimeError(f"compiling {SITE} on CPython 3.14 failed:\n{compiled.stderr}")
    SITE_STAMP.write_text(wanted + "\n")


def runtime_source_root() -> Path:
    """The folder that holds the `bounce_runtime` package (wherever setuptools maps it)."""
    spec = importlib.util.find_spec("bounce_runtime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bounce_runtime is not importable: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))).parent


def assets_module() -> ModuleType:
    """`cdk_ses_bounce.assets` (standard library only), loaded without the package's __init__,
    which imports aws_cdk and costs seconds."""
    package = importlib.util.find_spec("cdk_ses_bounce")
    if package is None or not package.submodule_search_locations:
        raise RuntimeError("cdk_ses_bounce is not importable: run `make setup`")
    path = Path(next(iter(package.submodule_search_locations))) / "assets.py"
    spec = importlib.util.spec_from_file_location("_cdk_ses_bounce_assets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_package(package_dir: Path, output_dir: Path) -> None:
    """Compile every module of `package_dir` with CPython 3.14 into `output_dir` (emptied first),
    laid out as in the Lambda asset: `<package>/**/__pycache__/<module>.cpython-314.pyc`."""
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True)
    result = run_script(COMPILE, [str(package_dir), str(output_dir)], [package_dir, output_dir])
    if result.returncode != 0:
        raise RuntimeError(f"compiling {package_dir} on CPython 3.14 failed:\n{result.stderr}")


def build_runtime_bytecode() -> None:
    """Compile the runtime package into the folder the asset staging reads, unless every module
    there already has bytecode of its current source."""
    assets = assets_module()
    package_dir: Path = assets.runtime_package_dir()
    output_dir: Path = assets.RUNTIME_BYTECODE_DIR
    if not assets.modules_without_bytecode(package_dir, output_dir):
        print(f"bytecode: {output_dir.relative_to(REPO)} is up to date")
        return
    # Compile aside and swap in, so a failed build leaves no half-written folder behind.
    staging = Path(tempfile.mkdtemp(prefix="bytecode-", dir=output_dir.parent))
    try:
        compile_package(package_dir, staging)
        shutil.rmtree(output_dir, ignore_errors=True)
        staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"bytecode: compiled {package_dir.name} with CPython 3.14 into {output_dir}")


def main(argv: Sequence[str]) -> int:
    match list(argv):
        case ["site"]:
            install_site()
        case ["tests", *args]:
            if not SITE_STAMP.is_file():
                print("the 3.14 test wheels are missing: run `make py314-site`", file=sys.stderr)
                return 2
            test_command = command(RUN_TESTS, args, paths=[runtime_source_root()])
            return subprocess.run(test_command, cwd=REPO, check=False).returncode
        case ["bytecode"]:
            build_runtime_bytecode()
        case ["run", script, *args]:
            return subprocess.run(command(Path(script), args), check=False).returncode
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main(sys.argv[1:]))
