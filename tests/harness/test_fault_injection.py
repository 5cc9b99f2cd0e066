"""1,000 messages through the real BatchProcessor under simulated SQS semantics and random faults.

Every message must end exactly once: bounced once, accepted, suppressed with a reason, or
dead-lettered with a reason. A bounce counts when SES SENT it (``FakeSes.sent``), whatever the
runtime was told. The faults, each seeded and counted per kind in the printed tally: SES errors,
throttling and lost connections; a 5xx after SES has sent; an answer that never comes (a read
timeout after the request went out, with or without SES having sent; a connect timeout before);
invocations killed after the claim, during SendBounce (before or after SES sent), between
SendBounce and the tag, and after a dead-letter send (before SQS deletes the record); a second
invocation processing the same message at the same time (interleaved before or after the claim);
restarted containers (fresh clients and pacer); S3 and KMS access denied; S3's clock ahead of or
behind the function's. Nothing sleeps: the clock, the Lambda's remaining time and every wait are
fake, so the run takes seconds.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import (
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    SES_CONNECT_TIMEOUT_S,
    SES_READ_TIMEOUT_S,
)
from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.processor import BatchProcessor
from support.events import notification, sns_envelope
from support.fault_rig import Container, build_container, concurrent_copy
from support.sqs_sim import (
    CONNECT_TIMEOUT,
    CRASH,
    INTERLEAVE,
    READ_TIMEOUT,
    FakeClock,
    FakeS3,
    FakeSes,
    FakeSqsClient,
    Fault,
    FaultInjector,
    InvocationCrashed,
    SqsSimulator,
)

SEED = 20240501
MESSAGES = 1000
BUCKET = "inbound-mail"
PREFIX = "inbound/"
BOUNCE_SENDER = "bounces@example.com"
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111111111111/bounce-dlq"
START = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
RATE_PER_SECOND = 1.0  # the account's SendBounce rate, enforced by the fake SES
MAX_CONCURRENCY = 2  # the event source's maximum concurrency: each container gets its share
MAX_RECEIVES = 5
INVOCATION_SECONDS = 60.0  # the function timeout, and so the send claim's TTL
OUTCOME_UNKNOWN = ("dead-lettered", "ses-outcome-unknown")
REDRIVEN = ("dead-lettered", "max-receives-exceeded")


def ran_out_of_receives(reason: str) -> bool:
    """A copy that failed on its last receive: dead-lettered by the runtime with the cause, or
    (when even that failed, or time ran out) moved by SQS without a reason."""
    return reason == REDRIVEN[1] or reason.startswith("retries-exhausted:")


POLICY = {
    "version": 1,
    "rules": [
        {
            "name": "retired",
            "match": {"recipients": ["retired.example.com", "old-sales@example.com"]},
            "action": {"type": "bounce", "bounce_type": "DoesNotExist"},
        },
        {
            "name": "hold",
            "match": {"recipients": ["legal.example.com"]},
            "action": {"type": "suppress", "reason": "legal-hold"},
        },
    ],
    "default": {"type": "accept"},
}
# S3 answers 403 AccessDenied both when IAM or the bucket policy refuses the call and when the
# object's KMS key refuses the function (kms:Decrypt to read, kms:GenerateDataKey to write).
KMS_DENIED = "User is not authorized to perform: kms:Decrypt on the object's KMS key"
KMS_WRITE_DENIED = "User is not authorized to perform: kms:GenerateDataKey on the bucket's KMS key"
FAULTS = {
    "SendBounce": (
        Fault("Throttling", 400, 0.08),
        Fault("ServiceUnavailable", 503, 0.03),  # SES answered 503 without sending
        Fault("InternalFailure", 500, 0.02, after=True, kind="5xx-after-send"),
        Fault("", 0, 0.03),
        Fault(CONNECT_TIMEOUT, 0, 0.02, kind="connect-timeout", seconds=SES_CONNECT_TIMEOUT_S),
        Fault(READ_TIMEOUT, 0, 0.01, kind="read-timeout-unsent", seconds=SES_READ_TIMEOUT_S),
        Fault(READ_TIMEOUT, 0, 0.02, after=True, kind="read-timeout-after-send",
              seconds=SES_READ_TIMEOUT_S),
        Fault(CRASH, 0, 0.01, kind="killed-before-ses-saw-it"),
        Fault(CRASH, 0, 0.01, after=True, kind="killed-after-ses-sent"),
    ),
    "GetObjectTagging": (
        Fault("InternalError", 500, 0.05),
        Fault("", 0, 0.02),
        Fault("AccessDenied", 403, 0.02, kind="s3-access-denied"),
    ),
    "PutObjectTagging": (
        Fault("SlowDown", 503, 0.05),
        Fault(CRASH, 0, 0.03),  # killed between SendBounce's answer and the tag
        Fault("AccessDenied", 403, 0.02, kind="s3-access-denied"),
    ),
    "PutObject": (  # the send claim
        Fault(INTERLEAVE, 0, 0.02, kind="concurrent-before-claim"),
        Fault("ConditionalRequestConflict", 409, 0.03),
        Fault("SlowDown", 503, 0.03),
        Fault("AccessDenied", 403, 0.02, kind="s3-access-denied"),
        Fault("AccessDenied", 403, 0.02, kind="kms-access-denied", message=KMS_WRITE_DENIED),
        Fault(INTERLEAVE, 0, 0.02, after=True, kind="concurrent-after-claim"),
        Fault(CRASH, 0, 0.02, after=True, kind="killed-after-claim"),
    ),
    "DeleteObject": (  # the claim's release
        Fault("InternalError", 500, 0.2),
        Fault("AccessDenied", 403, 0.2, kind="s3-access-denied"),
    ),
    "GetObject": (
        Fault("InternalError", 500, 0.08),
        Fault("", 0, 0.02),
        Fault("AccessDenied", 403, 0.02, kind="s3-access-denied"),
        Fault("AccessDenied", 403, 0.02, kind="kms-access-denied", message=KMS_DENIED),
    ),
    "HeadObject": (Fault("AccessDenied", 403, 0.02, kind="s3-access-denied"),),
    "SendMessage": (
        Fault("ServiceUnavailable", 503, 0.15),
        Fault("", 0, 0.05),
        Fault(CRASH, 0, 0.03, after=True, kind="killed-after-dead-letter"),
        Fault(READ_TIMEOUT, 0, 0.02, after=True, kind="dead-letter-answer-lost", seconds=3.0),
    ),
}  # fmt: skip
SHORT_INVOCATION_RATE = 0.2
RESTART_RATE = 0.05  # a container replaced by a fresh one (besides every killed invocation)
SKEW_RATE = 0.3  # invocations that see S3's clock off the function's
MAX_SKEW_S = 300.0
# The fake S3 and SQS calls take 0.01 s: the runtime's time bounds for them, scaled to the fakes.
FAKE_CALL_BOUND_S = 0.5
STALE_COPY_RATE = 0.05
SNS_DUPLICATE_RATE = 0.03
ENVELOPE_RATE = 0.3


@dataclass
class Scenario:
    """One generated message and the end it must reach: (state, reason)."""

    kind: str
    ses_id: str
    expected: tuple[str, str]
    body: str
    sqs_ids: list[str] = field(default_factory=list)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


RECENT = stamp(START - timedelta(hours=1))
RETIRED = "someone@retired.example.com"


def _notification(ses_id: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "timestamp": RECENT,
        "bucket": BUCKET,
        "object_key": PREFIX + ses_id,
        **overrides,
    }
    return notification(message_id=ses_id, **fields)


# kind -> (weight, builder of the notification (or raw body), expected end)
KINDS: dict[str, tuple[int, Callable[[str], Any], tuple[str, str]]] = {
    "bounce": (34, lambda i: _notification(i, recipients=[RETIRED]), ("bounced", "matched-rule")),
    "bounce-mixed": (
        6,
        lambda i: _notification(i, recipients=["old-sales@example.com", "team@example.com"]),
        ("bounced", "matched-rule"),
    ),
    "bounce-truncated-headers": (
        4,
        lambda i: _notification(i, recipients=[RETIRED], headers_truncated=True),
        ("bounced", "matched-rule"),
    ),
    "accept": (14, lambda i: _notification(i, recipients=["team@example.com"]), ("accepted", "")),
    "suppress-policy": (
        6,
        lambda i: _notification(i, recipients=["counsel@legal.example.com"]),
        ("suppressed", "legal-hold"),
    ),
    "null-sender": (
        4,
        lambda i: _notification(i, recipients=[RETIRED], source=""),
        ("suppressed", "null-sender"),
    ),
    "auto-submitted": (
        4,
        lambda i: _notification(
            i, recipients=[RETIRED], extra_headers=[("Auto-Submitted", "auto-replied")]
        ),
        ("suppressed", "auto-submitted"),
    ),
    "auto-submitted-truncated": (
        3,
        lambda i: _notification(i, recipients=[RETIRED], headers_truncated=True),
        ("suppressed", "auto-submitted"),
    ),
    "list": (
        3,
        lambda i: _notification(
            i, recipients=[RETIRED], extra_headers=[("List-Id", "<news.lists.example.net>")]
        ),
        ("suppressed", "list-traffic"),
    ),
    "spam": (
        3,
        lambda i: _notification(i, recipients=[RETIRED], spam="FAIL"),
        ("suppressed", "spam-verdict"),
    ),
    "dkim-fail": (
        3,
        lambda i: _notification(i, recipients=[RETIRED], dkim="FAIL"),
        ("suppressed", "failed-authentication:dkim"),
    ),
    "expired": (
        4,
        lambda i: notification(
            message_id=i,
            timestamp=stamp(START - timedelta(hours=25)),
            recipients=[RETIRED],
            bucket=BUCKET,
            object_key=PREFIX + i,
        ),
        ("dead-lettered", "expired"),
    ),
    "object-missing": (
        3,
        lambda i: _notification(i, recipients=[RETIRED], object_key=PREFIX + "gone/" + i),
        ("dead-lettered", "mail-object-missing"),
    ),
    "poison-object": (
        2,
        lambda i: _notification(i, recipients=[RETIRED]),
        # Every read is denied: on its last receive the runtime dead-letters it with the cause.
        ("dead-lettered", "retries-exhausted:AccessDenied"),
    ),
    "malformed-json": (2, lambda i: "{not json " + i, ("dead-lettered", "malformed-notification")),
    "malformed-shape": (
        3,
        lambda i: {"notificationType": "Received", "mail": {"messageId": i}},
        ("dead-lettered", "malformed-notification"),
    ),
}


def raw_mail(scenario_kind: str) -> bytes:
    """The stored message; the truncated-header kinds hide their deciding header in here."""
    extra = (
        "Auto-Submitted: auto-replied\r\n" if scenario_kind == "auto-submitted-truncated" else ""
    )
    return (
        "From: Sender Name <sender@example.net>\r\nTo: someone@retired.example.com\r\n"
        f"Subject: hello\r\n{extra}X-Padding: {'p' * 200}\r\n\r\nBody text.\r\n"
    ).encode()


def generate(rng: random.Random, sqs: SqsSimulator, s3: FakeS3) -> list[Scenario]:
    """Enqueue MESSAGES scenarios drawn by weight; store their mail objects."""
    names = list(KINDS)
    weights = [KINDS[name][0] for name in names]
    scenarios: list[Scenario] = []
    for index in range(MESSAGES):
        kind = rng.choices(names, weights)[0]
        _, build, expected = KINDS[kind]
        ses_id = f"msg{index:04d}{rng.getrandbits(64):016x}"
        built = build(ses_id)
        if isinstance(built, dict) and built.get("receipt") and rng.random() < ENVELOPE_RATE:
            built = sns_envelope(built)
        body = built if isinstance(built, str) else json.dumps(built)
        scenario = Scenario(kind, ses_id, expected, body)
        if kind != "object-missing":
            s3.put(BUCKET, PREFIX + ses_id, raw_mail(kind))
        if kind == "poison-object":
            s3.always_failing[(BUCKET, PREFIX + ses_id)] = Fault("AccessDenied", 403, 1.0)
        copies = 2 if not kind.startswith("malformed") and rng.random() < SNS_DUPLICATE_RATE else 1
        scenario.sqs_ids = [sqs.send(body) for _ in range(copies)]
        scenarios.append(scenario)
    return scenarios


@dataclass
class Outcome:
    """What the simulation shows happened to one scenario."""

    bounces: int = 0
    dead_letter_reasons: list[str] = field(default_factory=list)
    dead_letter_sqs_ids: set[str] = field(default_factory=set)
    logged: set[str] = field(default_factory=set)
    suppress_reasons: set[str] = field(default_factory=set)
    skipped_duplicates: int = 0

    def notices(self) -> list[str]:
        """Dead letters of later copies of a message that already reached its end. A copy that
        found the send claim but no tag (the invocation died or lost SES's answer before tagging,
        or tagging failed) ends on the dead-letter queue as ``ses-outcome-unknown`` for an
        operator to check, never in a second bounce; a copy that kept failing after the message
        was bounced or dead-lettered with its reason is redriven by SQS."""
        reasons = set(self.dead_letter_reasons)
        found = {OUTCOME_UNKNOWN[1]} & reasons if self.bounces else set()
        exhausted = [r for r in self.dead_letter_reasons if ran_out_of_receives(r)]
        if self.bounces or self.logged or len(reasons) > len(set(exhausted)):
            found.update(exhausted)  # another copy, or the message itself, reached an end
        elif exhausted:  # only copies that ran out: the first reasoned one is the end
            reasoned = [r for r in exhausted if r != REDRIVEN[1]]
            found.update(set(exhausted) - {(reasoned or exhausted)[0]})
        return sorted(found)

    def ends(self) -> list[tuple[str, str]]:
        """Every distinct end state this message reached (exactly one is required); a message
        that SES bounced twice has one end state, and a duplicate bounce (``bounces``)."""
        found: list[tuple[str, str]] = []
        if self.bounces:
            found.append(("bounced", "matched-rule"))
        reasons = set(self.dead_letter_reasons) - set(self.notices())
        found.extend(("dead-lettered", reason) for reason in sorted(reasons))
        if "suppress" in self.logged:
            found.extend(("suppressed", reason) for reason in sorted(self.suppress_reasons))
        if "accept" in self.logged:
            found.append(("accepted", ""))
        return found

    def label(self) -> str:
        """The end state in words, for the tally."""
        ends = self.ends()
        if not ends:
            return "LOST"
        text = " + ".join(f"{state} ({reason})" if reason else state for state, reason in ends)
        if self.bounces > 1:
            text += f" {self.bounces} TIMES"
        return text + "".join(f", then a copy dead-lettered ({n})" for n in self.notices())


def observe(
    scenarios: Iterable[Scenario],
    ses: FakeSes,
    dlq: FakeSqsClient,
    sqs: SqsSimulator,
    log_lines: Iterable[dict[str, Any]],
) -> dict[str, Outcome]:
    by_sqs_id = {sqs_id: s.ses_id for s in scenarios for sqs_id in s.sqs_ids}
    outcomes: dict[str, Outcome] = defaultdict(Outcome)
    for bounce in ses.sent:
        outcomes[bounce.request["OriginalMessageId"]].bounces += 1
    for letter in dlq.sent:
        assert letter.queue_url == DLQ_URL
        outcome = outcomes[by_sqs_id[letter.attributes["sqs-message-id"]]]
        outcome.dead_letter_reasons.append(letter.attributes["reason"])
        outcome.dead_letter_sqs_ids.add(letter.attributes["sqs-message-id"])
    for redriven in sqs.redriven:
        outcome = outcomes[by_sqs_id[redriven.message_id]]
        outcome.dead_letter_reasons.append("max-receives-exceeded")
        outcome.dead_letter_sqs_ids.add(redriven.message_id)
    for line in log_lines:
        ses_id = line.get("ses_message_id")
        if line["message"] in ("message accept", "message suppress") and ses_id:
            outcomes[ses_id].logged.add(line["outcome"])
            outcomes[ses_id].suppress_reasons.update(
                d["reason"] for d in line["recipients"] if d["decision"] == "suppress"
            )
        elif line["message"].endswith(": skipped") and ses_id:
            outcomes[ses_id].skipped_duplicates += 1
    return outcomes


def fault_subject(subject: str, by_sqs_id: dict[str, str]) -> str:
    """The SES message id a fault hit: from an S3 key, an SES message id or an SQS message id."""
    if subject in by_sqs_id:
        return by_sqs_id[subject]
    return subject.removeprefix(PREFIX).removeprefix("gone/").removesuffix(CLAIM_SUFFIX)


@dataclass
class Invocations:
    """The simulated Lambda: containers, kills and restarts, the concurrent second invocation,
    S3's clock skew, and the throttles whose metrics a killed invocation never wrote."""

    rng: random.Random
    build: Callable[[], Container]
    run: Callable[[Container, list[dict[str, Any]], float], Any]
    throttles: Callable[[], int]
    containers: dict[str, Container] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)
    short: int = 0
    skewed: Counter[str] = field(default_factory=Counter)
    lost_throttles: int = 0
    _nested_throttles: list[int] = field(default_factory=list)

    def container(self, slot: str) -> Container:
        """The container of `slot`; now and then a fresh one (a restart)."""
        if slot not in self.containers:
            self.containers[slot] = self.build()
        elif self.rng.random() < RESTART_RATE:
            self.restarts["recycled"] += 1
            self.containers[slot] = self.build()
        return self.containers[slot]

    def invoke(self, slot: str, records: list[dict[str, Any]]) -> Any:
        """One invocation in `slot`'s container; a killed one takes its container with it."""
        budget = INVOCATION_SECONDS
        if self.rng.random() < SHORT_INVOCATION_RATE:
            budget = self.rng.uniform(7.5, 12.0)  # around the 7.5 s safety margin
            self.short += 1
        container = self.container(slot)
        before = self.throttles()
        self._nested_throttles.append(0)
        try:
            return self.run(container, records, budget)
        except InvocationCrashed:
            self.restarts["after a kill"] += 1
            del self.containers[slot]
            # A killed invocation never writes its metrics (those of one nested in it are out).
            self.lost_throttles += self.throttles() - before - self._nested_throttles[-1]
            raise
        finally:
            self._nested_throttles.pop()
            if self._nested_throttles:
                self._nested_throttles[-1] += self.throttles() - before


