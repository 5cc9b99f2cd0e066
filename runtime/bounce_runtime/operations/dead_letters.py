"""Dead-letter triage and replay for a BounceProcessor's queues: one import for the pieces.

- ``reason_classes``: what each dead-letter reason means and whether replay helps;
- ``dead_letter_scan``: ``DeadLetter`` and ``DeadLetterScan`` (read the queue without consuming);
- ``dead_letter_triage``: ``summarize`` and ``format_table`` (``dead-letters list``);
- ``replay``: ``Replayer`` and its checks (``dead-letters replay``);
- ``stack_lookup``: a deployed processor's queues and function, and whether they belong together.

Each module imports only those above it in this list (no cycle).
"""

from __future__ import annotations

from bounce_runtime.operations.dead_letter_scan import (
    MAX_REPEAT_RECEIVES,
    REPLAY_WINDOW_MARGIN,
    SQS_BATCH_MAX,
    VISIBILITY_TIMEOUT_MAX_S,
    DeadLetter,
    DeadLetterScan,
    SqsClient,
)
from bounce_runtime.operations.dead_letter_triage import (
    TABLE_HEADER,
    ReasonSummary,
    format_table,
    summarize,
)
from bounce_runtime.operations.reason_classes import (
    OUTCOME_CHECKED_FLAG,
    REASON_CLASSES,
    REDRIVEN_BY_SQS,
    REPLAY_IF_NO_BOUNCE_SENT,
    REPLAY_NO,
    REPLAY_YES,
    ReasonClass,
    printable,
)
from bounce_runtime.operations.replay import (
    Replayer,
    ReplayOutcome,
    ReplaySelection,
    S3Client,
    refusal,
)
from bounce_runtime.operations.stack_lookup import (
    CloudFormationClient,
    LambdaClient,
    ProcessorQueues,
    ProcessorScope,
    check_queue_pair,
    find_processor_function,
    find_processor_queues,
    read_processor_scope,
)

__all__ = [
    "MAX_REPEAT_RECEIVES",
    "OUTCOME_CHECKED_FLAG",
    "REASON_CLASSES",
    "REDRIVEN_BY_SQS",
    "REPLAY_IF_NO_BOUNCE_SENT",
    "REPLAY_NO",
    "REPLAY_WINDOW_MARGIN",
    "REPLAY_YES",
    "SQS_BATCH_MAX",
    "TABLE_HEADER",
    "VISIBILITY_TIMEOUT_MAX_S",
    "CloudFormationClient",
    "DeadLetter",
    "DeadLetterScan",
    "LambdaClient",
    "ProcessorQueues",
    "ProcessorScope",
    "ReasonClass",
    "ReasonSummary",
    "ReplayOutcome",
    "ReplaySelection",
    "Replayer",
    "S3Client",
    "SqsClient",
    "check_queue_pair",
    "find_processor_function",
    "find_processor_queues",
    "format_table",
    "printable",
    "read_processor_scope",
    "refusal",
    "summarize",
]
