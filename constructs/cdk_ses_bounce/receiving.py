"""The receipt rule (and its rule set when none is passed): store in S3, notify the topic.

SES may write to the mail bucket only for this processor's rule: the bucket policy names the
rule's ARN (`aws:SourceArn`), as the SES developer guide's bucket policy does
(https://docs.aws.amazon.com/ses/latest/dg/receiving-email-permissions.html#receiving-email-permissions-s3).
SES test-writes to the bucket when the rule is created, so the policy must exist before the rule.
The ARN is built from names known at synth (an explicit rule name, and the rule set's name), never
from the rule resource: a policy that referenced the rule would come after it, which broke
aws-cdk's attempt at the same condition (aws-cdk #29833, #30143, reverted in #30375).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces.aws_ses import IReceiptRuleRef
from constructs import Construct, IConstruct

# SES receipt rule names: ASCII letters, digits, '_', '-', '.'; starting and ending with a letter
# or digit; at most 64 characters (botocore's ses model, ReceiptRule.Name).
RULE_NAME_MAX_LENGTH: Final = 64
RULE_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?", re.ASCII)
SES_PRINCIPAL: Final = "ses.amazonaws.com"


def rule_name(scope: IConstruct) -> str:
    """The rule's name: the stack name and construct path of `scope` with a hash of the path,
    so it is unique in any rule set the app's processors share, and known at synth."""
    return cdk.Names.unique_resource_name(scope, max_length=RULE_NAME_MAX_LENGTH, separator="-")


def _concrete(value: str) -> str | None:
    return None if cdk.Token.is_unresolved(value) else value


def rule_arn(scope: IConstruct, policy_scope: IConstruct, rule_set_name: str, name: str) -> str:
    """`arn:<partition>:ses:<region>:<account>:receipt-rule-set/<set>:receipt-rule/<rule>` of a
    rule in `scope`'s stack, as written in `policy_scope`'s stack (its own pseudo parameters
    stand in for an unresolved region or account, so no stack exports them to the other)."""
    here = cdk.Stack.of(scope)
    return cdk.Stack.of(policy_scope).format_arn(
        service="ses",
        region=_concrete(here.region),
        account=_concrete(here.account),
        resource="receipt-rule-set",
        resource_name=f"{rule_set_name}:receipt-rule/{name}",
        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
    )


@jsii.implements(ses.IReceiptRuleAction)
class _StoreAndNotify:
    """The rule's S3 action; unlike `aws_ses_actions.S3` it leaves the bucket policy alone."""

    def __init__(self, bucket: s3.IBucket, object_key_prefix: str, topic: sns.ITopic) -> None:
        self._config = ses.ReceiptRuleActionConfig(
            s3_action=ses.S3ActionConfig(
                bucket_name=bucket.bucket_name,
                object_key_prefix=object_key_prefix,
                topic_arn=topic.topic_arn,
            )
        )

    def bind(self, receipt_rule: IReceiptRuleRef) -> ses.ReceiptRuleActionConfig:
        """The action's configuration (the same for every rule)."""
        return self._config


def allow_ses_to_store_mail(
    scope: Construct,
    bucket: s3.IBucket,
    object_key_prefix: str,
    rule_set: ses.IReceiptRuleSet,
    name: str,
) -> iam.AddToResourcePolicyResult:
    """Let SES write objects under the prefix, for the rule `name` of this account only."""
    rule_set_name = rule_set.receipt_rule_set_name
    account = _concrete(cdk.Stack.of(scope).account) or cdk.Stack.of(bucket).account
    same_account: dict[str, object] = {"aws:SourceAccount": account}
    if cdk.Token.is_unresolved(rule_set_name) and cdk.Stack.of(bucket) is not cdk.Stack.of(
        rule_set
    ):
        # A bucket from another stack cannot name a rule set defined here without making the
        # two stacks depend on each other; the rule name alone is unique (it hashes the path).
        conditions = {
            "StringEquals": same_account,
            "StringLike": {"aws:SourceArn": rule_arn(scope, bucket, "*", name)},
        }
    else:
        conditions = {
            "StringEquals": {
                **same_account,
                "aws:SourceArn": rule_arn(scope, bucket, rule_set_name, name),
            }
        }
    return bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowSesToStoreMailForItsRule",
            principals=[iam.ServicePrincipal(SES_PRINCIPAL)],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{object_key_prefix}*")],
            conditions=conditions,
        )
    )


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

    It is created after the bucket policy and the topic policy, so SES may write the mail and
    publish its first notification.
    """
    name = rule_name(scope)
    allowed = allow_ses_to_store_mail(scope, bucket, object_key_prefix, rule_set, name)
    rule = ses.ReceiptRule(
        scope,
        "Rule",
        rule_set=rule_set,
        after=rule_after,
        receipt_rule_name=name,
        recipients=list(recipients),
        scan_enabled=True,
        tls_policy=tls_policy,
        enabled=True,
        actions=[_StoreAndNotify(bucket, object_key_prefix, topic)],
    )
    if allowed.statement_added and allowed.policy_dependable is not None:
        rule.node.add_dependency(allowed.policy_dependable)
    else:
        cdk.Annotations.of(rule).add_warning_v2(
            "cdk-ses-bounce:importedBucket",
            f"bucket is imported, so its policy cannot be changed here: it must let "
            f"{SES_PRINCIPAL} s3:PutObject under {object_key_prefix!r}, with aws:SourceArn "
            f"= this rule (receipt rule name {name!r}) and aws:SourceAccount = this account, "
            "before the rule is deployed",
        )
    rule.node.add_dependency(topic.node.find_child("Policy"))
    return rule