def run_simulation() -> dict[str, Any]:
    rng = random.Random(SEED)
    clock = FakeClock()
    started = clock()
    sqs = SqsSimulator(
        clock,
        random.Random(rng.getrandbits(32)),
        max_receive_count=MAX_RECEIVES,
        stale_copy_rate=STALE_COPY_RATE,
    )
    faults = FaultInjector(random.Random(rng.getrandbits(32)), FAULTS, clock=clock)

    def wall_clock() -> datetime:
        return START + timedelta(seconds=clock() - started)

    ses = FakeSes(clock, faults, verified={"example.com"}, rate_per_second=RATE_PER_SECOND)
    s3 = FakeS3(clock, faults, wall_clock=wall_clock)
    dlq = FakeSqsClient(clock, faults)
    scenarios = generate(random.Random(rng.getrandbits(32)), sqs, s3)
    by_sqs_id = {sqs_id: s.ses_id for s in scenarios for sqs_id in s.sqs_ids}
    scenario_of = {s.ses_id: s for s in scenarios}

    config = RuntimeConfig(
        bounce_sender=BOUNCE_SENDER,
        dead_letter_queue_url=DLQ_URL,
        policy=BouncePolicy.from_dict(POLICY),
        send_rate_per_second=RATE_PER_SECOND / MAX_CONCURRENCY,
        send_claim_ttl_seconds=INVOCATION_SECONDS,
        function_name="bounce-fault-injection",
        max_receive_count=MAX_RECEIVES,  # as the construct sets it: the queue's redrive count
    )
    sender_rng = random.Random(rng.getrandbits(32))

    def build() -> Container:
        return build_container(
            clock,
            s3,
            ses,
            dlq,
            rate_per_second=config.send_rate_per_second,
            rng=random.Random(sender_rng.getrandbits(32)),
            after_send_reserve_s=2 * FAKE_CALL_BOUND_S,
        )

    logs = io.StringIO()
    invocation_rng = random.Random(rng.getrandbits(32))

    def run(container: Container, records: list[dict[str, Any]], budget: float) -> Any:
        s3.skew_s = 0.0
        if invocation_rng.random() < SKEW_RATE:
            s3.skew_s = invocation_rng.uniform(-MAX_SKEW_S, MAX_SKEW_S)
            invocations.skewed["S3 ahead" if s3.skew_s > 0 else "S3 behind"] += 1
        deadline = clock() + budget
        processor = BatchProcessor(
            config,
            mail_store=container.mail_store,
            sender=container.sender,
            dead_letter=container.dead_letter,
            metrics=BatchMetrics("CdkSesBounce", "bounce", now=wall_clock, stream=logs),
            logger=JsonLogger(logs, now=wall_clock),
            now=wall_clock,
            remaining_ms=lambda: int((deadline - clock()) * 1000),
            sleep=clock.sleep,
            aws_call_bound_s=FAKE_CALL_BOUND_S,
        )
        return processor.process({"Records": records})

    invocations = Invocations(
        invocation_rng,
        build,
        run,
        throttles=lambda: faults.injected.get("SendBounce:Throttling", 0) + ses.throttled,
    )
    nested: list[bool] = []

    def interleave(claim_key: str) -> None:
        """Another invocation (in the second container) gets a copy of the message whose claim
        is being written, and runs to its end, before or after this claim (the fake clock is
        shared, so its time also passes for the first invocation)."""
        if nested:
            return
        scenario = scenario_of[fault_subject(claim_key, by_sqs_id)]
        nested.append(True)
        try:
            concurrent_copy(
                sqs, scenario.sqs_ids, lambda records: invocations.invoke("second", records)
            )
        finally:
            nested.pop()

    faults.interleave = interleave
    sqs.drain(lambda records: invocations.invoke("first", records))
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    log_lines = [line for line in lines if "_aws" not in line]
    metrics = Counter[str]()
    for line in lines:
        if "_aws" in line and "Reason" not in line:
            metrics.update({k: v for k, v in line.items() if isinstance(v, int) and k != "_aws"})
    return {
        "scenarios": scenarios,
        "outcomes": observe(scenarios, ses, dlq, sqs, log_lines),
        "by_sqs_id": by_sqs_id,
        "sqs": sqs,
        "ses": ses,
        "s3": s3,
        "dlq": dlq,
        "faults": faults,
        "metrics": metrics,
        "invocations": invocations,
        "fake_seconds": clock() - started,
        "log_lines": log_lines,
    }


