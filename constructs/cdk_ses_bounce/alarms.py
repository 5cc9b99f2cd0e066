"""The alarms of a BounceProcessor: what needs a person's attention."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from cdk_ses_bounce import defaults
from cdk_ses_bounce.metrics import BounceProcessorMetrics


@dataclass(frozen=True)
class BounceProcessorAlarms:
    """The alarms a BounceProcessor creates (construct IDs in parentheses)."""

    dead_letter_queue_not_empty: cloudwatch.Alarm  # DeadLetterQueueNotEmptyAlarm
    oldest_message_age: cloudwatch.Alarm  # OldestMessageAgeAlarm
    function_errors: cloudwatch.Alarm  # FunctionErrorsAlarm
    send_bounce_throttled: cloudwatch.Alarm  # SendBounceThrottledAlarm
    permanent_failures: cloudwatch.Alarm  # PermanentFailuresAlarm
    send_budget_unavailable: cloudwatch.Alarm  # SendBudgetUnavailableAlarm
    send_slot_unavailable: cloudwatch.Alarm  # SendSlotUnavailableAlarm

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
                self.send_slot_unavailable,
            )
        )


def new_alarms(
    scope: Construct,
    metrics: BounceProcessorMetrics,
    *,
    age_threshold: cdk.Duration,
    alarm_action: cloudwatch.IAlarmAction | None,
) -> BounceProcessorAlarms:
    """One alarm per way the bounce path can fail, each with `alarm_action` (if any); built
    from the processor's `metric_*` methods."""

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

    return BounceProcessorAlarms(
        dead_letter_queue_not_empty=alarm(
            "DeadLetterQueueNotEmptyAlarm",
            metrics.metric_dead_letter_queue_depth(period=defaults.DEAD_LETTER_ALARM_PERIOD),
            1,
            "records failed permanently or expired (see their reason attributes), or SNS could "
            "not deliver notifications to the queue",
        ),
        oldest_message_age=alarm(
            "OldestMessageAgeAlarm",
            metrics.metric_oldest_message_age(period=defaults.ALARM_PERIOD),
            age_threshold.to_seconds(),
            "mail waits too long; SendBounce refuses mail older than 24 hours",
        ),
        function_errors=alarm(
            "FunctionErrorsAlarm",
            metrics.function.metric_errors(
                statistic=cloudwatch.Stats.SUM, period=defaults.ALARM_PERIOD
            ),
            1,
            "the bounce function failed",
        ),
        send_bounce_throttled=alarm(
            "SendBounceThrottledAlarm",
            metrics.metric_send_bounce_throttled(period=defaults.ALARM_PERIOD),
            1,
            "SendBounce was throttled: the rate exceeds the account's limit",
        ),
        permanent_failures=alarm(
            "PermanentFailuresAlarm",
            metrics.metric_dead_lettered(period=defaults.ALARM_PERIOD),
            1,
            "records failed permanently and went to the dead-letter queue",
        ),
        send_budget_unavailable=alarm(
            "SendBudgetUnavailableAlarm",
            metrics.metric_send_budget_unavailable(period=defaults.ALARM_PERIOD),
            1,
            "the send budget (DynamoDB) could not be reached in every one of the last "
            f"{defaults.SEND_BUDGET_ALARM_PERIODS} periods: nothing is sent, mail waits in the "
            "queue",
            periods=defaults.SEND_BUDGET_ALARM_PERIODS,
        ),
        send_slot_unavailable=alarm(
            "SendSlotUnavailableAlarm",
            metrics.metric_send_slot_unavailable(period=defaults.ALARM_PERIOD),
            1,
            "the send budget had no slot in time for records in every one of the last "
            f"{defaults.SEND_BUDGET_ALARM_PERIODS} periods: they go back to the queue unsent. "
            "Too many containers share the budget for batch_size and function_timeout (see the "
            "batchOutlastsTimeout synth warning), or the load is above the budget's rate; see "
            "docs/operations.md, 'The send budget has no slot'",
            periods=defaults.SEND_BUDGET_ALARM_PERIODS,
        ),
    )
