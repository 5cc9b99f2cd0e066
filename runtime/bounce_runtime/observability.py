"""Structured JSON log lines and CloudWatch Embedded Metric Format (EMF) documents on stdout."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

# Always emitted (zero when nothing happened) so that the alarms see a data point every batch.
STANDARD_METRICS = (
    "BouncesSent",
    "RecipientsBounced",
    "RecipientsAccepted",
    "RecipientsSuppressed",
    "MessagesExpired",
    "SendBounceThrottled",
    "PermanentFailures",
    "DuplicatesSkipped",
    "TaggingFailures",
)
MAX_METRICS_PER_DIRECTIVE = 100


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class JsonLogger:
    """Writes one JSON object per line: ``timestamp``, ``level``, ``message`` and the fields.

    Callers pass identifiers, decisions and reasons, never mail bodies.
    """

    def __init__(self, stream: TextIO | None = None, now: Callable[[], datetime] = utc_now) -> None:
        self._stream = stream
        self._now = now

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Write one line; values that are not JSON types are written as their ``str``."""
        line = {"timestamp": self._now().isoformat(), "level": level, "message": message}
        line.update(fields)
        stream = self._stream or sys.stdout
        stream.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
        stream.flush()

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)


class BatchMetrics:
    """Counts metrics for one batch and writes them as EMF documents.

    One document carries every count with the dimension ``FunctionName``; counts given a
    ``reason`` also go into one document per reason with the dimensions ``FunctionName, Reason``.
    """

    def __init__(
        self,
        namespace: str,
        function_name: str,
        *,
        now: Callable[[], datetime] = utc_now,
        stream: TextIO | None = None,
    ) -> None:
        self.namespace = namespace
        self.function_name = function_name
        self._now = now
        self._stream = stream
        self.totals: Counter[str] = Counter(dict.fromkeys(STANDARD_METRICS, 0))
        self.by_reason: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def count(self, name: str, value: int = 1, *, reason: str | None = None) -> None:
        """Add ``value`` to metric ``name`` (and to its per-reason count when ``reason`` is set)."""
        self.totals[name] += value
        if reason:
            self.by_reason[reason][name] += value

    def documents(self) -> list[dict[str, Any]]:
        """The EMF documents for the counts so far."""
        timestamp = int(self._now().timestamp() * 1000)
        documents = [self._document(timestamp, {"FunctionName": self.function_name}, self.totals)]
        for reason, counts in sorted(self.by_reason.items()):
            dimensions = {"FunctionName": self.function_name, "Reason": reason}
            documents.append(self._document(timestamp, dimensions, counts))
        return documents

    def flush(self) -> None:
        """Write the documents, one JSON line each, and reset the counts."""
        stream = self._stream or sys.stdout
        for document in self.documents():
            stream.write(json.dumps(document, ensure_ascii=False) + "\n")
        stream.flush()
        self.totals = Counter(dict.fromkeys(STANDARD_METRICS, 0))
        self.by_reason.clear()

    def _document(
        self, timestamp: int, dimensions: dict[str, str], counts: Counter[str]
    ) -> dict[str, Any]:
        names = sorted(counts)
        directives = [
            {
                "Namespace": self.namespace,
                "Dimensions": [list(dimensions)],
                "Metrics": [
                    {"Name": name, "Unit": "Count"}
                    for name in names[start : start + MAX_METRICS_PER_DIRECTIVE]
                ],
            }
            for start in range(0, len(names), MAX_METRICS_PER_DIRECTIVE)
        ]
        document: dict[str, Any] = {
            "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": directives}
        }
        document.update(dimensions)
        document.update({name: counts[name] for name in names})
        return document