@pytest.fixture(scope="module")
def simulation() -> dict[str, Any]:
    return run_simulation()


def fault_tally(simulation: dict[str, Any]) -> dict[str, tuple[int, Counter[str]]]:
    """Per fault kind: how often it fired, and how the messages it hit ended."""
    faults: FaultInjector = simulation["faults"]
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    hit: dict[str, set[str]] = defaultdict(set)
    for event in faults.events:
        hit[event.label].add(fault_subject(event.subject, simulation["by_sqs_id"]))
    return {
        label: (count, Counter(outcomes[ses_id].label() for ses_id in hit[label]))
        for label, count in sorted(faults.injected.items())
    }


def check_ends(simulation: dict[str, Any]) -> tuple[Counter[str], list[str], Counter[str]]:
    """The tally of end states, the problems found, and the tolerated departures."""
    tally: Counter[str] = Counter()
    problems: list[str] = []
    tolerated: Counter[str] = Counter()
    for scenario in simulation["scenarios"]:
        outcome: Outcome = simulation["outcomes"][scenario.ses_id]
        ends = outcome.ends()
        tally[outcome.label()] += 1
        if len(ends) != 1:
            label = "lost" if not ends else "ended in more than one state"
            problems.append(f"{scenario.ses_id} ({scenario.kind}): {label}: {ends}")
        elif ran_out_of_receives(ends[0][1]) and scenario.expected != ends[0]:
            tolerated["out of receives by bad luck"] += 1  # any message may run out of receives
        elif ends[0] == OUTCOME_UNKNOWN and scenario.expected[0] == "bounced":
            # SES's answer was lost (or the invocation died) after the claim, or the claim could
            # not be given back: whether SES sent is unknown, so no copy may send.
            tolerated["bounce left to an operator as ses-outcome-unknown"] += 1
        elif ends[0] != scenario.expected:
            problems.append(
                f"{scenario.ses_id} ({scenario.kind}): ended {ends[0]},"
                f" expected {scenario.expected}"
            )
    return tally, problems, tolerated


