"""Keyword arguments for the boto3 clients, from the time bounds in ``contract``.

The SES client makes one attempt (``ses_sender`` decides every retry itself); the S3 and SQS
clients make ``AWS_TOTAL_MAX_ATTEMPTS`` with short timeouts, so one of their calls takes at most
``contract.AWS_CALL_BOUND_S``.
"""

from __future__ import annotations

from typing import Any

from bounce_runtime.contract import (
    AWS_CONNECT_TIMEOUT_S,
    AWS_READ_TIMEOUT_S,
    AWS_TOTAL_MAX_ATTEMPTS,
    SES_CONNECT_TIMEOUT_S,
    SES_READ_TIMEOUT_S,
)


def ses_client_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``boto3.client("ses", ...)``: no botocore retries, short timeouts."""
    from botocore.config import Config

    return {
        "config": Config(
            # total_max_attempts counts the first attempt; botocore's max_attempts counts retries.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=SES_CONNECT_TIMEOUT_S,
            read_timeout=SES_READ_TIMEOUT_S,
        )
    }


def aws_client_kwargs() -> dict[str, Any]:
    """Keyword arguments for the S3 and SQS clients: each call bounded by ``AWS_CALL_BOUND_S``."""
    from botocore.config import Config

    return {
        "config": Config(
            retries={"total_max_attempts": AWS_TOTAL_MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=AWS_CONNECT_TIMEOUT_S,
            read_timeout=AWS_READ_TIMEOUT_S,
        )
    }
