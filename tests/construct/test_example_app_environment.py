"""app.py as `cdk init` writes it: the stack deploys to the CLI's account and region
(`CDK_DEFAULT_ACCOUNT`, `CDK_DEFAULT_REGION`), context overrides them, and an offline synth (no
credentials, so neither variable) still works with the placeholder."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from construct.synth_helpers import load_example_app

CLI = {"CDK_DEFAULT_ACCOUNT": "222222222222", "CDK_DEFAULT_REGION": "eu-central-1"}


def stack_env(context: dict[str, Any] | None, environ: dict[str, str]) -> tuple[str, str]:
    app = load_example_app().build_app(context=context, environ=environ)
    (stack,) = [c for c in app.node.children if isinstance(c, cdk.Stack)]
    return stack.account, stack.region


def test_the_stack_deploys_where_the_cli_points() -> None:
    assert stack_env(None, CLI) == ("222222222222", "eu-central-1")


def test_context_overrides_the_cli() -> None:
    context = {"account": "333333333333", "region": "us-east-1"}
    assert stack_env(context, CLI) == ("333333333333", "us-east-1")
    assert stack_env({"region": "us-west-2"}, CLI) == ("222222222222", "us-west-2")


def test_offline_synth_uses_the_placeholder_only_without_the_cli_variables() -> None:
    defaults = load_example_app().DEFAULT_CONTEXT
    assert stack_env(None, {}) == (defaults["account"], defaults["region"])
    # An empty variable (as some shells export) is no account either.
    assert stack_env(None, {"CDK_DEFAULT_ACCOUNT": ""}) == (defaults["account"], "eu-west-1")
