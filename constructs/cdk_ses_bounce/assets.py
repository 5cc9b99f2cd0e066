"""Staging of the Lambda code and policy layer: content-only directories, so asset hashes are
stable across machines and the same from a source checkout and from an installed wheel."""

from __future__ import annotations

import atexit
import importlib.util
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RUNTIME_PACKAGE = "bounce_runtime"
EXCLUDED_FROM_RUNTIME = ("__pycache__", "*.pyc", "*.pyo", "tests", "test_*.py", ".*")


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


def stage_runtime() -> Path:
    """A directory holding exactly `bounce_runtime/` (no caches, compiled files or tests)."""
    root = _new_staging_dir()
    shutil.copytree(
        runtime_package_dir(),
        root / RUNTIME_PACKAGE,
        ignore=shutil.ignore_patterns(*EXCLUDED_FROM_RUNTIME),
    )
    return root


def stage_policy(policy: Mapping[str, Any], relative_path: str) -> Path:
    """A directory holding the policy as sorted-key JSON at `relative_path` (a layer's content)."""
    root = _new_staging_dir()
    target = root / relative_path
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(policy, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return root
