"""The receipt rule (and its rule set when none is passed): store in S3, notify the topic.

Every condition on a service principal below is one the AWS documentation shows for this path
(docs/design.md, "Resource policies", has the table with page titles and URLs):

- Bucket policy (SES -> S3 PutObject) and the mail-write role's trust policy (SES ->
  sts:AssumeRole): `aws:SourceAccount` = this account and `aws:SourceArn` = this receipt rule,
  as in "Giving permissions to Amazon SES for email receiving"
  (https://docs.aws.amazon.com/ses/latest/dg/receiving-email-permissions.html), sections "Give
  SES permission to write to an S3 bucket" and "Trust policy for S3 action IAM role".
- Topic policy (SES -> SNS Publish): the same two keys, as that page's section "Give SES
  permission to publish to an Amazon SNS topic that belongs to a different AWS account" shows
  for the rule's notifications. For a topic of the same account the page asks for no policy at
  all, so a statement that SES may not need cannot stop mail; where SES does evaluate it, it
  presents the keys the page shows.

SES test-writes to the bucket when the rule is created, so the policy must exist before the rule.
The rule ARN is built from names known at synth (an explicit rule name, and the rule set's name),
never from the rule resource: a policy that referenced the rule would come after it, which broke
aws-cdk's attempt at the same condition (aws-cdk #29833, #30143, reverted in #30375).

Opt-in regions: "SES does not support S3 buckets in Opt-in regions as a destination for inbound
emails" ("Deliver to S3 bucket action", SES developer guide) unless the S3 action names an IAM
role (`IamRoleArn`) that SES assumes; then "the role (and only the role) is used to access all
the given resources" (SES API reference, "S3Action"). `MailWriteRole` is that role.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces.aws_ses import IReceiptRuleRef
from constructs import Construct, IConstruct

from cdk_ses_bounce import defaults, nag

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


def source_conditions(
    scope: IConstruct, policy_scope: IConstruct, rule_set: ses.IReceiptRuleSet, name: str
) -> dict[str, dict[str, object]]:
    """`aws:SourceAccount` = this account and `aws:SourceArn` = the rule `name` in `rule_set`,
    as written in `policy_scope`'s stack: the conditions of the SES developer guide's policies."""
    rule_set_name = rule_set.receipt_rule_set_name
    account = _concrete(cdk.Stack.of(scope).account) or cdk.Stack.of(policy_scope).account
    same_account: dict[str, object] = {"aws:SourceAccount": account}
    if cdk.Token.is_unresolved(rule_set_name) and cdk.Stack.of(policy_scope) is not cdk.Stack.of(
        rule_set
    ):
        # A resource of another stack cannot name a rule set defined here without making the
        # two stacks depend on each other; the rule name alone is unique (it hashes the path).
        return {
            "StringEquals": same_account,
            "StringLike": {"aws:SourceArn": rule_arn(scope, policy_scope, "*", name)},
        }
    return {
        "StringEquals": {
            **same_account,
            "aws:SourceArn": rule_arn(scope, policy_scope, rule_set_name, name),
        }
    }


def allow_ses_to_store_mail(
    scope: Construct,
    bucket: s3.IBucket,
    object_key_prefix: str,
    rule_set: ses.IReceiptRuleSet,
    name: str,
) -> iam.AddToResourcePolicyResult:
    """Let SES write objects under the prefix, for the rule `name` of this account only
    (SES developer guide, "Give SES permission to write to an S3 bucket")."""
    return bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowSesToStoreMailForItsRule",
            principals=[iam.ServicePrincipal(SES_PRINCIPAL)],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{object_key_prefix}*")],
            conditions=source_conditions(scope, bucket, rule_set, name),
        )
    )


def allow_ses_to_publish(
    scope: Construct, topic: sns.ITopic, rule_set: ses.IReceiptRuleSet, name: str
) -> None:
    """Let SES publish the rule's notifications to `topic`, for the rule `name` of this account
    only (SES developer guide, "Give SES permission to publish to an Amazon SNS topic ...")."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowSesToPublishForItsRule",
            principals=[iam.ServicePrincipal(SES_PRINCIPAL)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=source_conditions(scope, topic, rule_set, name),
        )
    )


def needs_mail_write_role(region: str, asked: bool | None) -> bool:
    """Whether the S3 action writes through `MailWriteRole`: as asked, else in an opt-in region."""
    if asked is not None:
        return asked
    return not cdk.Token.is_unresolved(region) and region in defaults.OPT_IN_REGIONS


def new_mail_write_role(
    scope: Construct,
    *,
    bucket: s3.IBucket,
    object_key_prefix: str,
    topic: sns.ITopic,
    topic_key: kms.IKey,
    rule_set: ses.IReceiptRuleSet,
    name: str,
) -> iam.Role:
    """`MailWriteRole`: the role SES assumes for the rule's S3 action (`IamRoleArn`). Its trust
    policy is the SES developer guide's ("Trust policy for S3 action IAM role"); it may put
    objects under the prefix, publish to the topic and use the topic's key, nothing else (the
    permissions of "Setting up IAM role permissions for Deliver to S3 bucket action", and the
    publisher's KMS permissions of SNS's "Managing Amazon SNS encryption keys and costs")."""
    role = iam.Role(
        scope,
        "MailWriteRole",
        assumed_by=iam.ServicePrincipal(
            SES_PRINCIPAL, conditions=source_conditions(scope, scope, rule_set, name)
        ),
        description="SES assumes this role to store mail and notify for one receipt rule",
    )
    objects = bucket.arn_for_objects(f"{object_key_prefix}*")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="StoreMailUnderThePrefix", actions=["s3:PutObject"], resources=[objects]
        )
    )
    topic.grant_publish(role)
    topic_key.grant(role, "kms:GenerateDataKey*", "kms:Decrypt")
    nag.acknowledge_wildcard_resource(
        role,
        objects,
        "SES names each mail object by its message id, under the rule's key prefix",
    )
    nag.acknowledge(
        role,
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "The publisher permission SNS documents for an encrypted topic, on the topic's key only",
    )
    return role


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
    topic_key: kms.IKey,
    mail_write_role: bool,
) -> tuple[ses.ReceiptRule, iam.Role | None]:
    """`Rule`: spam/virus scanning on, raw mail to `bucket`, a notification to `topic`; with
    `mail_write_role`, SES does both as `MailWriteRole` (returned with the rule).

    It is created after the bucket policy, the topic policy and the role, so SES may write the
    mail and publish its first notification when the rule is saved.
    """
    name = rule_name(scope)
    role: iam.Role | None = None
    if mail_write_role:
        role = new_mail_write_role(
            scope,
            bucket=bucket,
            object_key_prefix=object_key_prefix,
            topic=topic,
            topic_key=topic_key,
            rule_set=rule_set,
            name=name,
        )
    else:
        allowed = allow_ses_to_store_mail(scope, bucket, object_key_prefix, rule_set, name)
        allow_ses_to_publish(scope, topic, rule_set, name)
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
    if role is not None:
        # The L2 S3 action has no IamRoleArn (aws-cdk-lib 2.275); CloudFormation's
        # AWS::SES::ReceiptRule S3Action has (cfn-lint's schema checks it).
        cfn_rule = rule.node.default_child
        assert isinstance(cfn_rule, ses.CfnReceiptRule)
        cfn_rule.add_property_override("Rule.Actions.0.S3Action.IamRoleArn", role.role_arn)
        rule.node.add_dependency(role)
    elif allowed.statement_added and allowed.policy_dependable is not None:
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
    return rule, role
