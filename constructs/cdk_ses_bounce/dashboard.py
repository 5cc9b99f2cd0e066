"""BounceDashboard: one CloudWatch dashboard for one or more BounceProcessors, built from their
`metric_*` methods and alarms (no metric name is written here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol, Unpack

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, Node

from bounce_runtime import contract
from cdk_ses_bounce.metrics import MetricOptions


class DashboardSource(Protocol):
    """What the dashboard reads of a processor (a `BounceProcessor` is one). A protocol, so this
    module does not import `bounce_processor`, which imports it (no import cycle)."""

    @property
    def node(self) -> Node: ...

    @property
    def rate_per_second(self) -> float: ...

    @property
    def oldest_message_age_threshold(self) -> cdk.Duration: ...

    @property
    def function(self) -> lambda_.Function: ...

    @property
    def alarms(self) -> Iterable[cloudwatch.Alarm]: ...

    def metric_recipients_bounced(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_recipients_accepted(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_recipients_suppressed(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_dead_lettered(
        self, reason: str | None = None, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_bounces_sent(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...

    def metric_send_bounce_throttled(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_send_slot_unavailable(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_oldest_message_age(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...

    def metric_queue_depth(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...

    def metric_dead_letter_queue_depth(
        self, **options: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_messages_expired(self, **options: Unpack[MetricOptions]) -> cloudwatch.Metric: ...


WIDTH: Final = 8  # three widgets to a row of 24
HEIGHT: Final = 6
PER_MINUTE: Final = cdk.Duration.minutes(1)
# CloudWatch fills this label with each search result's Reason dimension.
REASON_LABEL: Final = "${PROP('Dim." + contract.DIMENSION_REASON + "')}"


def by_reason(metric: cloudwatch.Metric) -> cloudwatch.MathExpression:
    """Every `Reason` series of a per-reason runtime metric: a SEARCH over the namespace, name
    and dimensions of `metric` plus Reason, so a reason seen for the first time shows up too."""
    dimensions = dict(metric.dimensions or {})
    schema = ",".join([f'"{metric.namespace}"', *dimensions, contract.DIMENSION_REASON])
    terms = " ".join(
        [f'MetricName="{metric.metric_name}"', *(f'{k}="{v}"' for k, v in dimensions.items())]
    )
    seconds = int(metric.period.to_seconds())
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{schema}}} {terms}', '{metric.statistic}', {seconds})",
        label=REASON_LABEL,
        period=metric.period,
        using_metrics={},
    )


def graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    *,
    right: Sequence[cloudwatch.IMetric] = (),
    left_label: str = "count",
    right_label: str | None = None,
    annotations: Sequence[cloudwatch.HorizontalAnnotation] = (),
) -> cloudwatch.GraphWidget:
    """A graph of the standard size, with axis labels a reader understands."""
    return cloudwatch.GraphWidget(
        title=title,
        left=list(left),
        right=list(right),
        left_y_axis=cloudwatch.YAxisProps(label=left_label, show_units=False, min=0),
        right_y_axis=(
            cloudwatch.YAxisProps(label=right_label, show_units=False, min=0)
            if right_label
            else None
        ),
        left_annotations=list(annotations),
        width=WIDTH,
        height=HEIGHT,
    )


def processor_widgets(processor: DashboardSource) -> list[list[cloudwatch.IWidget]]:
    """The rows of widgets for one processor."""
    path = processor.node.path
    per_minute_limit = contract.SEND_BOUNCE_MAX_RATE_PER_SECOND * 60
    rate_lines = [
        cloudwatch.HorizontalAnnotation(
            value=processor.rate_per_second * 60, label="rate_per_second (configured)"
        )
    ]
    if processor.rate_per_second != contract.SEND_BOUNCE_MAX_RATE_PER_SECOND:
        rate_lines.append(
            cloudwatch.HorizontalAnnotation(
                value=per_minute_limit, label="SendBounce limit (1 call/s)"
            )
        )
    return [
        [
            cloudwatch.TextWidget(
                markdown=f"## Bounces: {path}\nRecipients, SendBounce calls, queues and "
                "dead letters of this processor. Reasons are the runtime's reason codes.",
                width=24,
                height=2,
            )
        ],
        [
            graph(
                "Recipients bounced, accepted and suppressed",
                [
                    processor.metric_recipients_bounced(label="bounced"),
                    processor.metric_recipients_accepted(label="accepted"),
                    processor.metric_recipients_suppressed(label="suppressed"),
                ],
                left_label="recipients / 5 min",
            ),
            graph(
                "Bounced by reason",
                [by_reason(processor.metric_recipients_bounced())],
                left_label="recipients / 5 min",
            ),
            graph(
                "Suppressed by reason (no bounce sent)",
                [by_reason(processor.metric_recipients_suppressed())],
                left_label="recipients / 5 min",
            ),
        ],
        [
            graph(
                "SendBounce calls and throttles against the limit",
                [
                    processor.metric_bounces_sent(period=PER_MINUTE, label="SendBounce calls"),
                    processor.metric_send_bounce_throttled(period=PER_MINUTE, label="throttled"),
                    processor.metric_send_slot_unavailable(
                        period=PER_MINUTE, label="no budget slot in time (handed back)"
                    ),
                ],
                left_label="calls / minute",
                annotations=rate_lines,
            ),
            graph(
                "Oldest message waiting in the queue",
                [processor.metric_oldest_message_age(label="oldest message age")],
                left_label="seconds",
                annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=contract.SEND_BOUNCE_WINDOW_S,
                        label="24-hour SendBounce window",
                        color=cloudwatch.Color.RED,
                    ),
                    cloudwatch.HorizontalAnnotation(
                        value=processor.oldest_message_age_threshold.to_seconds(),
                        label="alarm threshold",
                        color=cloudwatch.Color.ORANGE,
                    ),
                ],
            ),
            graph(
                "Messages in the queue and the dead-letter queue",
                [processor.metric_queue_depth(label="queue")],
                right=[processor.metric_dead_letter_queue_depth(label="dead-letter queue")],
                left_label="messages",
                right_label="dead letters",
            ),
        ],
        [
            graph(
                "Dead-lettered by reason",
                [
                    by_reason(processor.metric_dead_lettered()),
                    processor.metric_messages_expired(label="expired (24 h passed)"),
                ],
                left_label="records / 5 min",
            ),
            graph(
                "Function errors and duration",
                [processor.function.metric_errors(label="errors")],
                right=[processor.function.metric_duration(label="duration p99", statistic="p99")],
                left_label="errors / 5 min",
                right_label="milliseconds",
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(processor.alarms), width=WIDTH, height=HEIGHT
            ),
        ],
    ]


class BounceDashboard(Construct):
    """A CloudWatch dashboard of one or more processors: recipients bounced and suppressed by
    reason, SendBounce calls against the limit, the queues with the 24-hour window and the
    alarm threshold, dead letters by reason, function errors and duration, and alarm states.

    Construct IDs: `Dashboard`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        processors: Sequence[DashboardSource],
        dashboard_name: str | None = None,
    ) -> None:
        """:param processors: the processors to show, one section each (at least one).
        :param dashboard_name: default: a name CloudFormation generates."""
        if not processors:
            raise ValueError("processors must not be empty: give at least one BounceProcessor")
        super().__init__(scope, id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        for processor in processors:
            for row in processor_widgets(processor):
                self.dashboard.add_widgets(*row)
