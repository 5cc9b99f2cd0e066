"""Lambda entry point: one set of clients per container, one ``BatchProcessor`` per invocation.

boto3 is imported on the first invocation, not at import time, to keep the module cheap to load.
Clients are built the ordinary way, so ``AWS_ENDPOINT_URL_SES`` (``_S3``, ``_SQS``) redirect them.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import os
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from bounce_runtime.config import RuntimeConfig
from bounce_runtime.dead_letter import DeadLetterQueue
from bounce_runtime.errors import ConfigError
from bounce_runtime.mail_store import MailStore
from bounce_runtime.observability import BatchMetrics, JsonLogger, utc_now
from bounce_runtime.pacing import Pacer
from bounce_runtime.processor import BatchProcessor, BatchResponse
from bounce_runtime.ses_sender import BounceSender, aws_client_kwargs, botocore_client_kwargs


class LambdaContext(Protocol):
    """The part of Lambda's context object the handler uses."""

    def get_remaining_time_in_millis(self) -> int: ...


class Container(NamedTuple):
    """What lives as long as the Lambda container: config, clients, the pacer's budget."""

    config: RuntimeConfig
    mail_store: MailStore
    sender: BounceSender
    dead_letter: DeadLetterQueue


_container: Container | None = None


def build_container(environ: Mapping[str, str]) -> Container:
    """Read the config and create the boto3 clients (S3 and SQS: one botocore retry and short
    timeouts, so each call is bounded by ``AWS_CALL_BOUND_S``; SES: no botocore retry)."""
    import boto3

    config = RuntimeConfig.from_environ(environ)
    s3 = boto3.client("s3", **aws_client_kwargs())
    ses = boto3.client("ses", **botocore_client_kwargs())
    sqs = boto3.client("sqs", **aws_client_kwargs())
    return Container(
        config=config,
        mail_store=MailStore(s3),
        sender=BounceSender(ses, Pacer(config.send_rate_per_second)),
        dead_letter=DeadLetterQueue(sqs, config.dead_letter_queue_url),
    )


def handler(event: Mapping[str, Any], context: LambdaContext) -> BatchResponse:
    """Process one SQS batch; returns the partial batch response."""
    global _container
    logger = JsonLogger()
    if _container is None:
        try:
            _container = build_container(os.environ)
        except ConfigError as error:
            logger.error("invalid configuration", reason=error.reason, detail=error.message)
            raise
    container = _container
    processor = BatchProcessor(
        container.config,
        mail_store=container.mail_store,
        sender=container.sender,
        dead_letter=container.dead_letter,
        metrics=BatchMetrics(container.config.metrics_namespace, container.config.function_name),
        logger=logger,
        now=utc_now,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    return processor.process(event)
