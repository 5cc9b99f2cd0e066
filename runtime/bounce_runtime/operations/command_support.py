"""What the operator commands share: a boto3 session from ``--profile``/``--region``, clients
made on first use, progress lines on stderr, and argparse types with bounds.

boto3 and botocore are imported only when a session is made, so ``--help`` imports neither.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, Final, TextIO

# A progress line is printed (stderr) when the queue holds at least this many messages.
PROGRESS_MIN_MESSAGES: Final = 1_000
PROGRESS_EVERY: Final = 1_000
# The values of --output, as the AWS CLI names them.
OUTPUT_FORMATS: Final = ("text", "json")
# Bounds of --rate.
MIN_RATE: Final = 0.01
MAX_RATE: Final = 100.0


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--region``, ``--output``: the AWS CLI's names and meanings."""
    aws = parser.add_argument_group("AWS", "credentials and output, as the AWS CLI takes them")
    aws.add_argument(
        "--profile", help="named profile (default: AWS_PROFILE, else the default credentials)"
    )
    aws.add_argument(
        "--region", help="AWS region (default: AWS_DEFAULT_REGION, else the profile's)"
    )
    aws.add_argument(
        "--output",
        choices=OUTPUT_FORMATS,
        default="text",
        help="text (default) or json for scripts",
    )


def new_session(*, profile: str | None = None, region: str | None = None) -> Any:
    """A boto3 session from ``--profile`` and ``--region`` (None: what the AWS environment says:
    ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``, the shared config files)."""
    import boto3

    return boto3.session.Session(profile_name=profile, region_name=region)


class Clients:
    """boto3 clients made on first use, in one session (``--profile``/``--region`` or the
    environment's)."""

    def __init__(self, *, profile: str | None, region: str | None) -> None:
        from botocore.config import Config

        self._session = new_session(profile=profile, region=region)
        # The read timeout is above the longest long poll (20 s).
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
        )
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._session.client(service, config=self._config)
        return self._made[service]


class Progress:
    """Scan progress on stderr: rewritten in place on a terminal, else a line every so often."""

    def __init__(self, stream: TextIO, total: int | None) -> None:
        self._stream = stream
        self._total = total
        self._shown = total is not None and total >= PROGRESS_MIN_MESSAGES
        self._tty = stream.isatty()
        self._last_line = 0

    def __call__(self, scanned: int) -> None:
        if not self._shown:
            return
        text = f"read {scanned} of about {self._total} dead letters"
        if self._tty:
            self._stream.write(f"\r{text}")
        elif scanned - self._last_line >= PROGRESS_EVERY:
            self._last_line = scanned
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self) -> None:
        if self._shown and self._tty:
            self._stream.write("\n")


def int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}-{high}, got {value}")
        return value

    return parse


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and MIN_RATE <= value <= MAX_RATE):
        raise argparse.ArgumentTypeError(f"must be {MIN_RATE:g}-{MAX_RATE:g}, got {text}")
    return value
