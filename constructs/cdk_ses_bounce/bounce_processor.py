"""BounceProcessor: SES receipt rule -> S3 -> SNS -> SQS (+DLQ) -> Lambda sending SendBounce."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_ses_actions as ses_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from bounce_runtime import contract
from bounce_runtime.policy import BouncePolicy
from cdk_ses_bounce import defaults, nag, validation
from cdk_ses_bounce.activation import RuleSetActivation
from cdk_ses_bounce.assets import stage_policy, stage_runtime
from cdk_ses_bounce.props import Props

# The runtime's send claim is `<object key>` + this suffix (bounce_runtime.mail_store.CLAIM_SUFFIX;
# not imported, as that module needs botocore).
SEND_CLAIM_SUFFIX = ".bounce-claim"
# aws-cdk-lib feature flag (cx_api.S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY in TypeScript).
S3_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


@dataclass(frozen=True)
class BounceProcessorAlarms:
    """The alarms a BounceProcessor creates (construct IDs in parentheses)."""

    dead_letter_queue_not_empty: cloudwatch.Alarm  # DeadLetterQueueNotEmptyAlarm
    oldest_message_age: cloudwatch.Alarm  # OldestMessageAgeAlarm
    function_errors: cloudwatch.Alarm  # FunctionErrorsAlarm
    send_bounce_throttled: cloudwatch.Alarm  # SendBounceThrottledAlarm
    permanent_failures: cloudwatch.Alarm  # PermanentFailuresAlarm

    def __iter__(self) -> Iterator[cloudwatch.Alarm]:
        """All alarms, in declaration order."""
        return iter(
            (
                self.dead_letter_queue_not_empty,
                self.oldest_message_age,
                self.function_errors,
                self.send_bounce_throttled,
                self.permanent_failures,
            )
        )


class BounceProcessor(Construct):
    """Bounces mail that SES receives for `recipients`, through the SES v1 SendBounce API.

    Construct IDs (a public contract): `RuleSet` (only when none is passed), `Rule`,
    `MailBucket` and `AccessLogsBucket` (only when no bucket is passed), `TopicKey`, `Topic`,
    `DeadLetterQueue`, `Queue`, `PolicyLayer`, `FunctionRole`, `FunctionLogGroup`, `Function`,
    the alarms of `BounceProcessorAlarms`, `RuleSetActivation` (with `activate_rule_set`) and
    `MxRecord-<domain>` (with `hosted_zone`).
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
        rate_per_second: float = defaults.RATE_PER_SECOND,
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
        :param rate_per_second: SendBounce calls per second, all instances together; default 1.
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
        )
        checked_policy = validation.validate_props(scope, props)

        super().__init__(scope, id)
        # Access logs are allowed by a bucket policy, not by the legacy log-delivery ACL.
        self.node.set_context(S3_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        validation.add_warnings(self, props, checked_policy)
        stack = cdk.Stack.of(self)
        recipient_arns = dict(props.recipient_identity_arns)

        self._object_key_prefix = object_key_prefix
        self._access_logs_bucket: s3.IBucket | None = None
        if bucket is None:
            self._bucket: s3.IBucket = self._new_mail_bucket(
                mail_retention or defaults.MAIL_RETENTION,
                removal_policy or defaults.BUCKET_REMOVAL_POLICY,
                server_access_logs_bucket,
            )
        else:
            self._bucket = bucket

        self._topic_key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the cdk-ses-bounce notification topic; SES may use it",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        ses_principal = iam.ServicePrincipal("ses.amazonaws.com")
        same_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSesToPublishToTheEncryptedTopic",
                principals=[ses_principal],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions=same_account,
            )
        )
        self._topic = sns.Topic(self, "Topic", master_key=self.topic_key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSesToPublish",
                principals=[ses_principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=same_account,
            )
        )

        self._dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=defaults.DEAD_LETTER_RETENTION,
        )
        batching_seconds = max_batching_window.to_seconds() if max_batching_window else 0
        self._queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(
                defaults.VISIBILITY_TIMEOUT_FACTOR * function_timeout.to_seconds()
                + batching_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
        self.topic.add_subscription(
            subscriptions.SqsSubscription(self.queue, raw_message_delivery=True)
        )

        self._rule_set: ses.IReceiptRuleSet = rule_set or ses.ReceiptRuleSet(self, "RuleSet")
        self._rule = ses.ReceiptRule(
            self,
            "Rule",
            rule_set=self.rule_set,
            after=rule_after,
            recipients=list(recipients),
            scan_enabled=True,
            tls_policy=tls_policy or defaults.TLS_POLICY,
            enabled=True,
            actions=[
                ses_actions.S3(
                    bucket=self.bucket, object_key_prefix=object_key_prefix, topic=self.topic
                )
            ],
        )
        topic_policy = self.topic.node.find_child("Policy")
        self.rule.node.add_dependency(topic_policy)

        self._policy_layer = lambda_.LayerVersion(
            self,
            "PolicyLayer",
            code=lambda_.Code.from_asset(
                str(stage_policy(checked_policy.to_dict(), contract.POLICY_LAYER_PATH))
            ),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_14],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="cdk-ses-bounce bounce policy",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self._function = self._new_function(
            bounce_sender=bounce_sender,
            bounce_sender_arn=bounce_sender_arn,
            recipient_arns=recipient_arns,
            send_rate=rate_per_second / max_concurrency,
            metrics_namespace=metrics_namespace,
            function_timeout=function_timeout,
            log_retention=log_retention,
        )
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=batch_size,
                max_batching_window=max_batching_window,
                max_concurrency=max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self.dead_letter_queue.grant_send_messages(self.function)

        self._alarms = self._new_alarms(
            metrics_namespace, oldest_message_age_threshold, alarm_action
        )
        self._activation: RuleSetActivation | None = None
        if activate_rule_set:
            activation = RuleSetActivation(self, "RuleSetActivation", rule_set=self.rule_set)
            activation.node.add_dependency(self.rule)
            self._activation = activation
        if hosted_zone is not None:
            self._new_mx_records(hosted_zone, recipients, stack.region)

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
        return self._topic_key

    @property
    def topic(self) -> sns.Topic:
        """Topic the receipt rule's S3 action notifies."""
        return self._topic

    @property
    def dead_letter_queue(self) -> sqs.Queue:
        """Dead-letter queue: permanent failures, expired and over-received records."""
        return self._dead_letter_queue

    @property
    def queue(self) -> sqs.Queue:
        """Queue feeding the function (raw SNS delivery)."""
        return self._queue

    @property
    def rule_set(self) -> ses.IReceiptRuleSet:
        """Receipt rule set holding the rule (new or passed in)."""
        return self._rule_set

    @property
    def rule(self) -> ses.ReceiptRule:
        """The receipt rule."""
        return self._rule

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

    def grant_read_mail(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant reading the raw mail (objects under the key prefix) to `grantee`."""
        return self.bucket.grant_read(grantee, f"{self.object_key_prefix}*")

    def _new_mail_bucket(
        self,
        mail_retention: cdk.Duration,
        removal_policy: cdk.RemovalPolicy,
        server_access_logs_bucket: s3.IBucket | None,
    ) -> s3.Bucket:
        secure: dict[str, Any] = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "enforce_ssl": True,
            "removal_policy": removal_policy,
        }
        if server_access_logs_bucket is None:
            logs_bucket = s3.Bucket(
                self,
                "AccessLogsBucket",
                **secure,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="ExpireAccessLogs", expiration=defaults.ACCESS_LOGS_RETENTION
                    )
                ],
            )
            self._access_logs_bucket = logs_bucket
        else:
            self._access_logs_bucket = server_access_logs_bucket
        return s3.Bucket(
            self,
            "MailBucket",
            **secure,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="mail-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireRawMail",
                    prefix=self.object_key_prefix or None,
                    expiration=mail_retention,
                    noncurrent_version_expiration=mail_retention,
                ),
                s3.LifecycleRule(
                    id="CleanUp",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                    expired_object_delete_marker=True,
                ),
            ],
        )

    def _new_function(
        self,
        *,
        bounce_sender: str,
        bounce_sender_arn: str | None,
        recipient_arns: dict[str, str],
        send_rate: float,
        metrics_namespace: str,
        function_timeout: cdk.Duration,
        log_retention: logs.RetentionDays,
    ) -> lambda_.Function:
        stack = cdk.Stack.of(self)
        log_group = logs.LogGroup(self, "FunctionLogGroup", retention=log_retention)
        role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="cdk-ses-bounce runtime: SendBounce, raw mail, queues",
        )
        log_group.grant_write(role)

        def identity_arn(name: str) -> str:
            return stack.format_arn(
                service="ses",
                resource="identity",
                resource_name=name,
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            )

        if bounce_sender_arn is not None:
            sender_arns = [bounce_sender_arn]
        elif cdk.Token.is_unresolved(bounce_sender):
            sender_arns = [identity_arn(bounce_sender)]
        else:
            local_part, domain = bounce_sender.rsplit("@", 1)
            # IAM compares resource ARNs case-sensitively; SES identities are lowercase domains.
            sender_arns = [
                identity_arn(f"{local_part}@{domain.lower()}"),
                identity_arn(domain.lower()),
            ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SendBounceAsTheBounceSender",
                actions=["ses:SendBounce"],
                resources=[*sender_arns, *dict.fromkeys(recipient_arns.values())],
                conditions={"StringEquals": {"ses:FromAddress": bounce_sender}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TellMissingMailFromForbidden",
                # Without ListBucket, S3 answers 403 instead of 404 for a missing key, and the
                # runtime could not dead-letter a missing mail object as mail-object-missing.
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )
        mail_objects = self.bucket.arn_for_objects(f"{self.object_key_prefix}*")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadAndTagRawMail",
                actions=["s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging"],
                resources=[mail_objects],
            )
        )
        nag.acknowledge_wildcard_resource(
            role,
            mail_objects,
            "The runtime reads and tags the raw mail objects, whose keys are the key prefix "
            "plus the SES message id: the '*' is only under that prefix",
        )
        send_claims = self.bucket.arn_for_objects(f"{self.object_key_prefix}*{SEND_CLAIM_SUFFIX}")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ClaimAndReleaseBounceSends",
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[send_claims],
            )
        )
        nag.acknowledge_wildcard_resource(
            role,
            send_claims,
            "Before each SendBounce the runtime creates <mail object key>.bounce-claim with a "
            "conditional write (and deletes it when SES did not send): the '*' stands for the SES "
            "message id, and only keys with that suffix under the prefix can be written",
        )
        environment = {
            "BOUNCE_SENDER": bounce_sender,
            "RECIPIENT_IDENTITY_ARNS": stack.to_json_string(
                {recipient.lower(): arn for recipient, arn in recipient_arns.items()}
            ),
            "BOUNCE_POLICY_FILE": contract.POLICY_FILE,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue.queue_url,
            "SEND_RATE_PER_SECOND": repr(float(send_rate)),
            "SEND_CLAIM_TTL_SECONDS": str(int(function_timeout.to_seconds())),
            "METRICS_NAMESPACE": metrics_namespace,
        }
        if bounce_sender_arn is not None:
            environment["BOUNCE_SENDER_ARN"] = bounce_sender_arn
        return lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler=contract.HANDLER,
            code=lambda_.Code.from_asset(str(stage_runtime())),
            layers=[self.policy_layer],
            environment=environment,
            timeout=function_timeout,
            memory_size=defaults.FUNCTION_MEMORY_MB,
            role=role,
            log_group=log_group,
            description="cdk-ses-bounce: sends SES bounces for received mail",
        )

    def _new_alarms(
        self,
        metrics_namespace: str,
        age_threshold: cdk.Duration,
        alarm_action: cloudwatch.IAlarmAction | None,
    ) -> BounceProcessorAlarms:
        def alarm(
            id: str, metric: cloudwatch.IMetric, threshold: float, what: str
        ) -> cloudwatch.Alarm:
            new = cloudwatch.Alarm(
                self,
                id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"cdk-ses-bounce {self.node.path}: {what}",
            )
            if alarm_action is not None:
                new.add_alarm_action(alarm_action)
            return new

        def runtime_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=metrics_namespace,
                metric_name=name,
                dimensions_map={"FunctionName": self.function.function_name},
                statistic=cloudwatch.Stats.SUM,
                period=defaults.ALARM_PERIOD,
            )

        return BounceProcessorAlarms(
            dead_letter_queue_not_empty=alarm(
                "DeadLetterQueueNotEmptyAlarm",
                self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    statistic=cloudwatch.Stats.MAXIMUM, period=defaults.DEAD_LETTER_ALARM_PERIOD
                ),
                1,
                "records failed permanently or expired; see their reason attributes",
            ),
            oldest_message_age=alarm(
                "OldestMessageAgeAlarm",
                self.queue.metric_approximate_age_of_oldest_message(
                    statistic=cloudwatch.Stats.MAXIMUM, period=defaults.ALARM_PERIOD
                ),
                age_threshold.to_seconds(),
                "mail waits too long; SendBounce refuses mail older than 24 hours",
            ),
            function_errors=alarm(
                "FunctionErrorsAlarm",
                self.function.metric_errors(
                    statistic=cloudwatch.Stats.SUM, period=defaults.ALARM_PERIOD
                ),
                1,
                "the bounce function failed",
            ),
            send_bounce_throttled=alarm(
                "SendBounceThrottledAlarm",
                runtime_metric("SendBounceThrottled"),
                1,
                "SendBounce was throttled: the rate exceeds the account's limit",
            ),
            permanent_failures=alarm(
                "PermanentFailuresAlarm",
                runtime_metric("PermanentFailures"),
                1,
                "records failed permanently and went to the dead-letter queue",
            ),
        )

    def _new_mx_records(
        self, zone: route53.IHostedZone, recipients: Sequence[str], region: str
    ) -> None:
        zone_name = zone.zone_name.rstrip(".")
        domains = dict.fromkeys(
            recipient.lower() for recipient in recipients if validation.is_domain(recipient)
        )
        for domain in domains:
            in_zone = (
                cdk.Token.is_unresolved(zone_name)
                or domain == zone_name.lower()
                or domain.endswith("." + zone_name.lower())
            )
            if not in_zone:
                cdk.Annotations.of(self).add_warning_v2(
                    "cdk-ses-bounce:recipientOutsideZone",
                    f"Recipient domain {domain!r} is not in hosted_zone {zone_name!r}: "
                    "no MX record is created for it",
                )
            else:
                route53.MxRecord(
                    self,
                    f"MxRecord-{domain}",
                    zone=zone,
                    record_name=f"{domain}.",
                    values=[
                        route53.MxRecordValue(
                            host_name=f"inbound-smtp.{region}.amazonaws.com", priority=10
                        )
                    ],
                )
