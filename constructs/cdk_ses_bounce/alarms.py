"""The alarms of a BounceProcessor: what needs a person's attention."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from bounce_runtime import contract
from cdk_ses_bounce import defaults


@dataclass(frozen=True)
class BounceProcessorAlarms:
    """The alarms a BounceProcessor creates (construct IDs in parentheses)."""

    dead_letter_queue_not_empty: cloudwatch.Alarm  # DeadLetterQueueNotEmptyAlarm
    oldest_message_age: cloudwatch.Alarm  # OldestMessageAgeAlarm
    function_errors: cloudwatch.Alarm  # FunctionErrorsAlarm
    send_bounce_throttled: cloudwatch.Alarm  # SendBounceThrottledAlarm
    permanent_failures: cloudwatch.Alarm  # PermanentFailuresAlarm
    send_budget_unavailable: cloudwatch.Alarm  # SendBudgetUnavailableAlarm

    def __iter__(self) -> Iterator[cloudwatch.Alarm]:
        """All alarms, in declaration order."""
        return iter(
            (
                self.dead_letter_queue_not_empty,
                self.oldest_message_age,
                self.function_errors,
                self.send_bounce_throttled,
                self.permanent_failures,
                self.send_budget_unavailable,
            )
        )


def new_alarms(
    scope: Construct,
    *,
    function: lambda_.IFunction,
    queue: sqs.IQueue,
    dead_letter_queue: sqs.IQueue,
    metrics_namespace: str,
    age_threshold: cdk.Duration,
    alarm_action: cloudwatch.IAlarmAction | None,
) -> BounceProcessorAlarms:
    """One alarm per way the bounce path can fail, each with `alarm_action` (if any)."""

    def alarm(
        id: str, metric: cloudwatch.IMetric, threshold: float, what: str, periods: int = 1
    ) -> cloudwatch.Alarm:
        new = cloudwatch.Alarm(
            scope,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods if periods > 1 else None,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"cdk-ses-bounce {scope.node.path}: {what}",
        )
        if alarm_action is not None:
            new.add_alarm_action(alarm_action)
        return new

    def runtime_metric(name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=metrics_namespace,
            metric_name=name,
            dimensions_map={contract.DIMENSION_FUNCTION_NAME: function.function_name},
            statistic=cloudwatch.Stats.SUM,
            period=defaults.ALARM_PERIOD,
        )

    return BounceProcessorAlarms(
        dead_letter_queue_not_empty=alarm(
            "DeadLetterQueueNotEmptyAlarm",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic=cloudwatch.Stats.MAXIMUM, period=defaults.DEAD_LETTER_ALARM_PERIOD
            ),
            1,
            "records failed permanently or expired; see their reason attributes",
        ),
        oldest_message_age=alarm(
            "OldestMessageAgeAlarm",
            queue.metric_approximate_age_of_oldest_message(
                statistic=cloudwatch.Stats.MAXIMUM, period=defaults.ALARM_PERIOD
            ),
            age_threshold.to_seconds(),
            "mail waits too long; SendBounce refuses mail older than 24 hours",
        ),
        function_errors=alarm(
            "FunctionErrorsAlarm",
            function.metric_errors(statistic=cloudwatch.Stats.SUM, period=defaults.ALARM_PERIOD),
            1,
            "the bounce function failed",
        ),
        send_bounce_throttled=alarm(
            "SendBounceThrottledAlarm",
            runtime_metric(contract.METRIC_SEND_BOUNCE_THROTTLED),
            1,
            "SendBounce was throttled: the rate exceeds the account's limit",
        ),
        permanent_failures=alarm(
            "PermanentFailuresAlarm",
            runtime_metric(contract.METRIC_PERMANENT_FAILURES),
            1,
            "records failed permanently and went to the dead-letter queue",
        ),
        send_budget_unavailable=alarm(
            "SendBudgetUnavailableAlarm",
            runtime_metric(contract.METRIC_SEND_BUDGET_UNAVAILABLE),
            1,
            "the send budget (DynamoDB) could not be reached in every one of the last "
            f"{defaults.SEND_BUDGET_ALARM_PERIODS} periods: nothing is sent, mail waits in the "
            "queue",
            periods=defaults.SEND_BUDGET_ALARM_PERIODS,
        ),
    )
