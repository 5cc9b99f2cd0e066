"""1,000 messages through the real BatchProcessor under simulated SQS semantics and random faults.

Every message must end exactly once: bounced once, accepted, suppressed with a reason, or
dead-lettered with a reason. Some invocations are killed between SendBounce's answer and the tag
(a crash): the send claim makes the redelivered copy end on the dead-letter queue as
``ses-outcome-unknown`` instead of bouncing a second time. Nothing sleeps: the clock, the Lambda's
remaining time and every wait are fake, so the run takes seconds.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bounce_runtime.adapters.dead_letter_queue import DeadLetterQueue
from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.adapters.ses_sender import BounceSender
from bounce_runtime.adapters.telemetry import BatchMetrics, JsonLogger
from bounce_runtime.config import RuntimeConfig
from bounce_runtime.contract import BOUNCE_TAG_KEY
from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.processor import BatchProcessor
from support.events import notification, sns_envelope
from support.sqs_sim import (
    CRASH,
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
RATE_PER_SECOND = 1.0
MAX_RECEIVES = 5
INVOCATION_SECONDS = 60.0  # the function timeout, and so the send claim's TTL
OUTCOME_UNKNOWN = ("dead-lettered", "ses-outcome-unknown")
REDRIVEN = ("dead-lettered", "max-receives-exceeded")
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
FAULTS = {
    "SendBounce": (
        Fault("Throttling", 400, 0.08),
        Fault("ServiceUnavailable", 503, 0.04),
        Fault("InternalFailure", 500, 0.02),
        Fault("", 0, 0.04),
    ),
    "GetObjectTagging": (Fault("InternalError", 500, 0.05), Fault("", 0, 0.02)),
    "PutObjectTagging": (Fault("SlowDown", 503, 0.05), Fault(CRASH, 0, 0.03)),
    "PutObject": (Fault("ConditionalRequestConflict", 409, 0.03), Fault("SlowDown", 503, 0.03)),
    "DeleteObject": (Fault("InternalError", 500, 0.2),),
    "GetObject": (Fault("InternalError", 500, 0.08), Fault("", 0, 0.02)),
    "SendMessage": (Fault("ServiceUnavailable", 503, 0.15), Fault("", 0, 0.05)),
}
SHORT_INVOCATION_RATE = 0.2
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
        ("dead-lettered", "max-receives-exceeded"),
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
        """Dead letters of a later copy of a message bounced once: a copy that found the send
        claim but no tag (the invocation died before tagging, or tagging failed) ends on the
        dead-letter queue for an operator to check, never in a second bounce."""
        if self.bounces != 1:
            return []
        return sorted(set(self.dead_letter_reasons) & {OUTCOME_UNKNOWN[1], REDRIVEN[1]})

    def ends(self) -> list[tuple[str, str]]:
        """Every distinct end this message reached (exactly one is required)."""
        found: list[tuple[str, str]] = []
        if self.bounces:
            found.extend([("bounced", "matched-rule")] * self.bounces)
        reasons = set(self.dead_letter_reasons) - set(self.notices())
        found.extend(("dead-lettered", reason) for reason in sorted(reasons))
        if "suppress" in self.logged:
            found.extend(("suppressed", reason) for reason in sorted(self.suppress_reasons))
        if "accept" in self.logged:
            found.append(("accepted", ""))
        return found


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
    faults = FaultInjector(random.Random(rng.getrandbits(32)), FAULTS)

    def wall_clock() -> datetime:
        return START + timedelta(seconds=clock() - started)

    ses = FakeSes(clock, faults, verified={"example.com"}, rate_per_second=RATE_PER_SECOND)
    s3 = FakeS3(clock, faults, wall_clock=wall_clock)
    dlq = FakeSqsClient(clock, faults)
    scenarios = generate(random.Random(rng.getrandbits(32)), sqs, s3)

    config = RuntimeConfig(
        bounce_sender=BOUNCE_SENDER,
        dead_letter_queue_url=DLQ_URL,
        policy=BouncePolicy.from_dict(POLICY),
        send_rate_per_second=RATE_PER_SECOND,
        send_claim_ttl_seconds=INVOCATION_SECONDS,
        function_name="bounce-fault-injection",
    )
    sender = BounceSender(
        ses,
        Pacer(RATE_PER_SECOND, clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
        rng=random.Random(rng.getrandbits(32)),
        after_send_reserve_s=2 * FAKE_CALL_BOUND_S,
    )
    mail_store = MailStore(s3)
    dead_letter = DeadLetterQueue(dlq, DLQ_URL)
    logs = io.StringIO()
    invocation_rng = random.Random(rng.getrandbits(32))
    short_invocations = 0
    throttles_in_crashes = 0  # a killed invocation never writes its metrics

    def invoke(records: list[dict[str, Any]]) -> Any:
        nonlocal short_invocations, throttles_in_crashes
        budget = INVOCATION_SECONDS
        if invocation_rng.random() < SHORT_INVOCATION_RATE:
            budget = invocation_rng.uniform(7.5, 12.0)  # around the 7.5 s safety margin
            short_invocations += 1
        deadline = clock() + budget
        processor = BatchProcessor(
            config,
            mail_store=mail_store,
            sender=sender,
            dead_letter=dead_letter,
            metrics=BatchMetrics("CdkSesBounce", "bounce", now=wall_clock, stream=logs),
            logger=JsonLogger(logs, now=wall_clock),
            now=wall_clock,
            remaining_ms=lambda: int((deadline - clock()) * 1000),
            sleep=clock.sleep,
            aws_call_bound_s=FAKE_CALL_BOUND_S,
        )
        throttles_before = faults.injected.get("SendBounce:Throttling", 0)
        try:
            return processor.process({"Records": records})
        except InvocationCrashed:
            throttles_in_crashes += faults.injected.get("SendBounce:Throttling", 0)
            throttles_in_crashes -= throttles_before
            raise

    sqs.drain(invoke)
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    log_lines = [line for line in lines if "_aws" not in line]
    metrics = Counter[str]()
    for line in lines:
        if "_aws" in line and "Reason" not in line:
            metrics.update({k: v for k, v in line.items() if isinstance(v, int) and k != "_aws"})
    return {
        "scenarios": scenarios,
        "outcomes": observe(scenarios, ses, dlq, sqs, log_lines),
        "sqs": sqs,
        "ses": ses,
        "s3": s3,
        "dlq": dlq,
        "faults": faults,
        "metrics": metrics,
        "short_invocations": short_invocations,
        "throttles_in_crashes": throttles_in_crashes,
        "fake_seconds": clock() - started,
        "log_lines": log_lines,
    }


@pytest.fixture(scope="module")
def simulation() -> dict[str, Any]:
    return run_simulation()


def test_every_message_ends_exactly_once(
    simulation: dict[str, Any], harness_report: Callable[[str], None]
) -> None:
    scenarios: list[Scenario] = simulation["scenarios"]
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    sqs: SqsSimulator = simulation["sqs"]
    tally: Counter[str] = Counter()
    problems: list[str] = []
    unlucky_redrives = 0
    unknown_outcomes = 0
    for scenario in scenarios:
        ends = outcomes[scenario.ses_id].ends()
        if len(ends) != 1:
            label = "lost" if not ends else "ended more than once"
            problems.append(f"{scenario.ses_id} ({scenario.kind}): {label}: {ends}")
            continue
        state, reason = ends[0]
        notices = outcomes[scenario.ses_id].notices()
        label = f"{state} ({reason})" if reason else state
        tally[label + "".join(f", then a copy dead-lettered ({n})" for n in notices)] += 1
        if (state, reason) == REDRIVEN and scenario.expected != REDRIVEN:
            unlucky_redrives += 1  # any message may run out of receives under enough faults
        elif (state, reason) == OUTCOME_UNKNOWN and scenario.expected[0] == "bounced":
            # SES answered 5xx (it may have sent), or did not send but the claim could not be
            # released: either way the outcome is unknown to the runtime, never resent.
            unknown_outcomes += 1
        elif (state, reason) != scenario.expected:
            problems.append(
                f"{scenario.ses_id} ({scenario.kind}): ended {state} ({reason}),"
                f" expected {scenario.expected}"
            )

    bounces = sum(o.bounces for o in outcomes.values())
    dead_letter_copies = sum(
        len(o.dead_letter_reasons) - 1 for o in outcomes.values() if o.dead_letter_reasons
    )
    duplicate_bounces = sum(o.bounces - 1 for o in outcomes.values() if o.bounces > 1)
    lost = sum(1 for s in scenarios if not outcomes[s.ses_id].ends())
    crashes = simulation["faults"].injected["PutObjectTagging:InvocationCrashed"]
    harness_report(
        f"fault injection: {MESSAGES} messages, seed {SEED}, {sqs.stats.invocations} invocations"
        f" ({simulation['short_invocations']} short of time, {crashes} killed between SendBounce"
        " and the tag), "
        f"{simulation['fake_seconds']:.0f} simulated seconds"
    )
    harness_report(
        f"  queue: {sqs.stats.deliveries} deliveries, {sqs.stats.redeliveries} redeliveries,"
        f" {sqs.stats.stale_copies} stale duplicate copies,"
        f" {sqs.stats.reported_failures} reported failures, {len(sqs.redriven)} redriven"
    )
    injected = simulation["faults"].injected
    harness_report(
        "  faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(injected.items()))
    )
    metrics = simulation["metrics"]
    harness_report(
        "  runtime metrics: "
        + ", ".join(f"{name} {metrics[name]}" for name in sorted(metrics) if metrics[name])
    )
    for label, count in sorted(tally.items()):
        harness_report(f"  {count:5d}  {label}")
    harness_report(
        f"  lost {lost}, duplicate bounces {duplicate_bounces}, SendBounce calls {bounces},"
        f" redriven by bad luck {unlucky_redrives}, dead-lettered as ses-outcome-unknown (a 5xx"
        f" answer, or a claim that could not be released) {unknown_outcomes}, extra dead-letter"
        " copies of a"
        f" message delivered twice {dead_letter_copies}"
    )

    assert sqs.pending == 0
    assert problems == []
    assert lost == 0
    assert duplicate_bounces == 0
    assert sum(tally.values()) == MESSAGES


def test_the_faults_and_duplicates_actually_happened(simulation: dict[str, Any]) -> None:
    """The run exercised what it claims to: every fault kind, retries, stale copies, deadlines."""
    injected = simulation["faults"].injected
    assert set(injected) == {
        f"{op}:{fault.code or 'EndpointConnectionError'}"
        for op, faults in FAULTS.items()
        for fault in faults
    }
    sqs: SqsSimulator = simulation["sqs"]
    assert sqs.stats.stale_copies > 0
    assert sqs.stats.redeliveries > 0
    assert simulation["short_invocations"] > 0
    lines = simulation["log_lines"]
    messages = Counter(line["message"] for line in lines)
    assert messages["time is short: leaving the rest of the batch for redelivery"] > 0
    assert messages["already bounced: skipped"] > 0
    assert messages["duplicate in batch: skipped"] > 0
    assert messages["dead-lettered"] > 0
    assert messages["dead-letter send failed: left for redelivery"] > 0
    assert simulation["metrics"]["SendBounceThrottled"] == (
        injected["SendBounce:Throttling"] - simulation["throttles_in_crashes"]
    )
    outcomes: dict[str, Outcome] = simulation["outcomes"]
    # Window (a): a bounce sent by an invocation that died before tagging. Its redelivered copy
    # found the claim and was dead-lettered, so it was not bounced again.
    crashed_after_send = [o for o in outcomes.values() if OUTCOME_UNKNOWN[1] in o.notices()]
    assert len(crashed_after_send) >= injected["PutObjectTagging:InvocationCrashed"] > 0
    assert messages["send claim not released: a redelivery will be dead-lettered"] > 0


def test_bounces_are_valid_requests_and_objects_carry_the_tag(simulation: dict[str, Any]) -> None:
    ses: FakeSes = simulation["ses"]
    s3: FakeS3 = simulation["s3"]
    tagging_failures = simulation["metrics"]["TaggingFailures"]
    untagged = 0
    for bounce in ses.sent:
        assert bounce.request["BounceSender"] == BOUNCE_SENDER
        recipients = [r["Recipient"] for r in bounce.request["BouncedRecipientInfoList"]]
        assert all(r in (RETIRED, "old-sales@example.com") for r in recipients)
        stored = s3.objects[(BUCKET, PREFIX + bounce.request["OriginalMessageId"])]
        if stored.tags.get(BOUNCE_TAG_KEY) != bounce.message_id:
            untagged += 1
    crashes = simulation["faults"].injected["PutObjectTagging:InvocationCrashed"]
    assert untagged == tagging_failures + crashes
    gaps = [b.time - a.time for a, b in zip(ses.sent, ses.sent[1:], strict=False)]
    assert min(gaps) >= 1 / RATE_PER_SECOND - 1e-9