def test_every_message_ends_in_exactly_one_state(
    simulation: dict[str, Any], harness_report: Callable[[str], None]
) -> None:
    scenarios: list[Scenario] = simulation["scenarios"]
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    sqs: SqsSimulator = simulation["sqs"]
    ses: FakeSes = simulation["ses"]
    invocations: Invocations = simulation["invocations"]
    tally, problems, tolerated = check_ends(simulation)
    duplicate_bounces = sum(o.bounces - 1 for o in outcomes.values() if o.bounces > 1)
    lost = sum(1 for s in scenarios if not outcomes[s.ses_id].ends())
    harness_report(
        f"fault injection: {MESSAGES} messages, seed {SEED}, {sqs.stats.invocations} invocations"
        f" ({invocations.short} short of time; containers restarted:"
        f" {dict(invocations.restarts)}; S3 clock skewed up to {MAX_SKEW_S:.0f} s:"
        f" {dict(invocations.skewed)}), {simulation['fake_seconds']:.0f} simulated seconds"
    )
    harness_report(
        f"  queue: {sqs.stats.deliveries} deliveries, {sqs.stats.redeliveries} redeliveries,"
        f" {sqs.stats.stale_copies} stale duplicate copies, {sqs.stats.concurrent_copies}"
        f" processed concurrently, {sqs.stats.reported_failures} reported failures,"
        f" {len(sqs.redriven)} redriven"
    )
    harness_report(
        f"  SES: {len(ses.arrivals)} SendBounce calls reached SES, {len(ses.sent)} sent,"
        f" {ses.throttled} over the account rate (throttled by SES itself)"
    )
    metrics = simulation["metrics"]
    harness_report(
        "  runtime metrics: "
        + ", ".join(f"{name} {metrics[name]}" for name in sorted(metrics) if metrics[name])
    )
    harness_report("  per fault kind: times injected, and how the messages it hit ended")
    for label, (count, ends) in fault_tally(simulation).items():
        harness_report(f"  {count:5d}  {label}: " + "; ".join(f"{n} {e}" for e, n in ends.items()))
    harness_report("  end states:")
    for label, count in sorted(tally.items()):
        harness_report(f"  {count:5d}  {label}")
    harness_report(
        f"  lost {lost}, duplicate bounces (SES-side) {duplicate_bounces}, "
        + ", ".join(f"{name} {n}" for name, n in sorted(tolerated.items()))
    )

    assert sqs.pending == 0
    assert problems == []
    assert sum(tally.values()) == MESSAGES


