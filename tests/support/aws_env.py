"""Dummy AWS credentials for tests, so no test can reach a real account, and moto's server on
a free loopback port for the tests that reach AWS through the real botocore client."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def use_dummy_credentials(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Set dummy credentials and `region` (both region variables) for the test."""
    for name, value in {
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 and a free port: its endpoint URL, stopped on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
