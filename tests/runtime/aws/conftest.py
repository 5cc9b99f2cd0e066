"""Fixtures for the AWS adapter tests: real botocore clients (no network) and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bounce_runtime.ses_sender import botocore_client_kwargs

REGION = "us-east-1"


class FakeTime:
    """A monotonic clock moved only by ``sleep`` or ``advance``; Lambda's deadline on it."""

    def __init__(self, start: float = 500.0, budget_s: float = 900.0) -> None:
        self.now = start
        self.deadline = start + budget_s
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def remaining_seconds(self) -> float:
        return self.deadline - self.now

    def remaining_ms(self) -> int:
        return int(self.remaining_seconds() * 1000)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dummy credentials and region so no test can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SES"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def ses_client() -> Any:
    return boto3.client("ses", region_name=REGION, **botocore_client_kwargs())


@pytest.fixture
def s3_client() -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def sqs_client() -> Any:
    return boto3.client("sqs", region_name=REGION)
