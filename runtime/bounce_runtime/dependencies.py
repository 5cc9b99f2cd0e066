"""What a batch and each of its records work with: one object, built once per invocation and
shared by ``processor.BatchProcessor`` and ``workflow.RecordWorkflow``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from bounce_runtime.contract import AWS_CALL_BOUND_S

if TYPE_CHECKING:
    from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
    from bounce_runtime.adapters.mail_store import MailStore
    from bounce_runtime.adapters.ses_sender import BounceSender
    from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
    from bounce_runtime.config import RuntimeConfig


class RecordDependencies:
    """The config, the adapters, the telemetry and the clocks of one invocation.

    ``remaining_seconds`` is the Lambda time left; ``aws_call_bound_s`` the longest one S3 or SQS
    call can take (the clients' timeouts and attempts): no record claims, retries tagging or
    dead-letters without time for its calls. (A plain class, not a dataclass: ``dataclasses``
    would add to the Lambda's cold start.)
    """

    __slots__ = (
        "aws_call_bound_s",
        "config",
        "dead_letter",
        "logger",
        "mail_store",
        "metrics",
        "now",
        "remaining_seconds",
        "sender",
        "sleep",
    )

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        mail_store: MailStore,
        sender: BounceSender,
        dead_letter: DeadLetterQueue,
        metrics: BatchMetrics,
        logger: JsonLogger,
        now: Callable[[], datetime],
        remaining_seconds: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        aws_call_bound_s: float = AWS_CALL_BOUND_S,
    ) -> None:
        self.config = config
        self.mail_store = mail_store
        self.sender = sender
        self.dead_letter = dead_letter
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.remaining_seconds = remaining_seconds
        self.sleep = sleep
        self.aws_call_bound_s = aws_call_bound_s
