"""The metric_* methods and the grants for operators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam

from bounce_runtime import contract
from bounce_runtime.adapters.telemetry import BatchMetrics
from cdk_ses_bounce import BounceProcessor
from cdk_ses_bounce.metrics import RUNTIME_METRIC_UNIT

NewStack = Callable[..., cdk.Stack]
CLOUDWATCH_UNIT_NAMES = {
    cloudwatch.Unit.COUNT: "Count",
    cloudwatch.Unit.SECONDS: "Seconds",
    cloudwatch.Unit.MILLISECONDS: "Milliseconds",
}


@pytest.fixture
def processor(new_stack: NewStack) -> BounceProcessor:
    return BounceProcessor(
        new_stack(),
        "Bounces",
        recipients=["old.example.com"],
        bounce_sender="b@example.com",
        metrics_namespace="Mail/Bounces",
    )


def rendered(processor: BounceProcessor, metric: cloudwatch.Metric) -> dict[str, Any]:
    """What an alarm on `metric` would hold (namespace, name, dimensions, statistic...)."""
    config = metric.to_metric_config().metric_stat
    assert config is not None
    stack = cdk.Stack.of(processor)
    return {
        "namespace": config.namespace,
        "name": config.metric_name,
        "dimensions": {d.name: stack.resolve(d.value) for d in config.dimensions or []},
        "statistic": config.statistic,
        "unit": config.unit_filter,
        "period": config.period.to_seconds(),
    }


RUNTIME_METHODS = [
    ("metric_bounces_sent", contract.METRIC_BOUNCES_SENT),
    ("metric_recipients_bounced", contract.METRIC_RECIPIENTS_BOUNCED),
    ("metric_recipients_accepted", contract.METRIC_RECIPIENTS_ACCEPTED),
    ("metric_recipients_suppressed", contract.METRIC_RECIPIENTS_SUPPRESSED),
    ("metric_dead_lettered", contract.METRIC_PERMANENT_FAILURES),
    ("metric_send_bounce_throttled", contract.METRIC_SEND_BOUNCE_THROTTLED),
    ("metric_tagging_failures", contract.METRIC_TAGGING_FAILURES),
    ("metric_duplicates_skipped", contract.METRIC_DUPLICATES_SKIPPED),
    ("metric_messages_expired", contract.METRIC_MESSAGES_EXPIRED),
    ("metric_send_budget_unavailable", contract.METRIC_SEND_BUDGET_UNAVAILABLE),
    ("metric_send_slot_unavailable", contract.METRIC_SEND_SLOT_UNAVAILABLE),
    ("metric_send_budget_repaired", contract.METRIC_SEND_BUDGET_REPAIRED),
    ("metric_send_slot_wait", contract.METRIC_SEND_SLOT_WAIT),
    ("metric_setup_notifications", contract.METRIC_SETUP_NOTIFICATIONS),
]
# The runtime's EMF unit names (contract.METRIC_UNITS) as CloudWatch units.
UNITS = {"Count": cloudwatch.Unit.COUNT, "Milliseconds": cloudwatch.Unit.MILLISECONDS}


def test_every_runtime_metric_has_a_method() -> None:
    assert sorted(name for _, name in RUNTIME_METHODS) == sorted(contract.STANDARD_METRICS)


@pytest.mark.parametrize(("method", "metric_name"), RUNTIME_METHODS)
def test_runtime_metrics_are_sums_per_function(
    processor: BounceProcessor, method: str, metric_name: str
) -> None:
    metric = getattr(processor, method)()
    function_name = cdk.Stack.of(processor).resolve(processor.function.function_name)
    assert rendered(processor, metric) == {
        "namespace": "Mail/Bounces",
        "name": metric_name,
        "dimensions": {"FunctionName": function_name},
        "statistic": "Sum",
        "unit": UNITS[contract.METRIC_UNITS.get(metric_name, contract.DEFAULT_METRIC_UNIT)],
        "period": 300,
    }


@pytest.mark.parametrize(
    ("method", "metric_name"),
    [(m, n) for m, n in RUNTIME_METHODS if n in contract.METRICS_BY_REASON],
)
def test_per_reason_metrics_add_the_reason_dimension(
    processor: BounceProcessor, method: str, metric_name: str
) -> None:
    metric = getattr(processor, method)(reason="null-sender")
    function_name = cdk.Stack.of(processor).resolve(processor.function.function_name)
    assert rendered(processor, metric)["dimensions"] == {
        "FunctionName": function_name,
        "Reason": "null-sender",
    }


def test_metric_options_override_the_defaults(processor: BounceProcessor) -> None:
    metric = processor.metric_recipients_suppressed(
        "spam-verdict",
        period=cdk.Duration.minutes(1),
        statistic="Average",
        label="suppressed (spam)",
        dimensions_map={"Extra": "x"},
    )
    assert metric.label == "suppressed (spam)"
    config = rendered(processor, metric)
    assert (config["period"], config["statistic"]) == (60, "Average")
    assert config["dimensions"]["Reason"] == "spam-verdict"
    assert config["dimensions"]["Extra"] == "x"


@pytest.mark.parametrize(
    ("method", "queue", "metric_name", "unit"),
    [
        ("metric_oldest_message_age", "queue", "ApproximateAgeOfOldestMessage", "SECONDS"),
        ("metric_queue_depth", "queue", "ApproximateNumberOfMessagesVisible", "COUNT"),
        (
            "metric_dead_letter_queue_depth",
            "dead_letter_queue",
            "ApproximateNumberOfMessagesVisible",
            "COUNT",
        ),
    ],
)
def test_queue_metrics_are_maxima_of_the_right_queue(
    processor: BounceProcessor, method: str, queue: str, metric_name: str, unit: str
) -> None:
    stack = cdk.Stack.of(processor)
    config = rendered(processor, getattr(processor, method)())
    assert config == {
        "namespace": "AWS/SQS",
        "name": metric_name,
        "dimensions": {"QueueName": stack.resolve(getattr(processor, queue).queue_name)},
        "statistic": "Maximum",
        "unit": cloudwatch.Unit[unit],
        "period": 300,
    }


def alarm_properties(alarm: cloudwatch.Alarm) -> dict[str, Any]:
    resource = alarm.node.default_child
    assert isinstance(resource, cloudwatch.CfnAlarm)
    properties: dict[str, Any] = cdk.Stack.of(alarm).resolve(resource._cfn_properties)
    return properties


def test_the_runtime_writes_each_metric_in_the_unit_its_method_and_alarm_filter_on(
    processor: BounceProcessor,
) -> None:
    written = {
        entry["Name"]: entry["Unit"]
        for document in BatchMetrics("ns", "fn").documents()
        for directive in document["_aws"]["CloudWatchMetrics"]
        for entry in directive["Metrics"]
    }
    filtered = {
        name: CLOUDWATCH_UNIT_NAMES[rendered(processor, getattr(processor, method)())["unit"]]
        for method, name in RUNTIME_METHODS
    }
    assert filtered == written
    alarm_units = {
        alarm_properties(alarm)["unit"]
        for alarm in (processor.alarms.send_bounce_throttled, processor.alarms.permanent_failures)
    }
    assert alarm_units == {"Count"}
    assert RUNTIME_METRIC_UNIT == cloudwatch.Unit.COUNT


def test_alarms_watch_what_the_metric_methods_describe(processor: BounceProcessor) -> None:
    alarms = processor.alarms
    pairs = [
        (alarms.dead_letter_queue_not_empty, processor.metric_dead_letter_queue_depth(), 60),
        (alarms.oldest_message_age, processor.metric_oldest_message_age(), 300),
        (alarms.send_bounce_throttled, processor.metric_send_bounce_throttled(), 300),
        (alarms.permanent_failures, processor.metric_dead_lettered(), 300),
        (alarms.send_slot_unavailable, processor.metric_send_slot_unavailable(), 300),
    ]
    for alarm, metric, period in pairs:
        properties = alarm_properties(alarm)
        expected = rendered(processor, metric)
        assert properties["metricName"] == expected["name"]
        assert properties["namespace"] == expected["namespace"]
        assert properties["statistic"] == expected["statistic"]
        assert properties["unit"] == CLOUDWATCH_UNIT_NAMES[expected["unit"]]
        assert properties["period"] == period
        assert {d["name"]: d["value"] for d in properties["dimensions"]} == (expected["dimensions"])


def statements_of(stack: cdk.Stack, role: iam.Role) -> list[dict[str, Any]]:
    policy = role.node.find_child("DefaultPolicy")
    assert isinstance(policy, iam.Policy)
    statements: list[dict[str, Any]] = stack.resolve(policy.document.to_json())["Statement"]
    return statements


def test_grant_consume_dead_letters(processor: BounceProcessor) -> None:
    stack = cdk.Stack.of(processor)
    operator = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    grant = processor.grant_consume_dead_letters(operator)
    assert grant.success
    (statement,) = statements_of(stack, operator)
    assert statement["Resource"] == stack.resolve(processor.dead_letter_queue.queue_arn)
    assert set(statement["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }


def test_grant_replay_dead_letters_reads_the_dlq_and_sends_to_the_queue(
    processor: BounceProcessor,
) -> None:
    stack = cdk.Stack.of(processor)
    operator = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    grant = processor.grant_replay_dead_letters(operator)
    assert grant.success
    by_resource = {
        str(s["Resource"]): set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        for s in statements_of(stack, operator)
    }
    dlq = str(stack.resolve(processor.dead_letter_queue.queue_arn))
    queue = str(stack.resolve(processor.queue.queue_arn))
    assert "sqs:DeleteMessage" in by_resource[dlq]
    assert "sqs:ReceiveMessage" in by_resource[dlq]
    assert by_resource[queue] == {"sqs:SendMessage", "sqs:GetQueueAttributes"}
    assert "sqs:SendMessage" not in by_resource[dlq]
