"""Fixtures for the operator tools: moto's SQS, S3, CloudFormation, Lambda and IAM as one server
on 127.0.0.1, reached by the real botocore clients through ``AWS_ENDPOINT_URL_<SERVICE>``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from operations.pipeline import REGION, Pipeline, clients

import bounce_runtime.operations.command_support as command_support
from support.aws_env import moto_server, use_dummy_credentials

SERVICES = ("SQS", "S3", "CLOUDFORMATION", "LAMBDA", "IAM")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free loopback port; stopped at the end."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    """Dummy credentials and a region; every service the tools call goes to the moto server."""
    use_dummy_credentials(monkeypatch, REGION)
    for service in SERVICES:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_endpoint)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def shared_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """One boto3 session per region for every command the tests run: each new session loads
    the service models again (about half a second on a busy machine)."""
    monkeypatch.setattr(command_support, "new_session", _session)


@functools.cache
def _session(*, profile: str | None = None, region: str | None = None) -> Any:
    return boto3.session.Session(profile_name=profile, region_name=region)


@pytest.fixture(scope="session")
def moto_clients(moto_endpoint: str) -> dict[str, Any]:
    return clients(moto_endpoint)


@pytest.fixture
def pipeline(moto_clients: dict[str, Any]) -> Pipeline:
    return Pipeline(moto_clients)
