"""Helpers of the construct tests: synthesize with cdk-nag, lint, find resources."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111111111111"
REGION = "eu-west-1"
ENV = cdk.Environment(account=ACCOUNT, region=REGION)
# The feature flags `cdk init` writes for the pinned CDK CLI, as the example app's cdk.json has
# them (a test checks them against the CLI).
RECOMMENDED_FLAGS: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
# W3005: CDK adds a DependsOn on the role to every Lambda function, which the Role GetAtt
# already implies; it is harmless and not under the construct's control.
CFN_LINT_IGNORED = ["W3005"]

CUSTOM_POLICY: dict[str, Any] = {
    "version": 1,
    "rules": [
        {
            "name": "keep-the-ceo",
            "match": {"recipients": ["ceo@retired.example.com"]},
            "action": {"type": "accept"},
        }
    ],
    "default": {"type": "bounce", "bounce_type": "DoesNotExist"},
}


@dataclass(frozen=True)
class Synthesized:
    """One synthesized app: its cloud assembly folder, templates and cdk-nag findings."""

    outdir: Path
    templates: dict[str, dict[str, Any]]
    nag_violations: list[dict[str, Any]]

    def template(self, stack_name: str) -> assertions.Template:
        """The stack's template for `aws_cdk.assertions`."""
        return assertions.Template.from_json(self.templates[stack_name])

    def asset_dir(self, s3_key: str) -> Path:
        """The staged folder of the asset stored under `s3_key` (`<hash>.zip`)."""
        return self.outdir / f"asset.{s3_key.removesuffix('.zip')}"


def synthesize(app: cdk.App, outdir: Path) -> Synthesized:
    """Synthesize with the cdk-nag AwsSolutions and Serverless packs; findings are returned, not
    raised."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    report = json.loads((outdir / "validation-report.json").read_text())
    # With @aws-cdk/core:annotationsInValidationReport the construct's warnings are in the
    # report too; they are tested as warnings, not as findings.
    violations = [
        v
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        if v.get("ruleMetadata", {}).get("cdk:annotation") != "true"
    ]
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    return Synthesized(outdir, templates, violations)


def cfn_lint_findings(template: dict[str, Any]) -> list[str]:
    """cfn-lint errors and warnings of a template (ignoring CFN_LINT_IGNORED)."""
    matches = lint(
        json.dumps(template),
        config=ManualArgs(regions=[REGION], ignore_checks=CFN_LINT_IGNORED),
    )
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource for every resource of one type."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def load_example_app() -> Any:
    """The repository's app.py as a module (it is not on sys.path)."""
    spec = importlib.util.spec_from_file_location("example_app", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
