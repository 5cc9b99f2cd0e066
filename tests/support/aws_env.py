"""Dummy AWS credentials for tests, so no test can reach a real account."""

from __future__ import annotations

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
