"""BounceProcessor: SES receipt rule -> S3 -> SNS -> SQS (+DLQ) -> Lambda sending SendBounce.

This module is the wiring; validation, defaults and the builders of each part live beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from bounce_runtime import contract
from bounce_runtime.core.policy import BouncePolicy
from cdk_ses_bounce import (
    alarms,
    defaults,
    dns,
    function,
    identities,
    messaging,
    receiving,
    storage,
    validation,
)
from cdk_ses_bounce.activation import RuleSetActivation
from cdk_ses_bounce.alarms import BounceProcessorAlarms
from cdk_ses_bounce.budget import ISendBounceBudget, SendBounceBudget, note_budget_use
from cdk_ses_bounce.dashboard import BounceDashboard
from cdk_ses_bounce.grants import BounceProcessorGrants
from cdk_ses_bounce.metrics import BounceProcessorMetrics
from cdk_ses_bounce.props import Props


class BounceProcessor(BounceProcessorMetrics, BounceProcessorGrants, Construct):
    """Bounces mail that SES receives for `recipients`, through the SES v1 SendBounce API.

    Construct IDs (a public contract): `RuleSet` (only when none is passed), `Rule`,
    `MailBucket` and `AccessLogsBucket` (only when no bucket is passed), `TopicKey`, `Topic`,
    `DeadLetterQueue`, `Queue`, `PolicyLayer`, `FunctionRole`, `FunctionLogGroup`, `Function`,
    `SendBudget` (only when no budget is passed), the alarms of `BounceProcessorAlarms`,
    `RuleSetActivation` (with `activate_rule_set`), `MxRecord-<domain>` (with `hosted_zone`),
    `MailWriteRole` (in opt-in regions or with `mail_write_role=True`), `Identity-<domain>` and
    `DkimRecord-<domain>-<n>` (with `recipient_identities`) and `Dashboard` (with `dashboard`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        recipients: Sequence[str],
        bounce_sender: str,
        bounce_sender_arn: str | None = None,
        recipient_identity_arns: Mapping[str, str] | None = None,
        policy: BouncePolicy | Mapping[str, Any] | None = None,
        rule_set: ses.IReceiptRuleSet | None = None,
        rule_after: ses.IReceiptRule | None = None,
        activate_rule_set: bool = False,
        activate_imported_rule_set: bool = False,
        tls_policy: ses.TlsPolicy | None = None,
        bucket: s3.IBucket | None = None,
        object_key_prefix: str = defaults.OBJECT_KEY_PREFIX,
        mail_retention: cdk.Duration | None = None,
        removal_policy: cdk.RemovalPolicy | None = None,
        server_access_logs_bucket: s3.IBucket | None = None,
        budget: ISendBounceBudget | None = None,
        rate_per_second: float | None = None,
        max_concurrency: int = defaults.MAX_CONCURRENCY,
        batch_size: int = defaults.BATCH_SIZE,
        max_batching_window: cdk.Duration | None = None,
        function_timeout: cdk.Duration = defaults.FUNCTION_TIMEOUT,
        max_receive_count: int = defaults.MAX_RECEIVE_COUNT,
        log_retention: logs.RetentionDays = defaults.LOG_RETENTION,
        metrics_namespace: str = contract.DEFAULT_METRICS_NAMESPACE,
        oldest_message_age_threshold: cdk.Duration = defaults.OLDEST_MESSAGE_AGE_THRESHOLD,
        alarm_action: cloudwatch.IAlarmAction | None = None,
        receiving_regions: Sequence[str] | None = None,
        hosted_zone: route53.IHostedZone | None = None,
        recipient_identities: bool = False,
        mail_write_role: bool | None = None,
        dashboard: bool = False,
    ) -> None:
        """Provision the bounce path.

        :param recipients: domains and/or addresses the receipt rule matches (1-100).
        :param bounce_sender: From address of the bounces (a verified SES identity).
        :param bounce_sender_arn: identity ARN for sending authorization; default: none, and
            SendBounce is allowed on the identities of `bounce_sender`'s address and domain.
        :param recipient_identity_arns: recipient domain or address -> identity ARN (sending
            authorization, RecipientArn); default: none.
        :param policy: the bounce policy (a `BouncePolicy` or its dict form), validated now;
            default: `default_policy()`, every matched recipient bounces as DoesNotExist with
            all guards on.
        :param rule_set: receipt rule set to add the rule to; default: a new rule set.
        :param rule_after: rule after which to place the rule; default: first in the set.
        :param activate_rule_set: make the rule set active (custom resource); default False.
        :param activate_imported_rule_set: confirm activating an imported `rule_set`;
            default False (refused).
        :param tls_policy: TLS requirement of the rule; default OPTIONAL (the SES default).
        :param bucket: existing bucket for the raw mail; default: a new secured bucket.
        :param object_key_prefix: key prefix of the raw mail; default `inbound/`.
        :param mail_retention: expiry of raw mail (new bucket only); default 7 days.
        :param removal_policy: of the new buckets; default RETAIN.
        :param server_access_logs_bucket: target of the new bucket's access logs; default: a
            new log bucket (objects expire after 90 days).
        :param budget: the SendBounce budget of the account and region, shared by every
            processor there (every SendBounce call takes a slot from it first); default: a new
            `SendBounceBudget` of this processor's own (`SendBudget`), at 1 call per second.
        :param rate_per_second: deprecated: set `rate_per_second` on the `SendBounceBudget` and
            pass it as `budget`. Still sets the rate of the processor's own budget (with a
            warning); refused together with `budget`.
        :param max_concurrency: SQS event source maximum concurrency; default 2 (the minimum).
        :param batch_size: SQS records per invocation; default 10.
        :param max_batching_window: SQS batching window; default none.
        :param function_timeout: Lambda timeout; default 2 minutes.
        :param max_receive_count: receives before the dead-letter queue; default 10.
        :param log_retention: of the function logs; default three months.
        :param metrics_namespace: namespace of the runtime's metrics; default `CdkSesBounce`.
        :param oldest_message_age_threshold: age alarm threshold (< 24 h); default 1 hour.
        :param alarm_action: action of every alarm; default: none.
        :param receiving_regions: regions where SES receives mail; default: context key
            `cdk-ses-bounce:receivingRegions`, else `defaults.RECEIVING_REGIONS`.
        :param hosted_zone: zone to create MX records in for domain recipients; default: none.
        :param recipient_identities: create an SES domain identity for each domain recipient
            (with its DKIM records when `hosted_zone` is given); default False (SES receives
            only for verified identities, so verify them yourself). An identity that already
            exists makes the deployment fail: synth warns `cdk-ses-bounce:identityMayExist`.
        :param mail_write_role: SES writes the mail and publishes as `MailWriteRole` (the S3
            action's IAM role); default: only in opt-in regions, where SES needs it; False
            there is refused.
        :param dashboard: add a CloudWatch dashboard of this processor (`BounceDashboard`);
            default False (several processors can share one `BounceDashboard`).
        """
        props = Props(
            recipients=tuple(recipients),
            bounce_sender=bounce_sender,
            bounce_sender_arn=bounce_sender_arn,
            recipient_identity_arns=dict(recipient_identity_arns or {}),
            policy=policy,
            rule_set=rule_set,
            rule_after=rule_after,
            activate_rule_set=activate_rule_set,
            activate_imported_rule_set=activate_imported_rule_set,
            tls_policy=tls_policy,
            bucket=bucket,
            object_key_prefix=object_key_prefix,
            mail_retention=mail_retention,
            removal_policy=removal_policy,
            server_access_logs_bucket=server_access_logs_bucket,
            budget=budget,
            rate_per_second=rate_per_second,
            max_concurrency=max_concurrency,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            function_timeout=function_timeout,
            max_receive_count=max_receive_count,
            log_retention=log_retention,
            metrics_namespace=metrics_namespace,
            oldest_message_age_threshold=oldest_message_age_threshold,
            alarm_action=alarm_action,
            receiving_regions=tuple(receiving_regions) if receiving_regions is not None else None,
            hosted_zone=hosted_zone,
            recipient_identities=recipient_identities,
            mail_write_role=mail_write_role,
            dashboard=dashboard,
        )
        checked_policy = validation.validate_props(scope, props)

        super().__init__(scope, id)
        storage.use_bucket_policy_for_access_logs(self)
        self._budget = budget or SendBounceBudget(
            self,
            "SendBudget",
            rate_per_second=(
                rate_per_second
                if rate_per_second is not None
                else contract.DEFAULT_SEND_RATE_PER_SECOND
            ),
        )
        note_budget_use(self, self._budget)
        validation.add_warnings(self, props, checked_policy, self._budget)
        self._object_key_prefix = object_key_prefix

        if bucket is None:
            mail_storage = storage.new_mail_storage(
                self,
                object_key_prefix=object_key_prefix,
                mail_retention=mail_retention or defaults.MAIL_RETENTION,
                removal_policy=removal_policy or defaults.BUCKET_REMOVAL_POLICY,
                server_access_logs_bucket=server_access_logs_bucket,
            )
            self._bucket = mail_storage.bucket
            self._access_logs_bucket = mail_storage.access_logs_bucket
        else:
            self._bucket, self._access_logs_bucket = bucket, None

        uses_role = receiving.needs_mail_write_role(cdk.Stack.of(self).region, mail_write_role)
        self._messaging = messaging.new_messaging(self, props, ses_uses_key=not uses_role)
        self._rule_set = rule_set or ses.ReceiptRuleSet(self, "RuleSet")
        self._rule, self._mail_write_role = receiving.new_rule(
            self,
            rule_set=self.rule_set,
            rule_after=rule_after,
            recipients=props.recipients,
            tls_policy=tls_policy or defaults.TLS_POLICY,
            bucket=self.bucket,
            object_key_prefix=object_key_prefix,
            topic=self.topic,
            topic_key=self.topic_key,
            mail_write_role=uses_role,
        )

        self._policy_layer = function.new_policy_layer(self, checked_policy)
        self._function = function.new_function(
            self,
            props,
            bucket=self.bucket,
            dead_letter_queue=self.dead_letter_queue,
            policy_layer=self.policy_layer,
            budget=self.budget,
        )
        function.consume_queue(self.function, props, self.queue, self.dead_letter_queue)

        self._metrics_namespace = metrics_namespace
        self._oldest_message_age_threshold = oldest_message_age_threshold
        self._alarms = alarms.new_alarms(
            self,
            self,
            age_threshold=oldest_message_age_threshold,
            alarm_action=alarm_action,
        )
        self._activation: RuleSetActivation | None = None
        if activate_rule_set:
            self._activation = RuleSetActivation(self, "RuleSetActivation", rule_set=self.rule_set)
            self._activation.node.add_dependency(self.rule)
        if hosted_zone is not None:
            dns.new_mx_records(self, hosted_zone, props.recipients, cdk.Stack.of(self).region)
        self._recipient_identities: list[ses.EmailIdentity] = (
            identities.new_recipient_identities(self, props.recipients, hosted_zone)
            if recipient_identities
            else []
        )
        self._dashboard: BounceDashboard | None = None
        if dashboard:
            self._dashboard = BounceDashboard(self, "Dashboard", processors=[self])

    @property
    def budget(self) -> ISendBounceBudget:
        """The SendBounce budget the function takes a slot from before every call (passed in,
        or the processor's own)."""
        return self._budget

    @property
    def object_key_prefix(self) -> str:
        """Key prefix of the raw mail objects."""
        return self._object_key_prefix

    @property
    def bucket(self) -> s3.IBucket:
        """Bucket holding the raw mail (new or passed in)."""
        return self._bucket

    @property
    def access_logs_bucket(self) -> s3.IBucket | None:
        """Target of the new mail bucket's access logs (None with an existing bucket)."""
        return self._access_logs_bucket

    @property
    def topic_key(self) -> kms.Key:
        """Customer-managed key of the topic (SES may use it)."""
        return self._messaging.topic_key

    @property
    def topic(self) -> sns.Topic:
        """Topic the receipt rule's S3 action notifies."""
        return self._messaging.topic

    @property
    def dead_letter_queue(self) -> sqs.Queue:
        """Dead-letter queue: permanent failures, expired and over-received records, and
        notifications SNS could not deliver to the queue."""
        return self._messaging.dead_letter_queue

    @property
    def queue(self) -> sqs.Queue:
        """Queue feeding the function (raw SNS delivery)."""
        return self._messaging.queue

    @property
    def rule_set(self) -> ses.IReceiptRuleSet:
        """Receipt rule set holding the rule (new or passed in)."""
        return self._rule_set

    @property
    def rule(self) -> ses.ReceiptRule:
        """The receipt rule."""
        return self._rule

    @property
    def mail_write_role(self) -> iam.Role | None:
        """The role SES assumes to store mail and notify (None unless one is used)."""
        return self._mail_write_role

    @property
    def recipient_identities(self) -> list[ses.EmailIdentity]:
        """The SES identities created for the domain recipients (empty unless asked for)."""
        return list(self._recipient_identities)

    @property
    def policy_layer(self) -> lambda_.LayerVersion:
        """Layer holding the bounce policy at /opt/cdk-ses-bounce/policy.json."""
        return self._policy_layer

    @property
    def function(self) -> lambda_.Function:
        """Function running the bounce runtime."""
        return self._function

    @property
    def alarms(self) -> BounceProcessorAlarms:
        """The alarms."""
        return self._alarms

    @property
    def activation(self) -> RuleSetActivation | None:
        """Rule set activation custom resource (None unless activate_rule_set)."""
        return self._activation

    @property
    def metrics_namespace(self) -> str:
        """CloudWatch namespace of the runtime's metrics."""
        return self._metrics_namespace

    @property
    def rate_per_second(self) -> float:
        """SendBounce calls per second that its budget allows, for every processor sharing it."""
        return self.budget.rate_per_second

    @property
    def oldest_message_age_threshold(self) -> cdk.Duration:
        """Age of the oldest waiting message at which its alarm fires."""
        return self._oldest_message_age_threshold

    @property
    def dashboard(self) -> BounceDashboard | None:
        """The processor's own dashboard (None unless `dashboard=True`)."""
        return self._dashboard
