"""Synth-time checks of BounceProcessor props; each returns the problems it found as messages."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import aws_cdk as cdk

MAX_RECIPIENTS = 100
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+", re.IGNORECASE)
_LOCAL_PART = re.compile(r"[^@\s\"(),:;<>\[\]\\]{1,64}")
_IDENTITY_ARN = re.compile(r"arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:identity/[^\s/]+")
_METRICS_NAMESPACE = re.compile(r"[A-Za-z0-9._/#: -]{1,255}")


def is_domain(value: str) -> bool:
    """True for a domain name such as `example.com` (at most 253 characters)."""
    return len(value) <= 253 and _DOMAIN.fullmatch(value) is not None


def is_address(value: str) -> bool:
    """True for an address `local@domain` with a valid domain."""
    local, at, domain = value.rpartition("@")
    return bool(at) and _LOCAL_PART.fullmatch(local) is not None and is_domain(domain)


def recipient_problems(recipients: Sequence[str]) -> list[str]:
    """Problems of the receipt rule's recipients (domains or addresses, at most 100, no repeats)."""
    if not recipients:
        return ["recipients must not be empty: give at least one domain or address"]
    problems: list[str] = []
    if len(recipients) > MAX_RECIPIENTS:
        problems.append(
            f"recipients must hold at most {MAX_RECIPIENTS} entries (the SES limit per receipt "
            f"rule), got {len(recipients)}"
        )
    seen: set[str] = set()
    for index, recipient in enumerate(recipients):
        if cdk.Token.is_unresolved(recipient):
            continue
        if not (is_domain(recipient) or is_address(recipient)):
            problems.append(
                f"recipients[{index}] must be a domain (example.com) or an address "
                f"(user@example.com), got {recipient!r}"
            )
        elif recipient.lower() in seen:
            problems.append(
                f"recipients[{index}] repeats {recipient!r} (recipients compare case-insensitively)"
            )
        seen.add(recipient.lower())
    return problems


def address_problems(name: str, value: str) -> list[str]:
    """Problems of a prop that must hold one address."""
    if cdk.Token.is_unresolved(value) or is_address(value):
        return []
    return [f"{name} must be an address (user@example.com), got {value!r}"]


def identity_arn_problems(name: str, value: str) -> list[str]:
    """Problems of a prop that must hold an SES identity ARN."""
    if cdk.Token.is_unresolved(value) or _IDENTITY_ARN.fullmatch(value):
        return []
    return [
        f"{name} must be an SES identity ARN "
        f"(arn:<partition>:ses:<region>:<account>:identity/<address or domain>), got {value!r}"
    ]


def recipient_identity_arn_problems(arns: Mapping[str, str]) -> list[str]:
    """Problems of the recipient -> identity ARN mapping used for sending authorization."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for recipient, arn in arns.items():
        if (earlier := seen.get(recipient.lower())) is not None:
            problems.append(
                f"recipient_identity_arns keys must differ ignoring case: {earlier!r} and "
                f"{recipient!r}"
            )
        seen[recipient.lower()] = recipient
        if not cdk.Token.is_unresolved(recipient) and not (
            is_domain(recipient) or is_address(recipient)
        ):
            problems.append(
                f"recipient_identity_arns keys must be domains or addresses, got {recipient!r}"
            )
        problems.extend(identity_arn_problems(f"recipient_identity_arns[{recipient!r}]", arn))
    return problems


def number_problems(
    name: str,
    value: float,
    *,
    minimum: float,
    maximum: float,
    exclusive_minimum: bool = False,
    integer: bool = False,
) -> list[str]:
    """Problems of a number that must lie in a range (and be an integer if asked)."""
    if cdk.Token.is_unresolved(value):
        return []
    above_minimum = value > minimum if exclusive_minimum else value >= minimum
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    if above_minimum and value <= maximum and (is_integer or not integer):
        return []
    kind = "an integer " if integer else ""
    low = f"> {minimum:g}" if exclusive_minimum else f">= {minimum:g}"
    return [f"{name} must be {kind}{low} and <= {maximum:g}, got {value!r}"]


def duration_problems(
    name: str,
    value: cdk.Duration,
    *,
    minimum_seconds: float,
    maximum_seconds: float,
    exclusive_maximum: bool = False,
    why: str = "",
) -> list[str]:
    """Problems of a duration that must lie in a range of seconds."""
    seconds = value.to_seconds()
    if cdk.Token.is_unresolved(seconds):
        return []
    below_maximum = seconds < maximum_seconds if exclusive_maximum else seconds <= maximum_seconds
    if seconds >= minimum_seconds and below_maximum:
        return []
    high = f"< {maximum_seconds:g}" if exclusive_maximum else f"<= {maximum_seconds:g}"
    return [
        f"{name} must be >= {minimum_seconds:g} and {high} seconds{why}, "
        f"got {value.to_human_string()}"
    ]


def whole_days_problems(name: str, value: cdk.Duration) -> list[str]:
    """Problems of a duration that S3 lifecycle rules need as a whole number of days >= 1."""
    hours = value.to_hours()
    if cdk.Token.is_unresolved(hours) or (hours >= 24 and hours % 24 == 0):
        return []
    return [f"{name} must be a whole number of days >= 1, got {value.to_human_string()}"]


def object_key_prefix_problems(prefix: str) -> list[str]:
    """Problems of the S3 key prefix (it also scopes IAM, so no wildcards)."""
    if cdk.Token.is_unresolved(prefix):
        return []
    if prefix.startswith("/") or "*" in prefix or "?" in prefix or len(prefix) > 900:
        return [
            "object_key_prefix must be at most 900 characters, must not start with '/' and "
            f"must not contain '*' or '?', got {prefix!r}"
        ]
    return []


def metrics_namespace_problems(namespace: str) -> list[str]:
    """Problems of a CloudWatch namespace for custom metrics."""
    if cdk.Token.is_unresolved(namespace):
        return []
    if _METRICS_NAMESPACE.fullmatch(namespace) and not namespace.startswith("AWS/"):
        return []
    return [
        "metrics_namespace must be 1-255 characters of letters, digits, space and . _ / # : - "
        f"and must not start with 'AWS/', got {namespace!r}"
    ]
