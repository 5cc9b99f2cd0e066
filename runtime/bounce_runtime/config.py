"""The runtime's settings, read from the environment variables named in ``contract``."""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from bounce_runtime.contract import (
    DEFAULT_LOG_LEVEL,
    DEFAULT_METRICS_NAMESPACE,
    DEFAULT_SEND_BUDGET_ID,
    DEFAULT_SEND_CLAIM_TTL_SECONDS,
    DEFAULT_SEND_RATE_PER_SECOND,
    ENV_BOUNCE_POLICY_FILE,
    ENV_BOUNCE_SENDER,
    ENV_BOUNCE_SENDER_ARN,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_LOG_LEVEL,
    ENV_MAIL_BUCKET,
    ENV_MAX_RECEIVE_COUNT,
    ENV_METRICS_NAMESPACE,
    ENV_OBJECT_KEY_PREFIX,
    ENV_OWNED_RECIPIENTS,
    ENV_RECIPIENT_IDENTITY_ARNS,
    ENV_SEND_BUDGET_ID,
    ENV_SEND_BUDGET_TABLE,
    ENV_SEND_CLAIM_TTL_SECONDS,
    ENV_SEND_RATE_PER_SECOND,
    IDENTITY_ARN_FORM,
    LOG_LEVELS,
    MAX_RECEIVE_COUNT_LIMIT,
    SEND_BUDGET_ID_FORM,
    SEND_BUDGET_ID_PATTERN,
    UNKNOWN_FUNCTION_NAME,
    function_name,
    identity_arn_problem,
    recipient_key,
)
from bounce_runtime.core.addresses import (
    BARE_ADDRESS_FORM,
    bare_address_problem,
    is_mail_domain,
)
from bounce_runtime.core.ownership import OWNED_RECIPIENT_FORM, OwnedRecipients
from bounce_runtime.core.policy import BouncePolicy, default_policy
from bounce_runtime.errors import ConfigError, PolicyError

if TYPE_CHECKING:
    from bounce_runtime.core.dsn import SenderIdentity


def _required(environ: Mapping[str, str], name: str, allowed: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is {environ.get(name)!r}: {allowed} is required")
    return value


def _bare_address(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is {environ.get(name)!r}: {BARE_ADDRESS_FORM}")
    problem = bare_address_problem(value)
    if problem is not None:
        raise ConfigError(f"{name} {value!r} {problem}")
    return value


def _identity_arn(name: str, value: str) -> str:
    if identity_arn_problem(value) is not None:
        raise ConfigError(
            f"{name} has {value!r}: an SES identity ARN {IDENTITY_ARN_FORM} is required"
        )
    return value


def _recipient_arns(environ: Mapping[str, str]) -> dict[str, str]:
    name = ENV_RECIPIENT_IDENTITY_ARNS
    raw = environ.get(name, "").strip() or "{}"
    allowed = "a JSON object mapping recipient domains or addresses to SES identity ARNs"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is {raw!r}: {allowed} is required ({error})") from error
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and key and isinstance(arn, str) for key, arn in data.items()
    ):
        raise ConfigError(f"{name} is {raw!r}: {allowed} is required")
    for key in data:
        if not (is_mail_domain(key) or bare_address_problem(key) is None):
            raise ConfigError(
                f"{name} has the key {key!r}, which is neither a domain nor a bare address: "
                f"{allowed} is required"
            )
    return {recipient_key(key): _identity_arn(name, arn) for key, arn in data.items()}


def _positive_number(environ: Mapping[str, str], name: str, default: float, unit: str) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:  # ASCII digits only: float() would also read Arabic-Indic or fullwidth ones
        number = float(raw) if raw.isascii() else math.nan
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} is {raw!r}: a number of {unit} > 0 is required")
    return number


def _queue_url(environ: Mapping[str, str]) -> str:
    name = ENV_DEAD_LETTER_QUEUE_URL
    allowed = "an SQS queue URL (https://...)"
    value = _required(environ, name, allowed)
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} is {value!r}: {allowed} is required")
    return value


def _owned_recipients(environ: Mapping[str, str]) -> OwnedRecipients | None:
    """The receipt rule's recipients; None (no ownership check: local use only) when unset."""
    name = ENV_OWNED_RECIPIENTS
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    allowed = f"a non-empty JSON list of recipients, each {OWNED_RECIPIENT_FORM}"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"{name} is {raw!r}: {allowed} is required ({error})") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{name} is {raw!r}: {allowed} is required")
    try:
        return OwnedRecipients.of(data)
    except ValueError as error:
        raise ConfigError(f"{name} has {error}: {allowed} is required") from None


def _mail_bucket(environ: Mapping[str, str]) -> str | None:
    """The bucket the receipt rule writes to; None (no mail object check) when unset."""
    return environ.get(ENV_MAIL_BUCKET, "").strip() or None


def _send_budget_id(environ: Mapping[str, str]) -> str:
    import re

    raw = environ.get(ENV_SEND_BUDGET_ID, "").strip()
    if not raw:
        return DEFAULT_SEND_BUDGET_ID
    if not re.fullmatch(SEND_BUDGET_ID_PATTERN, raw, re.ASCII):
        raise ConfigError(f"{ENV_SEND_BUDGET_ID} is {raw!r}: {SEND_BUDGET_ID_FORM} is required")
    return raw


