"""The notification path: the topic SES publishes to (with its key), the queue the function reads
and the dead-letter queue, and the topic's subscription.

The topic's key lets `ses.amazonaws.com` use it (`kms:GenerateDataKey*`, `kms:Decrypt`: SNS's
"Managing Amazon SNS encryption keys and costs", section "Enable compatibility between event
sources from AWS services and encrypted topics", which lists SES) only with the encryption context
`kms:EncryptionContext:aws:sns:topicArn` = this topic: SNS calls KMS for a topic with that
context (AWS's own key-policy examples for services publishing to encrypted topics condition on
it, e.g. Amazon GameLift's "Set up an SNS topic with server-side encryption"). The SES developer
guide's key statement for an encrypted topic has no condition, and no AWS page we found says SES
presents `aws:SourceAccount` or `aws:SourceArn` to KMS on this path, so the key policy does not
use them: a key SES is not documented to present would stop every notification. The topic
therefore has a name known at synth, so the key policy can name its ARN without a cycle (the
topic refers to the key). The topic policy's statement for SES is the receipt rule's
(`receiving.allow_ses_to_publish`). docs/design.md, "Resource policies", cites each condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_ses_bounce import defaults, nag
from cdk_ses_bounce.props import Props

SES_PRINCIPAL = "ses.amazonaws.com"
# The encryption context SNS sends to KMS for an encrypted topic (see the module docstring).
SNS_TOPIC_ENCRYPTION_CONTEXT = "kms:EncryptionContext:aws:sns:topicArn"
TOPIC_NAME_MAX_LENGTH = 256


@dataclass(frozen=True)
class Messaging:
    """The resources between the receipt rule and the function."""

    topic_key: kms.Key
    topic: sns.Topic
    dead_letter_queue: sqs.Queue
    queue: sqs.Queue


def topic_name(scope: Construct) -> str:
    """The topic's name: the stack name and construct path with a hash, known at synth (SNS:
    1-256 letters, digits, '-' and '_')."""
    return cdk.Names.unique_resource_name(scope, max_length=TOPIC_NAME_MAX_LENGTH, separator="-")


def new_topic(scope: Construct, *, ses_uses_key: bool = True) -> tuple[kms.Key, sns.Topic]:
    """`TopicKey` and `Topic`: an encrypted, TLS-only topic whose key SES may use for it (unless
    SES publishes as the S3 action's role, which is granted the key instead)."""
    name = topic_name(scope)
    topic_arn = cdk.Stack.of(scope).format_arn(
        service="sns", resource=name, arn_format=cdk.ArnFormat.NO_RESOURCE_NAME
    )
    key = kms.Key(
        scope,
        "TopicKey",
        description="Encrypts the cdk-ses-bounce notification topic; SES may use it",
        enable_key_rotation=True,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    if ses_uses_key:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSesToPublishToTheEncryptedTopic",
                principals=[iam.ServicePrincipal(SES_PRINCIPAL)],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {SNS_TOPIC_ENCRYPTION_CONTEXT: topic_arn}},
            )
        )
    topic = sns.Topic(scope, "Topic", topic_name=name, master_key=key, enforce_ssl=True)
    return key, topic


def new_queues(
    scope: Construct,
    *,
    function_timeout: cdk.Duration,
    max_batching_window: cdk.Duration | None,
    max_receive_count: int,
) -> tuple[sqs.Queue, sqs.Queue]:
    """`DeadLetterQueue` and `Queue` (encrypted, TLS-only; redrive after `max_receive_count`)."""
    dead_letter_queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=defaults.DEAD_LETTER_RETENTION,
    )
    nag.acknowledge(
        dead_letter_queue,
        "Serverless-SQSRedrivePolicy",
        "This is the dead-letter queue: its messages stay for triage and replay until they "
        "expire, and a redrive policy on it would move them out of sight of its alarm",
    )
    batching_seconds = max_batching_window.to_seconds() if max_batching_window else 0
    queue = sqs.Queue(
        scope,
        "Queue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        # Lambda's advice for SQS event sources: six times the timeout, plus the batching window.
        visibility_timeout=cdk.Duration.seconds(
            defaults.VISIBILITY_TIMEOUT_FACTOR * function_timeout.to_seconds() + batching_seconds
        ),
        dead_letter_queue=sqs.DeadLetterQueue(
            queue=dead_letter_queue, max_receive_count=max_receive_count
        ),
    )
    return dead_letter_queue, queue


def new_messaging(scope: Construct, props: Props, *, ses_uses_key: bool = True) -> Messaging:
    """Topic, queues and the raw-delivery subscription of the queue to the topic."""
    topic_key, topic = new_topic(scope, ses_uses_key=ses_uses_key)
    dead_letter_queue, queue = new_queues(
        scope,
        function_timeout=props.function_timeout,
        max_batching_window=props.max_batching_window,
        max_receive_count=props.max_receive_count,
    )
    # What SNS cannot deliver to the queue goes to the dead-letter queue instead of being
    # dropped; CDK adds the queue policy the SNS guide asks for (SQS:SendMessage from
    # sns.amazonaws.com, aws:SourceArn = the topic).
    topic.add_subscription(
        subscriptions.SqsSubscription(
            queue, raw_message_delivery=True, dead_letter_queue=dead_letter_queue
        )
    )
    return Messaging(
        topic_key=topic_key, topic=topic, dead_letter_queue=dead_letter_queue, queue=queue
    )
