"""Fixtures of the runtime tests: real botocore clients (no network) and a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from bounce_runtime.adapters.clients import ses_client_kwargs
from support.aws_env import use_dummy_credentials

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
    use_dummy_credentials(monkeypatch, REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SES"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def ses_client() -> Any:
    return boto3.client("ses", region_name=REGION, **ses_client_kwargs())


@pytest.fixture
def s3_client() -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def sqs_client() -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture(scope="session")
def offline_ses_client() -> Any:
    """A real botocore SES client (no network: every call in these tests is stubbed)."""
    session = botocore.session.get_session()
    return session.create_client(
        "ses", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def botocore_accepts(offline_ses_client: Any) -> Iterator[Callable[[Mapping[str, Any]], None]]:
    """Send a request through botocore's validation and query serializer, stubbed.

    Fails the test when botocore rejects the parameters or they arrive changed.
    """
    with Stubber(offline_ses_client) as stubber:

        def check(request: Mapping[str, Any]) -> None:
            stubber.add_response(
                "send_bounce", {"MessageId": "bounce-id"}, expected_params=dict(request)
            )
            response = offline_ses_client.send_bounce(**request)
            assert response["MessageId"] == "bounce-id"

        yield check
        stubber.assert_no_pending_responses()
