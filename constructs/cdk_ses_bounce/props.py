"""The props of a BounceProcessor as one value, handed from the construct to its builders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses

from bounce_runtime.core.policy import BouncePolicy
from cdk_ses_bounce.budget import ISendBounceBudget


@dataclass(frozen=True)
class Props:
    """What the user passed to `BounceProcessor` (defaults applied; see its docstring).

    Its fields are the construct's keyword-only parameters, one for one and in the same order:
    tests/docs/test_props_declared_alike.py holds them, the docstring and the README's table
    together."""

    recipients: tuple[str, ...]
    bounce_sender: str
    bounce_sender_arn: str | None
    recipient_identity_arns: Mapping[str, str]
    policy: BouncePolicy | Mapping[str, Any] | None
    rule_set: ses.IReceiptRuleSet | None
    rule_after: ses.IReceiptRule | None
    activate_rule_set: bool
    activate_imported_rule_set: bool
    tls_policy: ses.TlsPolicy | None
    bucket: s3.IBucket | None
    object_key_prefix: str
    mail_retention: cdk.Duration | None
    removal_policy: cdk.RemovalPolicy | None
    server_access_logs_bucket: s3.IBucket | None
    budget: ISendBounceBudget | None
    rate_per_second: float | None  # deprecated: the budget's
    max_concurrency: int
    batch_size: int
    max_batching_window: cdk.Duration | None
    function_timeout: cdk.Duration
    max_receive_count: int
    log_retention: logs.RetentionDays
    metrics_namespace: str
    oldest_message_age_threshold: cdk.Duration
    alarm_action: cloudwatch.IAlarmAction | None
    receiving_regions: tuple[str, ...] | None
    hosted_zone: route53.IHostedZone | None
    recipient_identities: bool
    mail_write_role: bool | None
    dashboard: bool
