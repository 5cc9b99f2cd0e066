"""Structured JSON log lines and CloudWatch Embedded Metric Format (EMF) documents on stdout."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from bounce_runtime.contract import (
    DEFAULT_LOG_LEVEL,
    DEFAULT_METRIC_UNIT,
    DIMENSION_FUNCTION_NAME,
    DIMENSION_REASON,
    LOG_LEVELS,
    METRIC_UNITS,
    STANDARD_METRICS,
)

MAX_METRICS_PER_DIRECTIVE = 100
# Fields the handler binds to every line of an invocation.
FIELD_REQUEST_ID = "request_id"
FIELD_FUNCTION_NAME = "function_name"
FIELD_TRACEBACK = "traceback"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_traceback(error: BaseException) -> str:
    """The traceback of ``error`` as Python prints it (imported on first use: only failures
    pay for the traceback module)."""
    import traceback

    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def write_json_line(stream: TextIO, value: dict[str, Any]) -> None:
    """Write ``value`` as one JSON line: readable UTF-8, or all-ASCII escapes when it holds
    text that UTF-8 cannot encode (lone surrogates)."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, default=str, ensure_ascii=True)
    stream.write(text + "\n")
    stream.flush()


def _note_dropped(what: str, error: Exception) -> None:
    """Say on stderr that a line was dropped; never raises."""
    try:
        sys.stderr.write(f"cdk-ses-bounce: {what} dropped: {type(error).__name__}\n")
    except Exception:  # stderr is gone too: nothing more can be done
        return


class JsonLogger:
    """Writes one JSON object per line: ``timestamp``, ``level``, ``message``, the logger's bound
    fields (the handler binds ``request_id`` and ``function_name``) and the line's own fields.

    Lines below ``level`` (one of ``contract.LOG_LEVELS``) are not written. Callers pass
    identifiers, decisions and reasons, never mail bodies.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        now: Callable[[], datetime] = utc_now,
        *,
        level: str = DEFAULT_LOG_LEVEL,
        bound: dict[str, Any] | None = None,
    ) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
        self._stream = stream
        self._now = now
        self.level = level
        self._threshold = LOG_LEVELS.index(level)
        self._bound = dict(bound or {})

    def bind(self, **fields: Any) -> JsonLogger:
        """A logger writing to the same stream at the same level, with ``fields`` on every line."""
        return JsonLogger(
            self._stream, self._now, level=self.level, bound={**self._bound, **fields}
        )

    def enabled(self, level: str) -> bool:
        """Whether lines of ``level`` are written."""
        return LOG_LEVELS.index(level) >= self._threshold

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Write one line; values that are not JSON types are written as their ``str``.

        Never raises: logging must not fail a batch. Text that is not valid Unicode (a lone
        surrogate from a JSON escape in a notification) is written escaped, as ``\\udXXX``;
        a line that cannot be written at all is dropped (a note goes to stderr).
        """
        if not self.enabled(level):
            return
        try:
            line = {"timestamp": self._now().isoformat(), "level": level, "message": message}
            line.update(self._bound)
            line.update(fields)
            write_json_line(self._stream or sys.stdout, line)
        except Exception as error:
            _note_dropped("log line", error)

    def debug(self, message: str, **fields: Any) -> None:
        self.log("DEBUG", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)

    def exception(self, message: str, error: BaseException, **fields: Any) -> None:
        """An ERROR line for an unexpected ``error``, with its ``traceback``."""
        self.log("ERROR", message, **fields, **{FIELD_TRACEBACK: format_traceback(error)})


class BatchMetrics:
    """Counts metrics for one batch and writes them as EMF documents.

    ``flush`` writes one document with every count and the dimension ``FunctionName``; counts
    given a ``reason`` also go into one document per reason with the dimensions
    ``FunctionName, Reason``.
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
        documents = [
            self._document(timestamp, {DIMENSION_FUNCTION_NAME: self.function_name}, self.totals)
        ]
        for reason, counts in sorted(self.by_reason.items()):
            dimensions = {DIMENSION_FUNCTION_NAME: self.function_name, DIMENSION_REASON: reason}
            documents.append(self._document(timestamp, dimensions, counts))
        return documents

    def flush(self) -> None:
        """Write the documents, one JSON line each, and reset the counts. Never raises (as
        ``JsonLogger.log``): metrics must not fail a batch."""
        try:
            stream = self._stream or sys.stdout
            for document in self.documents():
                write_json_line(stream, document)
        except Exception as error:
            _note_dropped("metrics document", error)
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
                    {"Name": name, "Unit": METRIC_UNITS.get(name, DEFAULT_METRIC_UNIT)}
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
