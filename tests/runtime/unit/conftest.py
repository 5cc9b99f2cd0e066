"""Shared fixtures of the pure-core unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber


@pytest.fixture(scope="session")
def ses_client() -> Any:
    """A real botocore SES client (no network: every call in these tests is stubbed)."""
    session = botocore.session.get_session()
    return session.create_client(
        "ses", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def botocore_accepts(ses_client: Any) -> Iterator[Callable[[Mapping[str, Any]], None]]:
    """Send a request through botocore's validation and query serializer, stubbed.

    Fails the test when botocore rejects the parameters or they arrive changed.
    """
    with Stubber(ses_client) as stubber:

        def check(request: Mapping[str, Any]) -> None:
            stubber.add_response(
                "send_bounce", {"MessageId": "bounce-id"}, expected_params=dict(request)
            )
            response = ses_client.send_bounce(**request)
            assert response["MessageId"] == "bounce-id"

        yield check
        stubber.assert_no_pending_responses()