def test_no_message_is_lost(simulation: dict[str, Any]) -> None:
    sqs: SqsSimulator = simulation["sqs"]
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    assert sqs.pending == 0
    assert [s.ses_id for s in simulation["scenarios"] if not outcomes[s.ses_id].ends()] == []


def test_no_message_is_bounced_twice(simulation: dict[str, Any]) -> None:
    """Judged from what SES SENT, not from what the runtime was told."""
    sent = Counter(bounce.request["OriginalMessageId"] for bounce in simulation["ses"].sent)
    assert {ses_id: n for ses_id, n in sent.items() if n > 1} == {}


@pytest.mark.parametrize(
    "fault",
    [
        "SendBounce:5xx-after-send",
        "SendBounce:read-timeout-after-send",
        "SendBounce:read-timeout-unsent",
        "SendBounce:killed-before-ses-saw-it",
        "SendBounce:killed-after-ses-sent",
        "PutObjectTagging:InvocationCrashed",
    ],
)
def test_every_unknown_send_outcome_is_dead_lettered_with_its_reason(
    simulation: dict[str, Any], fault: str
) -> None:
    """A message whose SendBounce outcome the runtime never learned (SES's answer lost, or the
    invocation killed before it could tag) ends on the dead-letter queue as
    ``ses-outcome-unknown`` (or, out of luck, redriven by SQS), whether or not SES sent."""
    hit = {
        fault_subject(event.subject, simulation["by_sqs_id"])
        for event in simulation["faults"].events
        if event.label == fault
    }
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    silent = {
        ses_id: outcomes[ses_id].label()
        for ses_id in hit
        if not any(
            reason == OUTCOME_UNKNOWN[1] or ran_out_of_receives(reason)
            for reason in outcomes[ses_id].dead_letter_reasons
        )
    }
    assert hit
    assert silent == {}


