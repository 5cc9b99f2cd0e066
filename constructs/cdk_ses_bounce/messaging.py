"""The notification path: the topic SES publishes to (with its key), the queue the function reads
and the dead-letter queue, and the topic's subscription.

SES may publish to the topic and use its key when `aws:SourceAccount` is this account. The SES
developer guide shows an `aws:SourceArn` (the receipt rule) only for publishing to a topic of
another account, and says a topic of the same account needs no policy; its key policy for an
encrypted topic has no condition at all
(https://docs.aws.amazon.com/ses/latest/dg/receiving-email-permissions.html#receiving-email-permissions-sns).
A condition on a value SES is not documented to present could silently stop every notification,
so these statements keep the account condition only.
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


@dataclass(frozen=True)
class Messaging:
    """The resources between the receipt rule and the function."""

    topic_key: kms.Key
    topic: sns.Topic
    dead_letter_queue: sqs.Queue
    queue: sqs.Queue


def new_topic(scope: Construct) -> tuple[kms.Key, sns.Topic]:
    """`TopicKey` and `Topic`: an encrypted, TLS-only topic that SES of this account may use."""
    same_account = {"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}}
    key = kms.Key(
        scope,
        "TopicKey",
        description="Encrypts the cdk-ses-bounce notification topic; SES may use it",
        enable_key_rotation=True,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowSesToPublishToTheEncryptedTopic",
            principals=[iam.ServicePrincipal(SES_PRINCIPAL)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
            conditions=same_account,
        )
    )
    topic = sns.Topic(scope, "Topic", master_key=key, enforce_ssl=True)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowSesToPublish",
            principals=[iam.ServicePrincipal(SES_PRINCIPAL)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=same_account,
        )
    )
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


def new_messaging(scope: Construct, props: Props) -> Messaging:
    """Topic, queues and the raw-delivery subscription of the queue to the topic."""
    topic_key, topic = new_topic(scope)
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
