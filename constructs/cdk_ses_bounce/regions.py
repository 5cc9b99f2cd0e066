"""Where SES receives mail: the receiving regions (prop, context or default), and the stack
region's problems, opt-in regions included (SES writes there only through the S3 action's role)."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_route53 as route53
from constructs import Construct

from cdk_ses_bounce import defaults


def receiving_regions(scope: Construct, from_props: Sequence[str] | None) -> tuple[str, ...]:
    """The regions where SES receives mail: the prop, else the context key, else the default."""
    if from_props is not None:
        return tuple(from_props)
    from_context = scope.node.try_get_context(defaults.RECEIVING_REGIONS_CONTEXT_KEY)
    if isinstance(from_context, str):
        return tuple(r.strip() for r in from_context.split(",") if r.strip())
    if isinstance(from_context, list):
        return tuple(str(r) for r in from_context)
    return defaults.RECEIVING_REGIONS


def region_problems(
    scope: Construct,
    region: str,
    from_props: Sequence[str] | None,
    hosted_zone: route53.IHostedZone | None,
) -> list[str]:
    """Problems of the stack region (SES receives mail only in some regions)."""
    if cdk.Token.is_unresolved(region):
        if hosted_zone is None:
            return []
        return [
            "hosted_zone needs a concrete stack region for its MX records "
            "(inbound-smtp.<region>.amazonaws.com), got an unresolved region"
        ]
    allowed = receiving_regions(scope, from_props)
    if region in allowed:
        return []
    return [
        f"region {region!r} does not receive mail through SES; receiving regions: "
        f"{', '.join(allowed)} (override with the receiving_regions prop or the context key "
        f"{defaults.RECEIVING_REGIONS_CONTEXT_KEY!r})"
    ]


def mail_write_role_problems(region: str, mail_write_role: bool | None) -> list[str]:
    """Problems of `mail_write_role` (SES needs the role in opt-in regions)."""
    if mail_write_role is not False or cdk.Token.is_unresolved(region):
        return []
    if region not in defaults.OPT_IN_REGIONS:
        return []
    return [
        f"mail_write_role=False in {region!r}, an opt-in region: SES writes to S3 buckets there "
        "only through the S3 action's IAM role (IamRoleArn); leave mail_write_role unset or "
        "True"
    ]