def test_the_faults_and_duplicates_actually_happened(simulation: dict[str, Any]) -> None:
    """The run exercised what it claims to: every fault kind, retries, stale and concurrent
    copies, restarts, skew both ways, deadlines."""
    injected = simulation["faults"].injected
    assert set(injected) == {fault.label(op) for op, faults in FAULTS.items() for fault in faults}
    sqs: SqsSimulator = simulation["sqs"]
    assert sqs.stats.stale_copies > 0
    assert sqs.stats.concurrent_copies > 0
    assert sqs.stats.redeliveries > 0
    invocations: Invocations = simulation["invocations"]
    assert invocations.short > 0
    assert set(invocations.restarts) == {"recycled", "after a kill"}
    assert set(invocations.skewed) == {"S3 ahead", "S3 behind"}
    lines = simulation["log_lines"]
    messages = Counter(line["message"] for line in lines)
    assert messages["time is short: leaving the rest of the batch for redelivery"] > 0
    assert messages["already bounced: skipped"] > 0
    assert messages["duplicate in batch: skipped"] > 0
    assert messages["dead-lettered"] > 0
    assert messages["dead-letter send failed: left for redelivery"] > 0
    assert messages["send claim not released: a redelivery will be dead-lettered"] > 0
    ses: FakeSes = simulation["ses"]
    assert simulation["metrics"]["SendBounceThrottled"] == (
        injected["SendBounce:Throttling"] + ses.throttled - invocations.lost_throttles
    )
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    # A bounce sent by an invocation that died (or lost SES's answer) before tagging: its
    # redelivered copy found the claim and was dead-lettered, so it was not bounced again.
    crashed_after_send = [o for o in outcomes.values() if OUTCOME_UNKNOWN[1] in o.notices()]
    assert len(crashed_after_send) >= injected["PutObjectTagging:InvocationCrashed"] > 0


