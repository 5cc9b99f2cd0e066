"""The contract between the BounceProcessor construct and the bounce runtime, in one place.

Everything that both sides must agree on is defined here once: the environment variables the
construct sets and the runtime reads, their defaults, the names the runtime writes into AWS (S3
keys and tags, dead-letter attributes, metric names and dimensions), the reason codes, and the time
bounds from which the construct derives its minimum timeout.

This module is pure: standard library only, no boto3/botocore, no I/O, no clock. The construct
imports it at synth time; ``tests/docs`` checks the documentation's tables against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Environment variables (construct -> runtime) ----------------------------------------------------

ENV_BOUNCE_SENDER: Final = "BOUNCE_SENDER"
ENV_BOUNCE_SENDER_ARN: Final = "BOUNCE_SENDER_ARN"
ENV_RECIPIENT_IDENTITY_ARNS: Final = "RECIPIENT_IDENTITY_ARNS"
ENV_BOUNCE_POLICY_FILE: Final = "BOUNCE_POLICY_FILE"
ENV_DEAD_LETTER_QUEUE_URL: Final = "DEAD_LETTER_QUEUE_URL"
ENV_SEND_RATE_PER_SECOND: Final = "SEND_RATE_PER_SECOND"
ENV_SEND_CLAIM_TTL_SECONDS: Final = "SEND_CLAIM_TTL_SECONDS"
ENV_METRICS_NAMESPACE: Final = "METRICS_NAMESPACE"
ENV_LOG_LEVEL: Final = "LOG_LEVEL"
# What this processor owns: the receipt rule's recipients (JSON list of domains and addresses),
# and the bucket and key prefix its S3 action writes to. The runtime acts on nothing else.
ENV_OWNED_RECIPIENTS: Final = "OWNED_RECIPIENTS"
ENV_MAIL_BUCKET: Final = "MAIL_BUCKET"
ENV_OBJECT_KEY_PREFIX: Final = "OBJECT_KEY_PREFIX"
# The shared SendBounce budget of the account and region (a DynamoDB table and its item's key).
ENV_SEND_BUDGET_TABLE: Final = "SEND_BUDGET_TABLE"
ENV_SEND_BUDGET_ID: Final = "SEND_BUDGET_ID"
# The main queue's maxReceiveCount: on that receive a record that fails again is dead-lettered
# with its reason (retries-exhausted:<cause>) instead of being moved by SQS without one.
ENV_MAX_RECEIVE_COUNT: Final = "MAX_RECEIVE_COUNT"
MAX_RECEIVE_COUNT_LIMIT: Final = 1000  # SQS RedrivePolicy maxReceiveCount: 1 to 1,000
# Set by Lambda itself; the runtime's FunctionName metric dimension.
ENV_FUNCTION_NAME: Final = "AWS_LAMBDA_FUNCTION_NAME"

# Defaults the runtime applies when a variable is absent (the construct always sets them).
DEFAULT_METRICS_NAMESPACE: Final = "CdkSesBounce"
DEFAULT_SEND_RATE_PER_SECOND: Final = 1.0
DEFAULT_SEND_CLAIM_TTL_SECONDS: Final = 900.0  # Lambda's longest timeout
DEFAULT_LOG_LEVEL: Final = "INFO"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
UNKNOWN_FUNCTION_NAME: Final = "unknown"

# The policy ships in a Lambda layer (environment variables are capped at 4 KB), mounted at /opt.
LAYER_MOUNT: Final = "/opt"
POLICY_LAYER_PATH: Final = "cdk-ses-bounce/policy.json"
POLICY_FILE: Final = f"{LAYER_MOUNT}/{POLICY_LAYER_PATH}"
RUNTIME_PACKAGE: Final = "bounce_runtime"
HANDLER: Final = f"{RUNTIME_PACKAGE}.handler.handler"
# The operator's tools in the package (`cdk-ses-bounce ...`): nothing the handler imports reaches
# them, so the Lambda asset leaves them out.
OPERATOR_ONLY_PARTS: Final = ("cli", "operations", "__main__.py")

# Names the runtime writes into AWS --------------------------------------------------------------

# After a successful SendBounce the mail object is tagged <BOUNCE_TAG_KEY>=<bounce MessageId>.
BOUNCE_TAG_KEY: Final = "ses-bounce-message-id"
# Before SendBounce the runtime creates <mail object key><CLAIM_SUFFIX> with a conditional write.
CLAIM_SUFFIX: Final = ".bounce-claim"

# Message attributes of a dead letter.
DLQ_ATTR_REASON: Final = "reason"
DLQ_ATTR_DETAIL: Final = "detail"
DLQ_ATTR_SES_MESSAGE_ID: Final = "ses-message-id"
DLQ_ATTR_SQS_MESSAGE_ID: Final = "sqs-message-id"
DLQ_DETAIL_MAX_CHARS: Final = 1000

# Construct IDs inside a BounceProcessor that operators' tools look up by path ------------------
# A resource's CloudFormation metadata "aws:cdk:path" is "<stack>/<processor>/<id>/Resource".

QUEUE_CONSTRUCT_ID: Final = "Queue"
DEAD_LETTER_QUEUE_CONSTRUCT_ID: Final = "DeadLetterQueue"

# Metrics (CloudWatch EMF) ------------------------------------------------------------------------

DIMENSION_FUNCTION_NAME: Final = "FunctionName"
DIMENSION_REASON: Final = "Reason"

METRIC_BOUNCES_SENT: Final = "BouncesSent"
METRIC_RECIPIENTS_BOUNCED: Final = "RecipientsBounced"
METRIC_RECIPIENTS_ACCEPTED: Final = "RecipientsAccepted"
METRIC_RECIPIENTS_SUPPRESSED: Final = "RecipientsSuppressed"
METRIC_MESSAGES_EXPIRED: Final = "MessagesExpired"
METRIC_SEND_BOUNCE_THROTTLED: Final = "SendBounceThrottled"
METRIC_PERMANENT_FAILURES: Final = "PermanentFailures"
METRIC_DUPLICATES_SKIPPED: Final = "DuplicatesSkipped"
METRIC_TAGGING_FAILURES: Final = "TaggingFailures"
# Records left for redelivery because the shared send budget could not be reached (nothing sent).
METRIC_SEND_BUDGET_UNAVAILABLE: Final = "SendBudgetUnavailable"
# Records left for redelivery because the send budget had no slot within the record's time (the
# schedule is full further ahead than the invocation can wait: nothing taken, nothing sent).
METRIC_SEND_SLOT_UNAVAILABLE: Final = "SendSlotUnavailable"
# Budget items rewritten because their schedule lay further ahead than any taker can book (a
# manipulated item, a host clock far ahead) or their rate or margin were not valid numbers.
METRIC_SEND_BUDGET_REPAIRED: Final = "SendBudgetRepaired"
# Milliseconds the batch's SendBounce attempts waited for their pacing slots (a sum per batch).
METRIC_SEND_SLOT_WAIT: Final = "SendSlotWait"
# SES's setup notification (published when the receipt rule is saved): acknowledged, not mail.
METRIC_SETUP_NOTIFICATIONS: Final = "SetupNotifications"
# The EMF unit of each metric: Count, but for those named here.
DEFAULT_METRIC_UNIT: Final = "Count"
METRIC_UNITS: Final = {METRIC_SEND_SLOT_WAIT: "Milliseconds"}

# Written every batch (zero when nothing happened), so alarms see a data point per invocation.
STANDARD_METRICS: Final = (
    METRIC_BOUNCES_SENT,
    METRIC_RECIPIENTS_BOUNCED,
    METRIC_RECIPIENTS_ACCEPTED,
    METRIC_RECIPIENTS_SUPPRESSED,
    METRIC_MESSAGES_EXPIRED,
    METRIC_SEND_BOUNCE_THROTTLED,
    METRIC_PERMANENT_FAILURES,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_TAGGING_FAILURES,
    METRIC_SEND_BUDGET_UNAVAILABLE,
    METRIC_SEND_SLOT_UNAVAILABLE,
    METRIC_SEND_BUDGET_REPAIRED,
    METRIC_SEND_SLOT_WAIT,
    METRIC_SETUP_NOTIFICATIONS,
)
# Also written per Reason (dimensions FunctionName, Reason).
METRICS_BY_REASON: Final = (
    METRIC_RECIPIENTS_BOUNCED,
    METRIC_RECIPIENTS_ACCEPTED,
    METRIC_RECIPIENTS_SUPPRESSED,
    METRIC_PERMANENT_FAILURES,
)

# Reason codes ------------------------------------------------------------------------------------
# A reason is kebab-case; a few carry a ":<detail>" suffix (e.g. "ses-rejected:MessageRejected").

# Why a recipient is bounced or accepted.
REASON_MATCHED_RULE: Final = "matched-rule"
REASON_DEFAULT_RULE: Final = "default-rule"
# Why a bounce is suppressed (anti-backscatter guards); a policy's suppress action adds its own.
REASON_POLICY: Final = "policy"
REASON_NULL_SENDER: Final = "null-sender"
REASON_DAEMON_SENDER: Final = "daemon-sender"
REASON_VIRUS_VERDICT: Final = "virus-verdict"
REASON_SPAM_VERDICT: Final = "spam-verdict"
REASON_FAILED_AUTHENTICATION: Final = "failed-authentication"  # + ":spf" | ":dkim" | ":dmarc"
# An automatic reply: Auto-Submitted other than "no" (RFC 3834), X-Autoreply, X-Autorespond or
# Precedence: auto_reply.
REASON_AUTO_SUBMITTED: Final = "auto-submitted"
# The sender asked for no non-delivery report: X-Auto-Response-Suppress with All, DR or NDR.
REASON_NO_NDR_REQUESTED: Final = "no-ndr-requested"
REASON_LIST_TRAFFIC: Final = "list-traffic"
# A header guard is on, SES truncated the headers, and the stored message's header block does not
# end within HEADER_BLOCK_MAX_BYTES: its guard headers cannot all be seen, so it is not bounced.
REASON_HEADER_BLOCK_TOO_LARGE: Final = "header-block-too-large"
# A header guard is on, SES truncated the headers, and a line of the stored message's header block
# (before the empty line that ends it) is neither a header field (RFC 5322 3.6.8 / 4.5) nor a
# folded continuation: what follows it cannot be trusted to be read as a mail reader would, so it
# is not bounced.
REASON_HEADER_BLOCK_UNREADABLE: Final = "header-block-unreadable"
# No verdict the policy accepts authenticates the envelope sender (the bounce's destination).
REASON_UNAUTHENTICATED_SENDER: Final = "unauthenticated-sender"
# The recipient is not one this processor's receipt rule matches (OWNED_RECIPIENTS): never bounced.
REASON_NOT_OWNED: Final = "not-owned"
# Why a record goes to the dead-letter queue.
REASON_EXPIRED: Final = "expired"
REASON_MALFORMED_NOTIFICATION: Final = "malformed-notification"
REASON_INVALID_REQUEST: Final = "invalid-request"
REASON_INVALID_CONFIG: Final = "invalid-config"
REASON_MAIL_OBJECT_MISSING: Final = "mail-object-missing"
REASON_OUTCOME_UNKNOWN: Final = "ses-outcome-unknown"
REASON_SES_REJECTED: Final = "ses-rejected"  # + ":<SES error code or HTTP status>"
# An unexpected error after the send claim, before SendBounce was called: the claim is released.
REASON_FAILED_BEFORE_SEND: Final = "failed-before-send"
# The notification names a mail object outside this processor's bucket and prefix: never read.
REASON_FOREIGN_MAIL_OBJECT: Final = "foreign-mail-object"
# A record that failed (for a retry reason below, or an AWS error such as AccessDenied) on its
# last receive (MAX_RECEIVE_COUNT): dead-lettered as "retries-exhausted:<the last cause>".
REASON_RETRIES_EXHAUSTED: Final = "retries-exhausted"
# Why a record is left for SQS to redeliver (logged, not dead-lettered).
REASON_SEND_CLAIM_HELD: Final = "send-claim-held"
REASON_SES_THROTTLED: Final = "ses-throttled"
REASON_SES_CONNECTION: Final = "ses-connection"
REASON_DEADLINE: Final = "deadline"
# The shared send budget could not be reached: nothing was sent (never sent unpaced).
REASON_SEND_BUDGET_UNAVAILABLE: Final = "send-budget-unavailable"
# Bad input to an operator command (the CLI's exit status 1; never a record's reason).
REASON_INVALID_INPUT: Final = "invalid-input"

DEAD_LETTER_REASONS: Final = (
    REASON_EXPIRED,
    REASON_MALFORMED_NOTIFICATION,
    REASON_INVALID_REQUEST,
    REASON_MAIL_OBJECT_MISSING,
    REASON_OUTCOME_UNKNOWN,
    REASON_SES_REJECTED,
    REASON_FAILED_BEFORE_SEND,
    REASON_FOREIGN_MAIL_OBJECT,
    REASON_RETRIES_EXHAUSTED,
)
RETRY_REASONS: Final = (
    REASON_SEND_CLAIM_HELD,
    REASON_SES_THROTTLED,
    REASON_SES_CONNECTION,
    REASON_DEADLINE,
    REASON_SEND_BUDGET_UNAVAILABLE,
)

# Time bounds (nothing runs past the Lambda timeout) ----------------------------------------------

# The SES client: botocore retries off; one SendBounce attempt takes at most connect + read.
SES_CONNECT_TIMEOUT_S: Final = 2.0
SES_READ_TIMEOUT_S: Final = 4.0
SEND_ATTEMPT_TIMEOUT_S: Final = SES_CONNECT_TIMEOUT_S + SES_READ_TIMEOUT_S
# The S3 and SQS clients: two attempts with short timeouts. botocore's standard retry mode waits
# at most 1 s before its retry, so one S3 or SQS call takes at most AWS_CALL_BOUND_S.
AWS_TOTAL_MAX_ATTEMPTS: Final = 2
AWS_CONNECT_TIMEOUT_S: Final = 2.0
AWS_READ_TIMEOUT_S: Final = 3.0
AWS_RETRY_BACKOFF_MAX_S: Final = 1.0
AWS_CALL_BOUND_S: Final = (
    AWS_TOTAL_MAX_ATTEMPTS * (AWS_CONNECT_TIMEOUT_S + AWS_READ_TIMEOUT_S)
    + (AWS_TOTAL_MAX_ATTEMPTS - 1) * AWS_RETRY_BACKOFF_MAX_S
)
# Lambda time kept after a SendBounce attempt for what follows it: PutObjectTagging and one retry
# of it after a success; or releasing the claim and a dead-letter send after a failure.
AFTER_SEND_RESERVE_S: Final = 2 * AWS_CALL_BOUND_S
# Stop taking new records when less than this is left (at the least).
MIN_RECORD_MARGIN_S: Final = 5.0
# The 24-hour SendBounce window (in seconds), and how close to its end no attempt starts.
SEND_BOUNCE_WINDOW_S: Final = 24 * 3600
# SES accepts SendBounce at most once per second per account and region, with no burst.
SEND_BOUNCE_MAX_RATE_PER_SECOND: Final = 1.0
SEND_WINDOW_MARGIN_S: Final = 10.0


# The stored message's header block, read when SES truncated the notification's headers and a
# header guard is on: ONE ranged GetObject of the first HEADER_BLOCK_MAX_BYTES, read in pieces of
# HEADER_READ_CHUNK_BYTES and closed at the empty line that ends the block (so the per-record time
# margin counts one S3 call for it). A block that does not end within the cap is not bounced
# (REASON_HEADER_BLOCK_TOO_LARGE). The cap is 32 times sendmail's default limit on all header
# fields together (MaxHeadersLength, 32,768 bytes); a real header block is a few kilobytes.
HEADER_BLOCK_MAX_BYTES: Final = 1024 * 1024
HEADER_READ_CHUNK_BYTES: Final = 64 * 1024


def pre_send_s3_calls(*, needs_object_size: bool, reads_headers: bool) -> int:
    """The most S3 calls a record makes before SendBounce: HeadObject when the policy matches on
    size, one GetObject when a guard reads headers (the header block, at most
    ``HEADER_BLOCK_MAX_BYTES``), GetObjectTagging, and the send claim."""
    return int(needs_object_size) + int(reads_headers) + 2


def record_time_margin_seconds(
    *,
    needs_object_size: bool,
    reads_headers: bool,
    call_bound_s: float = AWS_CALL_BOUND_S,
    send_attempt_s: float = SEND_ATTEMPT_TIMEOUT_S,
) -> float:
    """Lambda time a record needs before it starts: its pre-send S3 calls plus one SendBounce
    attempt (39 s with the default policy, 50 s with a size rule). The runtime leaves the rest of
    a batch for redelivery when less remains; the construct's minimum timeout is above it.
    (``call_bound_s`` and ``send_attempt_s`` differ from the defaults only in tests that simulate
    faster clients.)"""
    calls = pre_send_s3_calls(needs_object_size=needs_object_size, reads_headers=reads_headers)
    return max(MIN_RECORD_MARGIN_S, calls * call_bound_s + send_attempt_s)


# Send budget (one DynamoDB item per account and region; see adapters/send_budget.py) -----------

# The budget table's partition key (a string: the budget id) and the item's attribute holding the
# next free slot (a number: seconds since the epoch, wall clock).
SEND_BUDGET_KEY_ATTRIBUTE: Final = "budget_id"
SEND_BUDGET_NEXT_FREE_ATTRIBUTE: Final = "next_free_s"
# The rate (calls per second) and margin (seconds) the item's schedule is spaced by: stored on the
# item, so takers configured with other values adopt the slower spacing instead of mixing gaps.
SEND_BUDGET_RATE_ATTRIBUTE: Final = "rate_per_second"
SEND_BUDGET_MARGIN_ATTRIBUTE: Final = "margin_s"
# The item key a budget uses unless told otherwise, and the grammar of budget ids.
DEFAULT_SEND_BUDGET_ID: Final = "ses-send-bounce"
SEND_BUDGET_ID_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
SEND_BUDGET_ID_FORM: Final = (
    "1 to 128 characters: letters, digits, '.', '_', ':' and '-', starting with a letter or digit"
)
# The highest rate a budget accepts (calls per second); SendBounce allows 1.
MAX_SEND_RATE_PER_SECOND: Final = 1000.0
# Slots are spaced 1/rate + SEND_BUDGET_MARGIN_S apart. The margin covers the clock difference
# between two hosts (each within about 1 ms of UTC with the Amazon Time Sync Service; allowed 10x
# that, since Lambda documents no figure) and the lateness a call may have past its slot: a slot
# not started within SEND_BUDGET_LATE_TOLERANCE_S of its time is given up, never used late.
SEND_BUDGET_CLOCK_SKEW_S: Final = 0.010
SEND_BUDGET_LATE_TOLERANCE_S: Final = 0.010
SEND_BUDGET_MARGIN_S: Final = SEND_BUDGET_CLOCK_SKEW_S + SEND_BUDGET_LATE_TOLERANCE_S
# A slot starts at least this long after it is taken, so that the answer of the conditional write
# (a few ms in-region) normally arrives before the slot and the call is not late.
SEND_BUDGET_LEAD_S: Final = 0.010
# Conditional writes one take may make (lost races and retried errors together), and the longest
# pause between them (jittered), before the budget counts as unavailable.
SEND_BUDGET_MAX_ATTEMPTS: Final = 8
SEND_BUDGET_RETRY_MAX_DELAY_S: Final = 0.050
# Conditional writes one take may make in all (errors, lost races, repairs, rate changes).
SEND_BUDGET_MAX_WRITES: Final = 32
# No taker books a slot further ahead than this (Lambda's longest timeout: a slot is never taken
# for after the invocation that takes it ends). A next free slot further ahead than this plus one
# spacing and 60 s (for clocks) is no legitimate schedule (a manipulated item, a host whose clock
# is far ahead): it is rewritten, conditionally on its exact value, and counted
# (METRIC_SEND_BUDGET_REPAIRED).
SEND_BUDGET_MAX_AHEAD_S: Final = 900.0
# The largest margin an item may carry (a larger one is not a valid item and is repaired).
SEND_BUDGET_MAX_MARGIN_S: Final = 1.0
# The DynamoDB client of the budget: no botocore retries (the budget retries), short timeouts. A
# write whose answer is lost may have taken a slot: that slot is wasted, never shared.
SEND_BUDGET_CONNECT_TIMEOUT_S: Final = 1.0
SEND_BUDGET_READ_TIMEOUT_S: Final = 1.0
# The reason and metric of a record left for redelivery when the budget cannot be reached are
# REASON_SEND_BUDGET_UNAVAILABLE and METRIC_SEND_BUDGET_UNAVAILABLE (above, with the others).


def send_budget_spacing_seconds(rate_per_second: float) -> float:
    """Seconds between two slots of a budget at ``rate_per_second``: ``1/rate + margin``."""
    return 1.0 / rate_per_second + SEND_BUDGET_MARGIN_S


def batch_sending_seconds(*, batch_size: int, containers: int, rate_per_second: float) -> float:
    """How long one container needs to send a full batch when ``containers`` containers (of
    every processor sharing the budget) take the budget's slots in turn: one slot every
    ``containers`` spacings, so ``batch_size x containers x spacing``."""
    return batch_size * containers * send_budget_spacing_seconds(rate_per_second)


def largest_fitting_batch(
    *, containers: int, rate_per_second: float, record_margin_s: float, timeout_s: float
) -> int:
    """The largest batch size whose sending time plus the runtime's per-record margin (39-50 s,
    ``record_time_margin_seconds``) fits in ``timeout_s`` (0: not even one record)."""
    per_record = containers * send_budget_spacing_seconds(rate_per_second)
    return max(0, int((timeout_s - record_margin_s) // per_record))


# Addresses and identities ------------------------------------------------------------------------

IDENTITY_ARN_FORM: Final = "arn:<partition>:ses:<region>:<account>:identity/<address or domain>"
# ASCII only; IAM compares ARNs case-sensitively and SES identity names are lowercase domains.
# The identity is an address or a domain: at most 320 characters (64 + '@' + 255).
IDENTITY_ARN_PATTERN: Final = r"arn:aws[a-z-]*:ses:[a-z0-9-]+:[0-9]{12}:identity/[!-.0-~]{1,320}"


def identity_arn_problem(value: str) -> str | None:
    """Why ``value`` is not an SES identity ARN, or None."""
    import re

    if re.fullmatch(IDENTITY_ARN_PATTERN, value, re.ASCII):
        return None
    return f"is not an SES identity ARN {IDENTITY_ARN_FORM}"


def function_name(environ: Mapping[str, str]) -> str:
    """The Lambda function's name from the environment Lambda sets, or ``unknown`` outside it."""
    return environ.get(ENV_FUNCTION_NAME, "").strip() or UNKNOWN_FUNCTION_NAME


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def recipient_key(recipient: str) -> str:
    """The key a recipient domain or address is looked up by (SES matches recipients
    case-insensitively): A-Z lowercased, nothing else. ``str.lower`` would fold lookalikes too
    (the Kelvin sign U+212A becomes k), letting a non-ASCII name pass for an ASCII one."""
    return recipient.lower() if recipient.isascii() else recipient.translate(_ASCII_LOWER)
