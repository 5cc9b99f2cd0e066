"""Shared, synthesized-once apps for the construct tests (a synth costs 0.1-2 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from construct.synth_helpers import (
    CUSTOM_POLICY,
    ENV,
    RECOMMENDED_FLAGS,
    REGION,
    Synthesized,
    load_example_app,
    synthesize,
)

from cdk_ses_bounce import BounceDashboard, BounceProcessor, SendBounceBudget
from cdk_ses_bounce.storage import S3_ACCESS_LOGS_USE_BUCKET_POLICY

# Each app is synthesized twice: with no feature flags set (as in a project that predates them)
# and with the flags `cdk init` writes for the pinned CDK CLI (cdk.json's context).


def synthesize_example(outdir: Path, flags: dict[str, Any]) -> Synthesized:
    """The example app of app.py, with its defaults."""
    return synthesize(load_example_app().build_app(context=dict(flags), outdir=str(outdir)), outdir)


def synthesize_full_options(outdir: Path, flags: dict[str, Any]) -> Synthesized:
    """Stack `Full`: one BounceProcessor with every option set."""
    # The passed log bucket is the app's: its log delivery follows the app's feature flag.
    app = cdk.App(outdir=str(outdir), context={**flags, S3_ACCESS_LOGS_USE_BUCKET_POLICY: True})
    stack = cdk.Stack(app, "Full", env=ENV)
    rule_set = ses.ReceiptRuleSet(stack, "SharedRuleSet")
    first_rule = rule_set.add_rule("First", recipients=["first.example.com"])
    logs_bucket = s3.Bucket(
        stack,
        "ExistingLogs",
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
    )
    cdk.Validations.of(logs_bucket).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-S1", reason="test fixture: the log target itself")
    )
    alarm_topic = sns.Topic(stack, "AlarmTopic", enforce_ssl=True)
    cdk.Validations.of(alarm_topic).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-SNS2", reason="test fixture: alarm topic")
    )
    zone = route53.HostedZone(stack, "Zone", zone_name="example.com")
    BounceProcessor(
        stack,
        "Bounces",
        recipients=["retired.example.com", "Old-Sales@example.com", "other.example.org"],
        bounce_sender="bounces@mail.example.com",
        bounce_sender_arn=f"arn:aws:ses:{REGION}:222222222222:identity/mail.example.com",
        recipient_identity_arns={
            "Retired.example.com": f"arn:aws:ses:{REGION}:333333333333:identity/retired.example.com"
        },
        policy=CUSTOM_POLICY,
        rule_set=rule_set,
        rule_after=first_rule,
        activate_rule_set=True,
        tls_policy=ses.TlsPolicy.REQUIRE,
        object_key_prefix="mail/raw/",
        mail_retention=cdk.Duration.days(3),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        server_access_logs_bucket=logs_bucket,
        budget=SendBounceBudget(stack, "Budget", rate_per_second=4),
        max_concurrency=5,
        batch_size=50,
        max_batching_window=cdk.Duration.seconds(20),
        function_timeout=cdk.Duration.minutes(5),
        max_receive_count=7,
        metrics_namespace="Mail/Bounces",
        oldest_message_age_threshold=cdk.Duration.hours(6),
        alarm_action=cloudwatch_actions.SnsAction(alarm_topic),
        hosted_zone=zone,
    )
    return synthesize(app, outdir)


def synthesize_composition(outdir: Path, flags: dict[str, Any]) -> Synthesized:
    """Stack `Composed`: two processors sharing one rule set and one send budget, one of them
    on an imported bucket."""
    app = cdk.App(outdir=str(outdir), context=dict(flags))
    stack = cdk.Stack(app, "Composed", env=ENV)
    rule_set = ses.ReceiptRuleSet(stack, "SharedRuleSet")
    budget = SendBounceBudget(stack, "SharedBudget")
    BounceProcessor(
        stack,
        "First",
        recipients=["one.example.com"],
        bounce_sender="b@example.com",
        rule_set=rule_set,
        budget=budget,
    )
    BounceProcessor(
        stack,
        "Second",
        recipients=["two.example.com"],
        bounce_sender="b@example.com",
        rule_set=rule_set,
        budget=budget,
        bucket=s3.Bucket.from_bucket_name(stack, "Imported", "existing-mail-bucket"),
    )
    return synthesize(app, outdir)


def synthesize_dashboards(outdir: Path, flags: dict[str, Any]) -> Synthesized:
    """Stack `Dashboards`: `Own` (dashboard=True), `First` and `Second` in one BounceDashboard."""
    app = cdk.App(outdir=str(outdir), context=dict(flags))
    stack = cdk.Stack(app, "Dashboards", env=ENV)
    BounceProcessor(
        stack,
        "Own",
        recipients=["own.example.com"],
        bounce_sender="b@example.com",
        rate_per_second=4,
        metrics_namespace="Mail/Bounces",
        oldest_message_age_threshold=cdk.Duration.hours(6),
        dashboard=True,
    )
    rule_set = ses.ReceiptRuleSet(stack, "SharedRuleSet")
    shared = [
        BounceProcessor(
            stack,
            name,
            recipients=[f"{name.lower()}.example.com"],
            bounce_sender="b@example.com",
            rule_set=rule_set,
        )
        for name in ("First", "Second")
    ]
    BounceDashboard(stack, "Shared", processors=shared)
    return synthesize(app, outdir)


def _session_fixture(
    build: Callable[[Path, dict[str, Any]], Synthesized], flags: dict[str, Any]
) -> Callable[[pytest.TempPathFactory], Synthesized]:
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
        return build(tmp_path_factory.mktemp(build.__name__), flags)

    fixture.__doc__ = f"{build.__doc__} ({'recommended feature flags' if flags else 'no flags'})"
    return fixture


# Session fixtures `example`, `full_options`, `composition`, `dashboards` (no flags) and the
# same names with `_recommended` (the recommended flags).
for _build in (
    synthesize_example,
    synthesize_full_options,
    synthesize_composition,
    synthesize_dashboards,
):
    for _suffix, _flags in (("", {}), ("_recommended", RECOMMENDED_FLAGS)):
        _name = _build.__name__.removeprefix("synthesize_") + _suffix
        globals()[_name] = pytest.fixture(scope="session", name=_name)(
            _session_fixture(_build, _flags)
        )


@pytest.fixture
def new_stack() -> Callable[..., cdk.Stack]:
    """A factory of fresh stacks (construction only: nothing is synthesized)."""

    def make(**context: Any) -> cdk.Stack:
        env = context.pop("env", ENV)
        return cdk.Stack(cdk.App(context=context or None), "Test", env=env)

    return make