def test_bounces_are_valid_requests_and_objects_carry_the_tag(simulation: dict[str, Any]) -> None:
    ses: FakeSes = simulation["ses"]
    s3: FakeS3 = simulation["s3"]
    untagged = 0
    for bounce in ses.sent:
        assert bounce.request["BounceSender"] == BOUNCE_SENDER
        recipients = [r["Recipient"] for r in bounce.request["BouncedRecipientInfoList"]]
        assert all(r in (RETIRED, "old-sales@example.com") for r in recipients)
        stored = s3.objects[(BUCKET, PREFIX + bounce.request["OriginalMessageId"])]
        if stored.tags.get(BOUNCE_TAG_KEY) != bounce.message_id:
            untagged += 1
    # Untagged: the runtime never learned of the bounce, tagging failed, or it was killed first.
    injected = simulation["faults"].injected
    never_told = sum(
        injected.get(f"SendBounce:{kind}", 0)
        for kind in ("5xx-after-send", "read-timeout-after-send", "killed-after-ses-sent")
    )
    messages = Counter(line["message"] for line in simulation["log_lines"])
    tagging_failures = messages["bounce sent but the object could not be tagged"]
    crashes = injected["PutObjectTagging:InvocationCrashed"]
    assert untagged == tagging_failures + crashes + never_told
    gaps = [b.time - a.time for a, b in zip(ses.sent, ses.sent[1:], strict=False)]
    assert min(gaps) >= 1 / RATE_PER_SECOND - 1e-9


