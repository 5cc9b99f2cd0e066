"""Lambda entry point: one set of clients per container, one ``BatchProcessor`` per invocation.

What builds the container (boto3, the environment reader and policy loader, the client settings)
is imported on the first invocation, not at import time, to keep the module cheap to load.
Clients are built the ordinary way, so ``AWS_ENDPOINT_URL_SES`` (``_S3``, ``_SQS``, ``_DYNAMODB``)
redirect them.
Every log line of an invocation carries its ``request_id`` and ``function_name``.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.adapters.telemetry import (
    FIELD_FUNCTION_NAME,
    FIELD_REQUEST_ID,
    BatchMetrics,
    JsonLogger,
    utc_now,
)
from bounce_runtime.contract import function_name
from bounce_runtime.errors import ConfigError
from bounce_runtime.processor import BatchProcessor, BatchResponse

if TYPE_CHECKING:
    from bounce_runtime.adapters.protocols import LambdaContext
    from bounce_runtime.adapters.send_budget import SendBudget
    from bounce_runtime.config import RuntimeConfig


class Container(NamedTuple):
    """What lives as long as the Lambda container: config, clients, the pacer's budget."""

    config: "RuntimeConfig"
    mail_store: MailStore
    sender: BounceSender
    dead_letter: DeadLetterQueue


_container: Container | None = None


def build_container(environ: Mapping[str, str]) -> Container:
    """Read the config and create the boto3 clients (S3 and SQS: one botocore retry and short
    timeouts, so each call is bounded by ``AWS_CALL_BOUND_S``; SES and the send budget's
    DynamoDB: no botocore retry)."""
    import boto3

    from bounce_runtime.adapters.clients import aws_client_kwargs, ses_client_kwargs
    from bounce_runtime.config import RuntimeConfig

    config = RuntimeConfig.from_environ(environ)
    s3 = boto3.client("s3", **aws_client_kwargs())
    ses = boto3.client("ses", **ses_client_kwargs())
    sqs = boto3.client("sqs", **aws_client_kwargs())
    return Container(
        config=config,
        mail_store=MailStore(s3),
        sender=BounceSender(
            ses, Pacer(config.send_rate_per_second), budget=_send_budget(config, boto3)
        ),
        dead_letter=DeadLetterQueue(sqs, config.dead_letter_queue_url),
    )


def _send_budget(config: "RuntimeConfig", boto3: Any) -> "SendBudget | None":
    """The account's shared send budget when the environment names its table (the construct
    always does), paced at the budget's rate; None: the container's own pacer alone."""
    if config.send_budget_table is None:
        return None
    from bounce_runtime.adapters.send_budget import SendBudget
    from bounce_runtime.adapters.send_budget_item import send_budget_client_kwargs

    return SendBudget(
        boto3.client("dynamodb", **send_budget_client_kwargs()),
        table_name=config.send_budget_table,
        budget_id=config.send_budget_id,
        rate_per_second=config.send_rate_per_second,
    )


def _invocation_fields(context: "LambdaContext") -> dict[str, Any]:
    return {
        FIELD_REQUEST_ID: getattr(context, "aws_request_id", None),
        FIELD_FUNCTION_NAME: getattr(context, "function_name", None) or function_name(os.environ),
    }


def handler(event: Mapping[str, Any], context: "LambdaContext") -> BatchResponse:
    """Process one SQS batch; returns the partial batch response.

    An invalid configuration fails the invocation (nothing is processed): SQS keeps the batch's
    records, redelivers them, and moves each to the dead-letter queue after the queue's
    maxReceiveCount receives.
    """
    global _container
    fields = _invocation_fields(context)
    if _container is None:
        try:
            _container = build_container(os.environ)
        except ConfigError as error:
            JsonLogger(bound=fields).error(
                "invalid configuration: the invocation fails; SQS redelivers the batch's records "
                "and moves them to the dead-letter queue after maxReceiveCount receives",
                reason=error.reason,
                detail=error.message,
            )
            raise
        except Exception as error:  # the clients could not be built: the invocation fails
            JsonLogger(bound=fields).exception(
                "container setup failed: the invocation fails; SQS redelivers the batch's records",
                error,
                reason=type(error).__name__,
                detail=str(error),
            )
            raise
    container = _container
    logger = JsonLogger(level=container.config.log_level, bound=fields)
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
    try:
        return processor.process(event)
    except Exception as error:  # not an SQS event, or a bug: the invocation fails
        logger.exception(
            "invocation failed: SQS redelivers the batch's records",
            error,
            reason=type(error).__name__,
            detail=str(error),
        )
        raise
