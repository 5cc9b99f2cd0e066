"""The runtime's sender with the shared budget, against the strict local SES and a local DynamoDB
endpoint: when the budget cannot be reached or has no slot in time, nothing is
sent (and nothing is taken); when it can, every attempt is spaced."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bounce_runtime.adapters.clients import ses_client_kwargs
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.send_budget import SendBudget
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.contract import (
    REASON_SEND_BUDGET_UNAVAILABLE,
    SEND_BUDGET_KEY_ATTRIBUTE,
    SEND_BUDGET_MAX_ATTEMPTS,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
)
from bounce_runtime.errors import SendSlotUnavailable, TransientSendError
from support.local_budget import (
    CREDENTIALS,
    REGION,
    create_budget_table,
    dynamodb_client,
    moto_server,
)
from support.local_ses import LocalSes, count_close_calls

RATE = 20.0
REQUEST = {
    "OriginalMessageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
    "BounceSender": "mailer-daemon@example.com",
    "BouncedRecipientInfoList": [{"Recipient": "gone@example.com", "BounceType": "DoesNotExist"}],
}


@pytest.fixture
def ses() -> Iterator[LocalSes]:
    with LocalSes(rate_per_second=RATE, strict=True, region=REGION) as server:
        yield server


def ses_client(ses: LocalSes) -> Any:
    return boto3.client(
        "ses",
        region_name=REGION,
        endpoint_url=ses.endpoint_url,
        **CREDENTIALS,
        **ses_client_kwargs(),
    )


def sender_with(budget: SendBudget, ses: LocalSes) -> BounceSender:
    # The container's own pacer and the shared budget; the retries do not sleep (fast tests).
    return BounceSender(ses_client(ses), Pacer(RATE), budget=budget, sleep=lambda _: None)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def budget_at(endpoint_url: str, table: str, budget_id: str = "faults") -> SendBudget:
    return SendBudget(
        dynamodb_client(endpoint_url),
        table_name=table,
        budget_id=budget_id,
        rate_per_second=RATE,
    )


def test_unreachable_budget_sends_nothing_and_fails_transiently(ses: LocalSes) -> None:
    budget = budget_at(f"http://127.0.0.1:{closed_port()}", "send-budget")
    started = time.monotonic()

    with pytest.raises(TransientSendError) as caught:
        sender_with(budget, ses).send(REQUEST, remaining_seconds=lambda: 600.0)

    assert caught.value.reason == REASON_SEND_BUDGET_UNAVAILABLE
    assert "EndpointConnectionError" in caught.value.message
    assert ses.attempts == []
    assert time.monotonic() - started < 5.0  # bounded: refused connections, jittered pauses


def test_throttled_budget_sends_nothing(ses: LocalSes) -> None:
    client = dynamodb_client("http://127.0.0.1:1")
    budget = SendBudget(client, table_name="t", budget_id="faults", rate_per_second=RATE)
    with Stubber(client) as stub:
        for _ in range(SEND_BUDGET_MAX_ATTEMPTS):
            stub.add_client_error(
                "update_item", "ProvisionedThroughputExceededException", http_status_code=400
            )
        with pytest.raises(TransientSendError) as caught:
            sender_with(budget, ses).send(REQUEST, remaining_seconds=lambda: 600.0)
        stub.assert_no_pending_responses()

    assert caught.value.reason == REASON_SEND_BUDGET_UNAVAILABLE
    assert ses.attempts == []


def test_budget_lost_mid_run_stops_sending_at_once(ses: LocalSes) -> None:
    with moto_server() as endpoint:
        table = create_budget_table(endpoint)
        budget = budget_at(endpoint, table)
        sender = sender_with(budget, ses)
        for _ in range(3):
            sender.send(REQUEST, remaining_seconds=lambda: 600.0)
    # The endpoint is gone now.
    with pytest.raises(TransientSendError, match="unavailable"):
        sender.send(REQUEST, remaining_seconds=lambda: 600.0)

    assert len(ses.calls) == 3
    assert ses.throttled == 0
    assert count_close_calls([c.time for c in ses.calls], RATE) == 0


def test_no_slot_in_time_means_no_send_and_nothing_taken(ses: LocalSes) -> None:
    with moto_server() as endpoint:
        table = create_budget_table(endpoint)
        # Other containers hold the schedule 5 s ahead.
        far = time.time() + 5.0
        dynamodb_client(endpoint).put_item(
            TableName=table,
            Item={
                SEND_BUDGET_KEY_ATTRIBUTE: {"S": "busy"},
                SEND_BUDGET_NEXT_FREE_ATTRIBUTE: {"N": f"{far:.6f}"},
            },
        )
        budget = budget_at(endpoint, table, "busy")

        sender = sender_with(budget, ses)
        # The Lambda has 2 s left beyond what one attempt and the work after it need.
        remaining_s = 2.0 + sender.min_send_seconds
        with pytest.raises(SendSlotUnavailable, match=r"no slot in the 2\.\d\d s left"):
            sender.send(REQUEST, remaining_seconds=lambda: remaining_s)

        item = dynamodb_client(endpoint).get_item(
            TableName=table, Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": "busy"}}, ConsistentRead=True
        )["Item"]
    assert float(item[SEND_BUDGET_NEXT_FREE_ATTRIBUTE]["N"]) == pytest.approx(far, abs=1e-5)
    assert ses.attempts == []


def test_a_budget_item_hours_ahead_is_repaired_and_the_bounce_goes_out(ses: LocalSes) -> None:
    """0.3.0: every take found no slot in time, the batch stopped as out of time and nothing
    counted it. Now the send goes out within the record's time and the repair is reported."""
    with moto_server() as endpoint:
        table = create_budget_table(endpoint)
        sender = sender_with(budget_at(endpoint, table, "hours-ahead"), ses)
        sender.send(REQUEST, remaining_seconds=lambda: 600.0)  # a warm container
        dynamodb_client(endpoint).update_item(  # a host whose clock is 6 hours ahead writes
            TableName=table,
            Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": "hours-ahead"}},
            UpdateExpression="SET #next = :far",
            ExpressionAttributeNames={"#next": SEND_BUDGET_NEXT_FREE_ATTRIBUTE},
            ExpressionAttributeValues={":far": {"N": f"{time.time() + 6 * 3600:.6f}"}},
        )
        repairs: list[None] = []
        remaining_s = 2.0 + sender.min_send_seconds

        sender.send(
            REQUEST,
            remaining_seconds=lambda: remaining_s,
            on_budget_repair=lambda: repairs.append(None),
        )

    assert len(ses.calls) == 2
    assert len(repairs) == 1
    assert count_close_calls([c.time for c in ses.calls], RATE) == 0


def test_two_senders_in_turn_never_trip_the_strict_server(ses: LocalSes) -> None:
    """Two containers share one budget and alternate sends with no local pacing between them."""
    with moto_server() as endpoint:
        table = create_budget_table(endpoint)
        senders = [sender_with(budget_at(endpoint, table, "pair"), ses) for _ in range(2)]
        for turn in range(10):
            senders[turn % 2].send(REQUEST, remaining_seconds=lambda: 600.0)

    assert len(ses.calls) == 10
    assert ses.throttled == 0
    assert count_close_calls([c.time for c in ses.calls], RATE) == 0


def test_the_local_pacer_alone_would_trip_the_strict_server(ses: LocalSes) -> None:
    """The same two containers with only their own per-container Pacer: the strict server
    throttles, which is why the budget exists (and why the test above can fail)."""
    senders = [BounceSender(ses_client(ses), Pacer(RATE), sleep=lambda _: None) for _ in range(2)]
    for turn in range(10):
        with contextlib.suppress(TransientSendError):  # gave up after throttling
            senders[turn % 2].send(REQUEST, remaining_seconds=lambda: 600.0)
    assert ses.throttled > 0