def _log_level(environ: Mapping[str, str]) -> str:
    raw = environ.get(ENV_LOG_LEVEL, "").strip()
    if not raw:
        return DEFAULT_LOG_LEVEL
    if raw.upper() not in LOG_LEVELS:
        raise ConfigError(f"{ENV_LOG_LEVEL} is {raw!r}: one of {', '.join(LOG_LEVELS)} is required")
    return raw.upper()


def _max_receive_count(environ: Mapping[str, str]) -> int | None:
    """The main queue's maxReceiveCount (SQS allows 1-1000); None (SQS alone dead-letters what
    keeps failing, without a reason) when unset."""
    raw = environ.get(ENV_MAX_RECEIVE_COUNT, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_RECEIVE_COUNT_LIMIT):
        raise ConfigError(
            f"{ENV_MAX_RECEIVE_COUNT} is {raw!r}: a whole number from 1 to "
            f"{MAX_RECEIVE_COUNT_LIMIT} (the queue's maxReceiveCount) is required"
        )
    return int(raw)


def load_policy(path: str) -> BouncePolicy:
    """Read a policy file, compiled (what the construct ships: loaded fast) or as written
    (checked in full); a missing, unreadable or invalid file is a ``ConfigError``."""
    from bounce_runtime.core.policy_json import load_policy_text

    try:
        with open(path, encoding="utf-8") as policy_file:
            text = policy_file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{ENV_BOUNCE_POLICY_FILE} {path!r} cannot be read: {error}") from error
    try:
        return load_policy_text(text)
    except PolicyError as error:
        raise ConfigError(
            f"{ENV_BOUNCE_POLICY_FILE} {path!r} is not a valid policy: {error}"
        ) from error


class RuntimeConfig(NamedTuple):
    """Everything the runtime needs from its environment."""

    bounce_sender: str
    dead_letter_queue_url: str
    policy: BouncePolicy
    bounce_sender_arn: str | None = None
    recipient_identity_arns: Mapping[str, str] = MappingProxyType({})
    send_rate_per_second: float = DEFAULT_SEND_RATE_PER_SECOND
    # The shared send budget (DynamoDB table and item key); None: only the container's own
    # pacer spaces the calls, which holds for one container alone (local use, tests).
    send_budget_table: str | None = None
    send_budget_id: str = DEFAULT_SEND_BUDGET_ID
    send_claim_ttl_seconds: float = DEFAULT_SEND_CLAIM_TTL_SECONDS
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    function_name: str = UNKNOWN_FUNCTION_NAME
    log_level: str = DEFAULT_LOG_LEVEL
    # What this processor owns (the construct always sets them; unset: no check, local use only).
    owned_recipients: OwnedRecipients | None = None
    mail_bucket: str | None = None
    object_key_prefix: str = ""
    # The main queue's maxReceiveCount: a record failing on that receive is dead-lettered with
    # its reason (None: SQS moves it without one).
    max_receive_count: int | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "RuntimeConfig":
        """Read and check every variable; raise ``ConfigError`` naming the first bad one."""
        sender_arn = environ.get(ENV_BOUNCE_SENDER_ARN, "").strip()
        policy_file = environ.get(ENV_BOUNCE_POLICY_FILE, "").strip()
        return cls(
            bounce_sender=_bare_address(environ, ENV_BOUNCE_SENDER),
            dead_letter_queue_url=_queue_url(environ),
            policy=load_policy(policy_file) if policy_file else default_policy(),
            bounce_sender_arn=_identity_arn(ENV_BOUNCE_SENDER_ARN, sender_arn)
            if sender_arn
            else None,
            recipient_identity_arns=_recipient_arns(environ),
            send_rate_per_second=_positive_number(
                environ,
                ENV_SEND_RATE_PER_SECOND,
                DEFAULT_SEND_RATE_PER_SECOND,
                "calls per second",
            ),
            send_budget_table=environ.get(ENV_SEND_BUDGET_TABLE, "").strip() or None,
            send_budget_id=_send_budget_id(environ),
            send_claim_ttl_seconds=_positive_number(
                environ, ENV_SEND_CLAIM_TTL_SECONDS, DEFAULT_SEND_CLAIM_TTL_SECONDS, "seconds"
            ),
            metrics_namespace=environ.get(ENV_METRICS_NAMESPACE, "").strip()
            or DEFAULT_METRICS_NAMESPACE,
            function_name=function_name(environ),
            log_level=_log_level(environ),
            owned_recipients=_owned_recipients(environ),
            mail_bucket=_mail_bucket(environ),
            object_key_prefix=environ.get(ENV_OBJECT_KEY_PREFIX, ""),
            max_receive_count=_max_receive_count(environ),
        )

    def sender_identity(self) -> "SenderIdentity":
        """The identities that SendBounce requests are built with."""
        from bounce_runtime.core.dsn import SenderIdentity

        return SenderIdentity(
            bounce_sender=self.bounce_sender,
            bounce_sender_arn=self.bounce_sender_arn,
            recipient_arns=dict(self.recipient_identity_arns),
        )
