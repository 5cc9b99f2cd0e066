"""The wheel, built once per session from a copy of the checkout (as `make dist` builds it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdk_ses_bounce.assets import RUNTIME_BYTECODE_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps --no-build-isolation` of a clean copy of the sources."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "constructs", source / "constructs", ignore=ignore)
    shutil.copytree(REPO_ROOT / "runtime", source / "runtime", ignore=ignore)
    # The runtime's 3.14 bytecode (`make bytecode`, not in git) goes into the wheel.
    bytecode = RUNTIME_BYTECODE_DIR.relative_to(REPO_ROOT)
    shutil.copytree(RUNTIME_BYTECODE_DIR, source / bytecode, dirs_exist_ok=True)
    dist = work / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*build, "-w", str(dist), str(source)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"the wheel build failed:\n{result.stdout}\n{result.stderr}"
    (wheel,) = dist.glob("cdk_ses_bounce-*.whl")
    return wheel
