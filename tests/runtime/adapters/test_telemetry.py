"""JSON log lines and CloudWatch EMF documents."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.contract import STANDARD_METRICS

FIXED_NOW = datetime(2024, 5, 1, 12, 0, 30, 250000, tzinfo=UTC)
EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def emf_problems(document: Any) -> list[str]:
    """Every way ``document`` breaks the EMF specification (empty when it is valid)."""
    problems: list[str] = []
    if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
        return ["root must be an object with an _aws object"]
    metadata = document["_aws"]
    timestamp = metadata.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        problems.append(f"_aws.Timestamp must be epoch milliseconds, got {timestamp!r}")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "_aws.CloudWatchMetrics must be a non-empty array"]
    for index, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{index}]"
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255:
            problems.append(f"{where}.Namespace must be 1-255 characters, got {namespace!r}")
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list):
            problems.append(f"{where}.Dimensions must be an array of dimension sets")
            dimension_sets = []
        for dimension_set in dimension_sets:
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                problems.append(f"{where}: a dimension set must be an array of <= 30 keys")
                continue
            for key in dimension_set:
                value = document.get(key)
                if not isinstance(value, str) or not 1 <= len(value) <= 1024:
                    problems.append(f"dimension {key!r} needs a 1-1024 character string member")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or not 1 <= len(metrics) <= 100:
            problems.append(f"{where}.Metrics must hold 1-100 metric definitions")
            metrics = []
        for metric in metrics:
            name = metric.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 255:
                problems.append(f"{where}: metric name must be 1-255 characters, got {name!r}")
                continue
            if metric.get("Unit", "None") not in EMF_UNITS:
                problems.append(f"metric {name!r} has an unknown unit {metric.get('Unit')!r}")
            value = document.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                problems.append(f"metric {name!r} needs a number member, got {value!r}")
    return problems


def written_documents(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_emf_documents_are_valid_and_carry_the_counts() -> None:
    stream = io.StringIO()
    metrics = BatchMetrics("CdkSesBounce", "bounce-fn", now=lambda: FIXED_NOW, stream=stream)
    metrics.count("BouncesSent")
    metrics.count("RecipientsBounced", 2, reason="unknown-user")
    metrics.count("RecipientsSuppressed", reason="auto-submitted")
    metrics.count("RecipientsSuppressed", reason="auto-submitted")
    metrics.count("PermanentFailures", reason="expired")
    metrics.flush()

    documents = written_documents(stream)
    assert [emf_problems(document) for document in documents] == [[], [], [], []]
    overall, *per_reason = documents
    assert overall["_aws"]["Timestamp"] == 1714564830250
    assert overall["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CdkSesBounce"
    assert overall["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["FunctionName"]]
    assert overall["FunctionName"] == "bounce-fn"
    assert {name: overall[name] for name in STANDARD_METRICS} == {
        "BouncesSent": 1,
        "RecipientsBounced": 2,
        "RecipientsAccepted": 0,
        "RecipientsSuppressed": 2,
        "MessagesExpired": 0,
        "SendBounceThrottled": 0,
        "PermanentFailures": 1,
        "DuplicatesSkipped": 0,
        "TaggingFailures": 0,
        "SendBudgetUnavailable": 0,
        "SendSlotUnavailable": 0,
        "SendBudgetRepaired": 0,
        "SendSlotWait": 0,
        "SetupNotifications": 0,
    }
    units = {m["Name"]: m["Unit"] for m in overall["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units.pop("SendSlotWait") == "Milliseconds"
    assert set(units.values()) == {"Count"}
    assert [(d["Reason"], d["_aws"]["CloudWatchMetrics"][0]["Dimensions"]) for d in per_reason] == [
        ("auto-submitted", [["FunctionName", "Reason"]]),
        ("expired", [["FunctionName", "Reason"]]),
        ("unknown-user", [["FunctionName", "Reason"]]),
    ]
    assert per_reason[0]["RecipientsSuppressed"] == 2
    assert per_reason[1]["PermanentFailures"] == 1
    assert per_reason[2]["RecipientsBounced"] == 2
    assert "BouncesSent" not in per_reason[2]


def test_flush_resets_so_the_next_batch_starts_at_zero() -> None:
    stream = io.StringIO()
    metrics = BatchMetrics("Ns", "fn", now=lambda: FIXED_NOW, stream=stream)
    metrics.count("SendBounceThrottled", 3)
    metrics.flush()
    metrics.flush()
    first, second = written_documents(stream)
    assert (first["SendBounceThrottled"], second["SendBounceThrottled"]) == (3, 0)


def test_a_document_with_a_missing_dimension_member_is_invalid() -> None:
    document = BatchMetrics("Ns", "fn", now=lambda: FIXED_NOW).documents()[0]
    del document["FunctionName"]
    assert emf_problems(document) == [
        "dimension 'FunctionName' needs a 1-1024 character string member"
    ]


def test_log_lines_are_json_with_level_message_and_fields() -> None:
    stream = io.StringIO()
    logger = JsonLogger(stream, now=lambda: FIXED_NOW)
    logger.info("message bounce", ses_message_id="abc", recipients=[{"recipient": "a@b.c"}])
    logger.error("failed", detail=ValueError("boom"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [
        {
            "timestamp": "2024-05-01T12:00:30.250000+00:00",
            "level": "INFO",
            "message": "message bounce",
            "ses_message_id": "abc",
            "recipients": [{"recipient": "a@b.c"}],
        },
        {
            "timestamp": "2024-05-01T12:00:30.250000+00:00",
            "level": "ERROR",
            "message": "failed",
            "detail": "boom",
        },
    ]


def test_default_stream_is_stdout_at_call_time(capsys: pytest.CaptureFixture[str]) -> None:
    JsonLogger(now=lambda: FIXED_NOW).warning("to stdout")
    assert json.loads(capsys.readouterr().out)["level"] == "WARNING"


def test_bound_fields_go_on_every_line_and_the_line_wins_a_clash() -> None:
    stream = io.StringIO()
    logger = JsonLogger(stream, now=lambda: FIXED_NOW).bind(request_id="r-1", function_name="fn")
    logger.info("one")
    logger.bind(stage="send").warning("two", request_id="override")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (first["request_id"], first["function_name"]) == ("r-1", "fn")
    assert (second["request_id"], second["function_name"], second["stage"]) == (
        "override",
        "fn",
        "send",
    )


@pytest.mark.parametrize(
    ("level", "written"),
    [
        ("DEBUG", ["DEBUG", "INFO", "WARNING", "ERROR"]),
        ("INFO", ["INFO", "WARNING", "ERROR"]),
        ("WARNING", ["WARNING", "ERROR"]),
        ("ERROR", ["ERROR"]),
    ],
)
def test_lines_below_the_level_are_not_written(level: str, written: list[str]) -> None:
    stream = io.StringIO()
    logger = JsonLogger(stream, now=lambda: FIXED_NOW, level=level)
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    assert [json.loads(line)["level"] for line in stream.getvalue().splitlines()] == written
    assert logger.bind(x=1).level == level


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level 'TRACE' is not one of DEBUG, INFO"):
        JsonLogger(level="TRACE")


def test_exception_writes_the_traceback() -> None:
    stream = io.StringIO()
    try:
        {}["missing"]
    except KeyError as error:
        JsonLogger(stream, now=lambda: FIXED_NOW).exception("boom", error, reason="KeyError")
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"], line["reason"]) == ("ERROR", "boom", "KeyError")
    assert line["traceback"].startswith("Traceback (most recent call last):")
    assert line["traceback"].rstrip().endswith("KeyError: 'missing'")


def strict_utf8_stream() -> tuple[io.BytesIO, io.TextIOWrapper]:
    raw = io.BytesIO()
    return raw, io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)


def test_a_lone_surrogate_is_escaped_and_other_text_stays_readable() -> None:
    raw, stream = strict_utf8_stream()
    logger = JsonLogger(stream, now=lambda: FIXED_NOW)
    logger.info("accepted", recipient="us\ud800er@example.com")
    logger.info("accepted", recipient="jürgen@example.com")
    first, second = raw.getvalue().decode("utf-8").splitlines()
    assert "\\ud800" in first and json.loads(first)["recipient"] == "us\ud800er@example.com"
    assert "jürgen" in second


def test_metrics_with_a_lone_surrogate_are_escaped_too() -> None:
    raw, stream = strict_utf8_stream()
    metrics = BatchMetrics("Ns", "fn\udcff", now=lambda: FIXED_NOW, stream=stream)
    metrics.count("BouncesSent")
    metrics.flush()
    (document,) = [json.loads(line) for line in raw.getvalue().decode("ascii").splitlines()]
    assert (document["FunctionName"], document["BouncesSent"]) == ("fn\udcff", 1)


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stdout is closed")


def test_a_logger_or_metrics_failure_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    JsonLogger(BrokenStream(), now=lambda: FIXED_NOW).error("lost", detail="x")

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    JsonLogger(io.StringIO(), now=lambda: FIXED_NOW).info("odd", value=Unprintable())
    metrics = BatchMetrics("Ns", "fn", now=lambda: FIXED_NOW, stream=BrokenStream())
    metrics.count("BouncesSent")
    metrics.flush()
    assert metrics.totals["BouncesSent"] == 0  # reset all the same
    assert capsys.readouterr().err.splitlines() == [
        "cdk-ses-bounce: log line dropped: OSError",
        "cdk-ses-bounce: log line dropped: RuntimeError",
        "cdk-ses-bounce: metrics document dropped: OSError",
    ]
