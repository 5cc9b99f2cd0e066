"""Shared helpers of the benchmarks: paths, figures and target lines."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE_BIN = REPO / "node_modules" / ".bin"


def use_repo_paths() -> None:
    """Make `app` (the example) and `support` (tests/support) importable, Node 22 first on PATH."""
    for path in (REPO, REPO / "tests"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    if NODE_BIN.is_dir() and str(NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return statistics.median(values)


def target(label: str, value: float, limit: float, unit: str, *, at_least: bool = False) -> bool:
    """Print one target line (`met` or `MISSED`) and say whether it was met."""
    met = value >= limit if at_least else value <= limit
    sign = ">=" if at_least else "<="
    shown = str(value) if isinstance(value, int) else f"{value:.3f}"
    suffix = f" {unit}" if unit else ""
    verdict = "met" if met else "MISSED"
    print(f"  target {label}: {shown}{suffix} {sign} {limit:g}{suffix}: {verdict}")
    return met


def policy_document(size: int) -> dict[str, object]:
    """One bounce rule with `size` recipient patterns: addresses and domains, half each."""
    patterns = [
        f"user{n}@retired{n % 97}.example.com" if n % 2 else f"dept{n}.example.org"
        for n in range(size)
    ]
    return {
        "version": 1,
        "rules": [
            {
                "name": "retired",
                "match": {"recipients": patterns},
                "action": {"type": "bounce", "bounce_type": "DoesNotExist"},
            }
        ],
        "default": {"type": "accept"},
    }
