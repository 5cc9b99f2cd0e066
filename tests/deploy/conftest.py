"""Fixtures for the deploy-day tests: moto's SES as a server on 127.0.0.1 behind a proxy that can
fail, a response endpoint recording CloudFormation's answers, and the handler as Lambda loads it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from deploy.stand_ins import CloudFormation, ResponseEndpoint, SesProxy, load_handler

from support.aws_env import moto_server, use_dummy_credentials

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free loopback port; stopped at the end."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def ses_proxy(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Iterator[SesProxy]:
    """A fresh moto state; the handler's SES client (AWS_ENDPOINT_URL_SES) reaches it through
    the proxy, with dummy credentials."""
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    use_dummy_credentials(monkeypatch, REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    proxy = SesProxy(target=moto_endpoint)
    server = proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SES", proxy.url)
    yield proxy
    proxy.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def ses(ses_proxy: SesProxy, moto_endpoint: str) -> Any:
    """A client straight to moto, to arrange and read SES state: sets `ours` and `theirs`."""
    client = boto3.client("ses", region_name=REGION, endpoint_url=moto_endpoint)
    for name in ("ours", "theirs"):
        client.create_receipt_rule_set(RuleSetName=name)
    return client


@pytest.fixture
def response() -> Iterator[ResponseEndpoint]:
    endpoint = ResponseEndpoint()
    server = endpoint.start()
    yield endpoint
    server.shutdown()
    server.server_close()


@pytest.fixture
def cloudformation(response: ResponseEndpoint) -> CloudFormation:
    return CloudFormation(response.url)


@pytest.fixture
def handler() -> ModuleType:
    return load_handler()
