"""The CloudWatch dashboard: its body references the processors' metrics and alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from construct.synth_helpers import REGION, Synthesized, resources_of_type
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from cdk_ses_bounce import BounceDashboard

STACK = "Dashboards"


def flatten(value: Any) -> str:
    """A DashboardBody part as text: references become <LogicalId> or <LogicalId.Attribute>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return REGION if value["Ref"] == "AWS::Region" else f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(flatten(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic {value!r}")


def bodies(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Dashboard logical id -> its body as JSON."""
    found = resources_of_type(synthesized.templates[STACK], "AWS::CloudWatch::Dashboard")
    return {
        logical_id: json.loads(flatten(resource["Properties"]["DashboardBody"]))
        for logical_id, resource in found.items()
    }


def logical_id(synthesized: Synthesized, prefix: str, resource_type: str) -> str:
    (found,) = [
        k
        for k in resources_of_type(synthesized.templates[STACK], resource_type)
        if k.startswith(prefix)
    ]
    return found


def widget(body: dict[str, Any], title: str, index: int = 0) -> dict[str, Any]:
    """The `index`-th widget with this title."""
    found = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return dict(found[index])


def own_body(dashboards: Synthesized) -> dict[str, Any]:
    (body,) = [b for k, b in bodies(dashboards).items() if k.startswith("Own")]
    return body


def test_prop_dashboard_and_shared_dashboard(dashboards: Synthesized) -> None:
    found = bodies(dashboards)
    assert sorted(k.split("Dashboard")[0] for k in found) == ["Own", "Shared"]
    (shared,) = [b for k, b in found.items() if k.startswith("Shared")]
    headers = [w["properties"]["markdown"] for w in shared["widgets"] if w["type"] == "text"]
    assert [h.splitlines()[0] for h in headers] == [
        "## Bounces: Dashboards/First",
        "## Bounces: Dashboards/Second",
    ]
    first_fn = f"<{logical_id(dashboards, 'FirstFunction', 'AWS::Lambda::Function')}>"
    second_fn = f"<{logical_id(dashboards, 'SecondFunction', 'AWS::Lambda::Function')}>"
    sent = [
        w["properties"]["metrics"][0]
        for w in shared["widgets"]
        if w["properties"].get("title") == "SendBounce calls and throttles against the limit"
    ]
    assert [m[:4] for m in sent] == [
        ["CdkSesBounce", "BouncesSent", "FunctionName", first_fn],
        ["CdkSesBounce", "BouncesSent", "FunctionName", second_fn],
    ]


def test_every_widget_has_a_title_and_labelled_axes(dashboards: Synthesized) -> None:
    for body in bodies(dashboards).values():
        for item in body["widgets"]:
            if item["type"] == "text":
                continue
            assert item["properties"]["title"]
            if item["properties"].get("view") == "timeSeries":
                assert item["properties"]["yAxis"]["left"]["label"]


def test_sendbounce_widget_against_the_limit(dashboards: Synthesized) -> None:
    item = widget(own_body(dashboards), "SendBounce calls and throttles against the limit")
    function = f"<{logical_id(dashboards, 'OwnFunction', 'AWS::Lambda::Function')}>"
    names = [(m[0], m[1], m[2], m[3], m[4]["period"]) for m in item["properties"]["metrics"]]
    assert names == [
        ("Mail/Bounces", "BouncesSent", "FunctionName", function, 60),
        ("Mail/Bounces", "SendBounceThrottled", "FunctionName", function, 60),
        ("Mail/Bounces", "SendSlotUnavailable", "FunctionName", function, 60),
    ]
    lines = {a["label"]: a["value"] for a in item["properties"]["annotations"]["horizontal"]}
    assert lines == {"rate_per_second (configured)": 240, "SendBounce limit (1 call/s)": 60}


def test_queue_age_widget_has_the_window_and_the_threshold(dashboards: Synthesized) -> None:
    item = widget(own_body(dashboards), "Oldest message waiting in the queue")
    queue = logical_id(dashboards, "OwnQueue", "AWS::SQS::Queue")
    (metric,) = item["properties"]["metrics"]
    assert metric[:4] == [
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "QueueName",
        f"<{queue}.QueueName>",
    ]
    assert metric[4]["stat"] == "Maximum"
    lines = {a["label"]: a["value"] for a in item["properties"]["annotations"]["horizontal"]}
    assert lines == {"24-hour SendBounce window": 86400, "alarm threshold": 6 * 3600}
    assert item["properties"]["yAxis"]["left"]["label"] == "seconds"


def test_queue_depth_widget_shows_both_queues(dashboards: Synthesized) -> None:
    item = widget(own_body(dashboards), "Messages in the queue and the dead-letter queue")
    queue = logical_id(dashboards, "OwnQueue", "AWS::SQS::Queue")
    dlq = logical_id(dashboards, "OwnDeadLetterQueue", "AWS::SQS::Queue")
    metrics = item["properties"]["metrics"]
    assert [m[3] for m in metrics] == [f"<{queue}.QueueName>", f"<{dlq}.QueueName>"]
    assert metrics[1][4]["yAxis"] == "right"


@pytest.mark.parametrize(
    ("title", "metric_name"),
    [
        ("Bounced by reason", "RecipientsBounced"),
        ("Suppressed by reason (no bounce sent)", "RecipientsSuppressed"),
        ("Dead-lettered by reason", "PermanentFailures"),
    ],
)
def test_by_reason_widgets_search_the_reason_dimension(
    dashboards: Synthesized, title: str, metric_name: str
) -> None:
    item = widget(own_body(dashboards), title)
    function = f"<{logical_id(dashboards, 'OwnFunction', 'AWS::Lambda::Function')}>"
    expression = item["properties"]["metrics"][0][0]
    assert expression["expression"] == (
        f'SEARCH(\'{{"Mail/Bounces",FunctionName,Reason}} MetricName="{metric_name}" '
        f"FunctionName=\"{function}\"', 'Sum', 300)"
    )
    assert expression["label"] == "${PROP('Dim.Reason')}"


def test_dead_letters_widget_also_counts_expired(dashboards: Synthesized) -> None:
    item = widget(own_body(dashboards), "Dead-lettered by reason")
    assert [m[1] for m in item["properties"]["metrics"][1:]] == ["MessagesExpired"]


def test_function_widget_errors_and_duration(dashboards: Synthesized) -> None:
    item = widget(own_body(dashboards), "Function errors and duration")
    function = f"<{logical_id(dashboards, 'OwnFunction', 'AWS::Lambda::Function')}>"
    assert [m[:4] for m in item["properties"]["metrics"]] == [
        ["AWS/Lambda", "Errors", "FunctionName", function],
        ["AWS/Lambda", "Duration", "FunctionName", function],
    ]


def test_alarm_widget_shows_every_alarm(dashboards: Synthesized) -> None:
    item = widget(own_body(dashboards), "Alarms")
    alarms = [
        f"<{k}.Arn>"
        for k in resources_of_type(dashboards.templates[STACK], "AWS::CloudWatch::Alarm")
        if k.startswith("Own")
    ]
    # the five alarms of the runtime and queues, and the budget's two (unreachable, no slot)
    assert len(alarms) == 7
    assert sorted(item["properties"]["alarms"]) == sorted(alarms)


def test_a_dashboard_needs_a_processor() -> None:
    import aws_cdk as cdk

    with pytest.raises(ValueError, match="processors must not be empty"):
        BounceDashboard(cdk.Stack(cdk.App(), "Empty"), "Dashboard", processors=[])


def test_dashboard_body_matches_snapshot(
    dashboards: Synthesized, snapshot: SnapshotAssertion
) -> None:
    assert bodies(dashboards) == snapshot.use_extension(JSONSnapshotExtension)