# Faults that leave no SendBounce outcome unknown and are transient by nature: faults before the
# call (no connection), Throttling answers, and faults of other calls whose answer (or absence)
# the runtime knows about. Excluded: anything after which SES may have sent without the runtime
# knowing (a 5xx, a lost answer, a kill after the claim), a claim that could not be given back
# (DeleteObject), and access denied (a permission does not come back by retrying).
TRANSIENT_FAULTS = frozenset(
    {
        "SendBounce:Throttling",
        "SendBounce:EndpointConnectionError",
        "SendBounce:connect-timeout",
        "GetObjectTagging:InternalError",
        "GetObjectTagging:EndpointConnectionError",
        "PutObjectTagging:SlowDown",
        "PutObject:concurrent-before-claim",
        "PutObject:ConditionalRequestConflict",
        "PutObject:SlowDown",
        "PutObject:concurrent-after-claim",
        "GetObject:InternalError",
        "GetObject:EndpointConnectionError",
        "SendMessage:ServiceUnavailable",
        "SendMessage:EndpointConnectionError",
    }
)


def test_a_message_with_transient_faults_and_receives_to_spare_is_never_dead_lettered(
    simulation: dict[str, Any],
) -> None:
    """Never lost, retried not dead-lettered: a message whose faults were all transient and none
    of whose copies reached the queue's last receive ends bounced, accepted or suppressed."""
    by_sqs_id: dict[str, str] = simulation["by_sqs_id"]
    sqs: SqsSimulator = simulation["sqs"]
    labels: dict[str, set[str]] = defaultdict(set)
    for event in simulation["faults"].events:
        labels[fault_subject(event.subject, by_sqs_id)].add(event.label)
    assert set().union(*labels.values()) >= TRANSIENT_FAULTS  # each kind fired
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    checked, wrong = 0, {}
    for scenario in simulation["scenarios"]:
        if scenario.expected[0] == "dead-lettered" or not labels[scenario.ses_id]:
            continue
        if not labels[scenario.ses_id] <= TRANSIENT_FAULTS:
            continue
        if max(sqs.most_receives.get(sqs_id, 0) for sqs_id in scenario.sqs_ids) >= MAX_RECEIVES:
            continue
        checked += 1
        ends = outcomes[scenario.ses_id].ends()
        if ends != [scenario.expected]:
            wrong[scenario.ses_id] = (
                sorted(labels[scenario.ses_id]),
                outcomes[scenario.ses_id].label(),
            )
    assert checked > 100  # the property is tested on many messages, not a few
    assert wrong == {}


def test_every_dead_letter_carries_a_reason_from_the_contract(simulation: dict[str, Any]) -> None:
    from bounce_runtime.contract import DEAD_LETTER_REASONS, RETRY_REASONS

    reasons = [letter.attributes["reason"] for letter in simulation["dlq"].sent]
    assert reasons
    unknown = set()
    for reason in reasons:
        head, _, cause = reason.partition(":")
        if head == "retries-exhausted":  # the cause: a retry reason or an AWS error code
            if not (cause in RETRY_REASONS or re.fullmatch(r"[A-Za-z]+", cause)):
                unknown.add(reason)
        elif head not in DEAD_LETTER_REASONS:
            unknown.add(reason)
    assert unknown == set()


def test_retries_are_exhausted_only_on_the_last_receive(simulation: dict[str, Any]) -> None:
    """The runtime dead-letters a retryable failure only on the receive SQS would redrive."""
    details = [
        letter.attributes["detail"]
        for letter in simulation["dlq"].sent
        if letter.attributes["reason"].startswith("retries-exhausted:")
    ]
    assert details
    early = [d for d in details if not re.match(rf"failed on receive {MAX_RECEIVES} of ", d)]
    assert early == []
