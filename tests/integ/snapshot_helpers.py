"""Helpers of the integration test's offline checks: load and synthesize the integ app as
integ-runner synthesizes a snapshot, and read cloud assemblies."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

INTEG_DIR = Path(__file__).resolve().parent
APP_FILE = INTEG_DIR / "integ_bounce_processor.py"
SNAPSHOT_DIR = INTEG_DIR / f"{APP_FILE.name}.snapshot"

# What integ-runner 2.197.10 passes to a snapshot synthesis: as context, its recommended
# aws-cdk-lib feature flags (its lib/recommended-feature-flags.json, copied here) less the target
# partitions; and these environment variables (the app is region- and account-agnostic and reads
# none of them; they are set as integ-runner sets them).
INTEG_RUNNER_CONTEXT = INTEG_DIR / "integ-runner-context.json"
TARGET_PARTITIONS = "@aws-cdk/core:target-partitions"
INTEG_RUNNER_ENV = {"CDK_INTEG_ACCOUNT": "12345678", "CDK_INTEG_REGION": "test-region"}
# What integ-runner drops from a snapshot: staged assets and the validation report.
NOT_IN_SNAPSHOT = ("asset.*", "validation-report.json", ".cache")


def load_integ_app() -> ModuleType:
    """integ_bounce_processor.py as a module (integ-runner runs it as a script)."""
    spec = importlib.util.spec_from_file_location("integ_bounce_processor", APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def integ_runner_context() -> dict[str, Any]:
    """The context integ-runner synthesizes a snapshot with."""
    context: dict[str, Any] = json.loads(INTEG_RUNNER_CONTEXT.read_text())
    context.pop(TARGET_PARTITIONS, None)
    return context


def templates_in(assembly: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template of every stack in a cloud assembly folder."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in assembly.glob("*.template.json")
    }


@dataclass(frozen=True)
class IntegApp:
    """The synthesized integration test app."""

    module: ModuleType
    outdir: Path
    templates: dict[str, dict[str, Any]]

    def resources(self, stack: str, resource_type: str) -> list[dict[str, Any]]:
        """Every resource of one type in one stack."""
        return [
            resource
            for resource in self.templates[stack]["Resources"].values()
            if resource["Type"] == resource_type
        ]


def write_snapshot(assembly: Path, snapshot: Path) -> None:
    """Replace `snapshot` with `assembly`, less what integ-runner leaves out of a snapshot."""
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(assembly, snapshot, ignore=shutil.ignore_patterns(*NOT_IN_SNAPSHOT))
