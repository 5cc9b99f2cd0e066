"""The receipt rule (and its rule set when none is passed): store in S3, notify the topic."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_ses_actions as ses_actions
from aws_cdk import aws_sns as sns
from constructs import Construct


def new_rule(
    scope: Construct,
    *,
    rule_set: ses.IReceiptRuleSet,
    rule_after: ses.IReceiptRule | None,
    recipients: Sequence[str],
    tls_policy: ses.TlsPolicy,
    bucket: s3.IBucket,
    object_key_prefix: str,
    topic: sns.Topic,
) -> ses.ReceiptRule:
    """`Rule`: spam/virus scanning on, raw mail to `bucket`, a notification to `topic`.

    It is created after the topic policy, so SES may publish its first notification.
    """
    rule = ses.ReceiptRule(
        scope,
        "Rule",
        rule_set=rule_set,
        after=rule_after,
        recipients=list(recipients),
        scan_enabled=True,
        tls_policy=tls_policy,
        enabled=True,
        actions=[ses_actions.S3(bucket=bucket, object_key_prefix=object_key_prefix, topic=topic)],
    )
    rule.node.add_dependency(topic.node.find_child("Policy"))
    return rule
