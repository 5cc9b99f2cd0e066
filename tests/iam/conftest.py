"""The IAM evaluation's shared fixtures: the example app synthesized once (with two operator roles
built only from the construct's grants), resolved in one account and region, and one evaluator
process per test module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_iam as iam
from construct.synth_helpers import RECOMMENDED_FLAGS, load_example_app
from iam.helpers import (
    ACCOUNT,
    LIST_ROLE,
    PREFLIGHT_ROLE,
    REGION,
    REPLAY_ROLE,
    STACK,
    TALLY,
    TRIAGE_ROLE,
)

from cdk_ses_bounce import BounceProcessor
from support.cfn_resolver import TemplateResolver
from support.iam_calls import Deployment
from support.iam_simulator import IamSimulator


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example app's stack (app.py, the `cdk init` feature flags) in ACCOUNT and REGION,
    plus the operator test roles, each built only from one grant. Path metadata is on, as the
    CDK CLI sets it: the commands find the processor in the template by construct path."""
    outdir = tmp_path_factory.mktemp("iam-cdk-out")
    context = {
        **RECOMMENDED_FLAGS,
        "account": ACCOUNT,
        "region": REGION,
        "stackName": STACK,
        "aws:cdk:enable-path-metadata": True,
    }
    app = load_example_app().build_app(context=context, outdir=str(outdir))
    stack = app.node.find_child(STACK)
    processor = next(c for c in stack.node.children if isinstance(c, BounceProcessor))
    for role_id, grant in (
        (TRIAGE_ROLE, processor.grant_consume_dead_letters),
        (REPLAY_ROLE, processor.grant_replay_dead_letters),
        (LIST_ROLE, processor.grant_list_dead_letters),
        (PREFLIGHT_ROLE, processor.grant_preflight),
    ):
        grant(iam.Role(stack, role_id, assumed_by=iam.AccountRootPrincipal()))
    app.synth()
    loaded: dict[str, Any] = json.loads((Path(outdir) / f"{STACK}.template.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def deployment(template: dict[str, Any]) -> Deployment:
    """The template resolved with the physical names its resources get by default."""
    return Deployment(TemplateResolver(template, ACCOUNT, REGION, STACK))


@pytest.fixture(scope="module")
def simulator() -> Iterator[IamSimulator]:
    """One evaluator (Node) process for the module."""
    with IamSimulator() as running:
        yield running
        TALLY.extend(running.evaluated)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY:
        allowed = sum(1 for d in TALLY if d.allowed)
        terminalreporter.write_line(
            f"IAM evaluation: {len(TALLY)} requests evaluated, {allowed} allowed, "
            f"{len(TALLY) - allowed} denied"
        )
