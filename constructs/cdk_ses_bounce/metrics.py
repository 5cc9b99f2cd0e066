"""The `metric_*` methods of BounceProcessor (aws-cdk-lib style: `cloudwatch.Metric`, with
`MetricOptions` as keyword arguments that override the defaults). Names come from
`bounce_runtime.contract`; the alarms and the dashboard are built from these methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from bounce_runtime import contract
from cdk_ses_bounce import defaults


class MetricOptions(TypedDict, total=False):
    """The keyword arguments of `cloudwatch.MetricOptions`."""

    account: str
    color: str
    dimensions_map: Mapping[str, str]
    id: str
    label: str
    period: cdk.Duration
    region: str
    stack_account: str
    stack_region: str
    statistic: str
    unit: cloudwatch.Unit
    visible: bool


# The runtime writes its metrics in this unit (EMF); an alarm whose unit differs sees no data.
RUNTIME_METRIC_UNIT = cloudwatch.Unit.COUNT
MAXIMUM = cloudwatch.Stats.MAXIMUM


def with_defaults(
    options: MetricOptions, *, statistic: str, unit: cloudwatch.Unit
) -> dict[str, Any]:
    """`options` over the defaults: `statistic`, `unit` and a 5-minute period."""
    return {"statistic": statistic, "unit": unit, "period": defaults.METRIC_PERIOD, **options}


def runtime_metric(
    namespace: str, name: str, dimensions: Mapping[str, str], options: MetricOptions
) -> cloudwatch.Metric:
    """A runtime metric (sum, count, 5 minutes); `options` override, their dimensions add."""
    settings = with_defaults(options, statistic=cloudwatch.Stats.SUM, unit=RUNTIME_METRIC_UNIT)
    settings["dimensions_map"] = {**dimensions, **options.get("dimensions_map", {})}
    return cloudwatch.Metric(namespace=namespace, metric_name=name, **settings)


class BounceProcessorMetrics:
    """The metrics of a processor: the runtime's (per function, optionally per reason) and
    those of its queues. Mixed into `BounceProcessor`, which provides the resources."""

    @property
    def function(self) -> lambda_.Function:
        raise NotImplementedError

    @property
    def queue(self) -> sqs.Queue:
        raise NotImplementedError

    @property
    def dead_letter_queue(self) -> sqs.Queue:
        raise NotImplementedError

    @property
    def metrics_namespace(self) -> str:
        raise NotImplementedError

    def _runtime_metric(
        self, name: str, reason: str | None, options: MetricOptions
    ) -> cloudwatch.Metric:
        dimensions = {contract.DIMENSION_FUNCTION_NAME: self.function.function_name}
        if reason is not None:
            dimensions[contract.DIMENSION_REASON] = reason
        return runtime_metric(self.metrics_namespace, name, dimensions, options)

    def metric_bounces_sent(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """SendBounce calls that SES accepted (one per bounced message). Default: sum, 5 min."""
        return self._runtime_metric(contract.METRIC_BOUNCES_SENT, None, options)

    def metric_recipients_bounced(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Recipients bounced, all or for one `reason` (e.g. `matched-rule`). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_RECIPIENTS_BOUNCED, reason, options)

    def metric_recipients_accepted(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Recipients the policy accepted (not bounced), all or for one `reason`. Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_RECIPIENTS_ACCEPTED, reason, options)

    def metric_recipients_suppressed(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Bounces suppressed (anti-backscatter guards, policy), all or for one `reason`
        (e.g. `null-sender`). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_RECIPIENTS_SUPPRESSED, reason, options)

    def metric_dead_lettered(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Records the runtime sent to the dead-letter queue (PermanentFailures), all or for
        one `reason` (e.g. `expired`). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_PERMANENT_FAILURES, reason, options)

    def metric_send_bounce_throttled(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """SendBounce calls SES throttled (the rate is above the account's). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_SEND_BOUNCE_THROTTLED, None, options)

    def metric_send_budget_unavailable(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Records sent back to the queue unsent because the shared send budget could not be
        reached (nothing is sent unpaced). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_SEND_BUDGET_UNAVAILABLE, None, options)

    def metric_send_slot_unavailable(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Records sent back to the queue unsent because the send budget had no slot within
        their invocation's time (the schedule is full further ahead than the function can wait:
        too many containers for the batch size and timeout, or a backlog over the budget's
        rate). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_SEND_SLOT_UNAVAILABLE, None, options)

    def metric_send_budget_repaired(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Budget items this processor rewrote because their schedule lay further ahead than any
        taker books (a manipulated item, a host clock far ahead) or their numbers were invalid.
        Should stay 0. Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_SEND_BUDGET_REPAIRED, None, options)

    def metric_setup_notifications(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """SES setup notifications acknowledged (SES publishes one when the receipt rule is
        saved: not mail; never bounced, read or dead-lettered). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_SETUP_NOTIFICATIONS, None, options)

    def metric_send_slot_wait(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Milliseconds SendBounce attempts waited for their pacing slots (the send budget's
        schedule), summed per period; against `metric_bounces_sent`, the wait per bounce.
        Sum, milliseconds, 5 min."""
        settings: MetricOptions = {"unit": cloudwatch.Unit.MILLISECONDS, **options}
        return self._runtime_metric(contract.METRIC_SEND_SLOT_WAIT, None, settings)

    def metric_tagging_failures(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Mail objects that could not be tagged after their bounce was sent. Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_TAGGING_FAILURES, None, options)

    def metric_duplicates_skipped(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Records skipped because their bounce was already sent or claimed. Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_DUPLICATES_SKIPPED, None, options)

    def metric_messages_expired(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Messages past the 24-hour SendBounce window (dead-lettered as `expired`). Sum, 5 min."""
        return self._runtime_metric(contract.METRIC_MESSAGES_EXPIRED, None, options)

    def metric_oldest_message_age(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Age of the oldest message waiting in the queue. Maximum, seconds, 5 min."""
        return self.queue.metric_approximate_age_of_oldest_message(
            **with_defaults(options, statistic=MAXIMUM, unit=cloudwatch.Unit.SECONDS)
        )

    def metric_queue_depth(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Messages waiting in the queue. Maximum, count, 5 min."""
        return self.queue.metric_approximate_number_of_messages_visible(
            **with_defaults(options, statistic=MAXIMUM, unit=cloudwatch.Unit.COUNT)
        )

    def metric_dead_letter_queue_depth(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Messages in the dead-letter queue. Maximum, count, 5 min."""
        return self.dead_letter_queue.metric_approximate_number_of_messages_visible(
            **with_defaults(options, statistic=MAXIMUM, unit=cloudwatch.Unit.COUNT)
        )
