"""The runtime's settings, read from the environment contract in docs/design.md."""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from bounce_runtime.dsn import SenderIdentity
from bounce_runtime.errors import ConfigError, PolicyError
from bounce_runtime.policy import BouncePolicy, default_policy

DEFAULT_METRICS_NAMESPACE = "CdkSesBounce"
DEFAULT_SEND_RATE_PER_SECOND = 1.0
DEFAULT_SEND_CLAIM_TTL_SECONDS = 900.0  # Lambda's longest timeout
UNKNOWN_FUNCTION_NAME = "unknown"


def _required(environ: Mapping[str, str], name: str, allowed: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is {environ.get(name)!r}: {allowed} is required")
    return value


def _email_address(environ: Mapping[str, str], name: str) -> str:
    allowed = "an email address such as bounces@example.com"
    value = _required(environ, name, allowed)
    local, at, domain = value.rpartition("@")
    if not (local and at and domain) or any(c.isspace() or c in "<>" for c in value):
        raise ConfigError(f"{name} is {value!r}: {allowed} is required")
    return value


def _identity_arn(name: str, value: str) -> str:
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "ses" or "identity/" not in parts[5]:
        raise ConfigError(
            f"{name} has {value!r}: an SES identity ARN "
            "arn:<partition>:ses:<region>:<account>:identity/<address or domain> is required"
        )
    return value


def _recipient_arns(environ: Mapping[str, str]) -> dict[str, str]:
    name = "RECIPIENT_IDENTITY_ARNS"
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
    return {key.lower(): _identity_arn(name, arn) for key, arn in data.items()}


def _positive_number(environ: Mapping[str, str], name: str, default: float, unit: str) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} is {raw!r}: a number of {unit} > 0 is required")
    return number


def _queue_url(environ: Mapping[str, str]) -> str:
    name = "DEAD_LETTER_QUEUE_URL"
    allowed = "an SQS queue URL (https://...)"
    value = _required(environ, name, allowed)
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} is {value!r}: {allowed} is required")
    return value


def load_policy(path: str) -> BouncePolicy:
    """Read a policy JSON file; a missing, unreadable or invalid file is a ``ConfigError``."""
    try:
        with open(path, encoding="utf-8") as policy_file:
            text = policy_file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"BOUNCE_POLICY_FILE {path!r} cannot be read: {error}") from error
    try:
        return BouncePolicy.from_json(text)
    except PolicyError as error:
        raise ConfigError(f"BOUNCE_POLICY_FILE {path!r} is not a valid policy: {error}") from error


class RuntimeConfig(NamedTuple):
    """Everything the runtime needs from its environment."""

    bounce_sender: str
    dead_letter_queue_url: str
    policy: BouncePolicy
    bounce_sender_arn: str | None = None
    recipient_identity_arns: Mapping[str, str] = MappingProxyType({})
    send_rate_per_second: float = DEFAULT_SEND_RATE_PER_SECOND
    send_claim_ttl_seconds: float = DEFAULT_SEND_CLAIM_TTL_SECONDS
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    function_name: str = UNKNOWN_FUNCTION_NAME

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "RuntimeConfig":
        """Read and check every variable; raise ``ConfigError`` naming the first bad one."""
        sender_arn = environ.get("BOUNCE_SENDER_ARN", "").strip()
        policy_file = environ.get("BOUNCE_POLICY_FILE", "").strip()
        return cls(
            bounce_sender=_email_address(environ, "BOUNCE_SENDER"),
            dead_letter_queue_url=_queue_url(environ),
            policy=load_policy(policy_file) if policy_file else default_policy(),
            bounce_sender_arn=_identity_arn("BOUNCE_SENDER_ARN", sender_arn)
            if sender_arn
            else None,
            recipient_identity_arns=_recipient_arns(environ),
            send_rate_per_second=_positive_number(
                environ, "SEND_RATE_PER_SECOND", DEFAULT_SEND_RATE_PER_SECOND, "calls per second"
            ),
            send_claim_ttl_seconds=_positive_number(
                environ, "SEND_CLAIM_TTL_SECONDS", DEFAULT_SEND_CLAIM_TTL_SECONDS, "seconds"
            ),
            metrics_namespace=environ.get("METRICS_NAMESPACE", "").strip()
            or DEFAULT_METRICS_NAMESPACE,
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
            or UNKNOWN_FUNCTION_NAME,
        )

    def sender_identity(self) -> SenderIdentity:
        """The identities that SendBounce requests are built with."""
        return SenderIdentity(
            bounce_sender=self.bounce_sender,
            bounce_sender_arn=self.bounce_sender_arn,
            recipient_arns=dict(self.recipient_identity_arns),
        )
