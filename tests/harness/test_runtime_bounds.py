"""BatchProcessor on the sqs_sim fakes, with slow calls: the Lambda deadline and the 24-hour
SendBounce window bound every call, and odd records never escape ``process()``."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import NoCredentialsError

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import (
    AWS_CALL_BOUND_S,
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    SEND_WINDOW_MARGIN_S,
)
from bounce_runtime.core.policy import default_policy
from bounce_runtime.processor import BatchProcessor
from support.events import BUCKET, MESSAGE_ID, OBJECT_KEY_PREFIX, notification, sqs_record
from support.sqs_sim import FakeClock, FakeS3, FakeSes, FakeSqsClient, FaultInjector, client_error

MAIL_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY = OBJECT_KEY_PREFIX + MESSAGE_ID
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bounce-dlq"
SES_ATTEMPT_S = 6.0  # the SES client's connect + read timeouts


class Lambda:
    """One invocation: a processor on the fakes, its deadline on a fake clock, every call timed."""

    def __init__(
        self,
        *,
        deadline_s: float = 900.0,
        rate: float = 1000.0,
        s3_call_s: float = 0.01,
        ses_call_s: float = 0.05,
        sqs_call_s: float = 0.01,
        mail_age: timedelta = timedelta(minutes=5),
    ) -> None:
        self.clock = FakeClock()
        self.start = self.clock()
        self.deadline = self.start + deadline_s
        faults = FaultInjector(random.Random(1), {})
        self.ses = FakeSes(
            self.clock, faults, verified=["example.com"], rate_per_second=1e6,
            call_seconds=ses_call_s,
        )  # fmt: skip
        self.s3 = FakeS3(self.clock, faults, call_seconds=s3_call_s, wall_clock=self.wall)
        self.sqs = FakeSqsClient(self.clock, faults, call_seconds=sqs_call_s)
        self.mail_age = mail_age
        self.call_ends: list[tuple[str, float]] = []
        self.calls: list[str] = []
        for client, names in (
            (self.s3, ("head_object", "get_object", "get_object_tagging", "put_object_tagging",
                       "put_object", "delete_object")),
            (self.ses, ("send_bounce",)),
            (self.sqs, ("send_message",)),
        ):  # fmt: skip
            for name in names:
                setattr(client, name, self._timed(name, getattr(client, name)))
        self.emf = io.StringIO()
        config = RuntimeConfig(
            bounce_sender="bounces@example.com",
            dead_letter_queue_url=DLQ_URL,
            policy=default_policy(),
            send_rate_per_second=rate,
        )
        self.processor = BatchProcessor(
            config,
            mail_store=MailStore(self.s3),
            sender=BounceSender(
                self.ses,
                Pacer(rate, clock=self.clock, sleep=self.clock.sleep),
                sleep=self.clock.sleep,
                rng=random.Random(5),
            ),
            dead_letter=DeadLetterQueue(self.sqs, DLQ_URL),
            metrics=BatchMetrics("ns", "fn", now=self.wall, stream=self.emf),
            logger=JsonLogger(io.StringIO(), now=self.wall),
            now=self.wall,
            remaining_ms=lambda: int((self.deadline - self.clock()) * 1000),
            sleep=self.clock.sleep,
        )
        self.s3.put(BUCKET, KEY, b"Subject: x\r\n\r\nbody")

    def wall(self) -> datetime:
        return MAIL_TIME + self.mail_age + timedelta(seconds=self.clock() - self.start)

    def _timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            try:
                return call(*args, **kwargs)
            finally:
                self.call_ends.append((name, self.clock()))

        return timed

    def run(self, *records: Any) -> list[str]:
        response = self.processor.process({"Records": list(records)})
        return [item["itemIdentifier"] for item in response["batchItemFailures"]]

    def counted(self) -> dict[str, dict[str, int]]:
        """EMF values by Reason ("" for the line without one)."""
        result = {}
        for line in self.emf.getvalue().splitlines():
            document = json.loads(line)
            names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            result[document.get("Reason", "")] = {n: document[n] for n in names if document[n]}
        return result


def record(sqs_id: str = "sqs-1", **fields: Any) -> dict[str, Any]:
    return sqs_record(notification(**fields), message_id=sqs_id)


def throttle_always(rig: Lambda) -> None:
    def send_bounce(**_: Any) -> dict[str, Any]:
        rig.clock.sleep(SES_ATTEMPT_S)
        raise client_error("Throttling", 400, "SendBounce", "Maximum sending rate exceeded.")

    rig.ses.send_bounce = rig._timed("send_bounce", send_bounce)  # type: ignore[method-assign]


@pytest.mark.parametrize("ses_throttles", [False, True])
@pytest.mark.parametrize("deadline_s", [float(s) for s in range(8, 90, 3)])
def test_no_call_runs_past_the_lambda_timeout(deadline_s: float, ses_throttles: bool) -> None:
    # Every S3 and SQS call takes as long as its client allows, every SendBounce its full timeout.
    rig = Lambda(
        deadline_s=deadline_s, s3_call_s=AWS_CALL_BOUND_S, ses_call_s=SES_ATTEMPT_S,
        sqs_call_s=AWS_CALL_BOUND_S,
    )  # fmt: skip
    if ses_throttles:
        throttle_always(rig)
    rig.run(record("sqs-1"), record("sqs-2", message_id="second"))
    late = [(name, end - rig.deadline) for name, end in rig.call_ends if end > rig.deadline]
    assert late == []
    if deadline_s >= 5 * AWS_CALL_BOUND_S + SES_ATTEMPT_S:  # tag read, claim, send, tag: done
        assert ("send_bounce" in rig.calls, "put_object_tagging" in rig.calls) == (
            True,
            not ses_throttles,
        )


def test_the_tag_set_is_read_once_per_bounced_record() -> None:
    rig = Lambda()
    rig.s3.objects[(BUCKET, KEY)].tags = {"retention": "30d"}
    assert rig.run(record()) == []
    assert rig.calls == ["get_object_tagging", "put_object", "send_bounce", "put_object_tagging"]
    assert rig.s3.objects[(BUCKET, KEY)].tags == {
        "retention": "30d",
        BOUNCE_TAG_KEY: rig.ses.sent[0].message_id,
    }


def test_no_attempt_starts_at_the_end_of_the_send_bounce_window() -> None:
    # 0.05 sends per second (one per 20 s), the pacer's slot just taken, SES throttling: the
    # window closes before the 6th attempt could start.
    rig = Lambda(rate=0.05, mail_age=timedelta(hours=24) - timedelta(seconds=61))
    rig.processor._sender._pacer.wait()
    throttle_always(rig)
    assert rig.run(record()) == []
    starts = [end - SES_ATTEMPT_S for name, end in rig.call_ends if name == "send_bounce"]
    window_closes = rig.start + 61.0
    assert starts and max(starts) < window_closes - SEND_WINDOW_MARGIN_S
    [dead] = rig.sqs.sent
    assert (dead.attributes["reason"], dead.attributes["ses-message-id"]) == ("expired", MESSAGE_ID)
    assert dead.attributes["detail"].startswith(f"attempt {len(starts) + 1} would start ")
    assert (BUCKET, KEY + CLAIM_SUFFIX) not in rig.s3.objects  # nothing sent: claim released
    counted = rig.counted()
    assert counted[""]["MessagesExpired"] == 1
    assert counted["expired"] == {"PermanentFailures": 1}


def test_missing_credentials_release_the_claim() -> None:
    rig = Lambda()

    def no_credentials(**_: Any) -> dict[str, Any]:
        raise NoCredentialsError()

    rig.ses.send_bounce = no_credentials  # type: ignore[method-assign]
    assert rig.run(record()) == ["sqs-1"]
    assert (BUCKET, KEY + CLAIM_SUFFIX) not in rig.s3.objects
    assert rig.sqs.sent == []


@pytest.mark.parametrize(
    ("bad", "failed", "dead_bodies"),
    [(None, [""], []), (42, [""], []), ("", [""], []), ("not-a-record", [], ["not-a-record"])],
)
def test_a_record_that_is_not_an_object_never_escapes(
    bad: Any, failed: list[str], dead_bodies: list[str]
) -> None:
    rig = Lambda()
    assert rig.run(record("sqs-1"), bad) == failed
    assert len(rig.ses.sent) == 1  # the good record before it was bounced
    assert [(d.body, d.attributes["reason"]) for d in rig.sqs.sent] == [
        (body, "malformed-notification") for body in dead_bodies
    ]
    if dead_bodies:
        assert rig.sqs.sent[0].attributes["detail"] == (
            "SQS record: expected a JSON object, got str"
        )


def test_a_record_of_another_type_leaves_the_rest_of_a_short_batch_alone() -> None:
    rig = Lambda(deadline_s=1.0)
    assert rig.run(None, record("sqs-2")) == ["", "sqs-2"]
    assert rig.calls == []
