"""Synth-time checks of BounceProcessor props: `validate_props` raises one ValueError naming every
problem (unresolved tokens are skipped); `add_warnings` annotates what deploys but may surprise."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from constructs import Construct

from bounce_runtime import contract
from bounce_runtime.core.addresses import bare_address_problem, is_mail_domain
from bounce_runtime.core.policy import BouncePolicy, default_policy
from bounce_runtime.core.vocabulary import unicode_problem
from bounce_runtime.errors import PolicyError
from cdk_ses_bounce import defaults, regions, sizing
from cdk_ses_bounce.budget import ISendBounceBudget
from cdk_ses_bounce.props import Props

MAX_RECIPIENTS = 100
_METRICS_NAMESPACE = re.compile(r"[A-Za-z0-9._/#: -]{1,255}", re.ASCII)


# The runtime's grammar (bounce_runtime.core.addresses), ASCII only: one definition for both.
def is_domain(value: str) -> bool:
    """True for a domain name such as `example.com`: ASCII (IDNs as xn--), at most 253
    characters."""
    return isinstance(value, str) and is_mail_domain(value)


def is_address(value: str) -> bool:
    """True for one bare ASCII address `local@domain` (the runtime's grammar)."""
    return isinstance(value, str) and bare_address_problem(value) is None


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
        elif contract.recipient_key(recipient) in seen:
            problems.append(
                f"recipients[{index}] repeats {recipient!r} (recipients compare case-insensitively)"
            )
        else:
            seen.add(contract.recipient_key(recipient))
    return problems


def address_problems(name: str, value: str) -> list[str]:
    """Problems of a prop that must hold one bare address (the runtime's grammar)."""
    if not isinstance(value, str):
        return [f"{name} must be one bare address (user@example.com), got {value!r}"]
    if cdk.Token.is_unresolved(value):
        return []
    problem = bare_address_problem(value)
    return [] if problem is None else [f"{name} {value!r} {problem}"]


def identity_arn_problems(name: str, value: str) -> list[str]:
    """Problems of a prop that must hold an SES identity ARN."""
    if cdk.Token.is_unresolved(value) or contract.identity_arn_problem(value) is None:
        return []
    return [f"{name} must be an SES identity ARN ({contract.IDENTITY_ARN_FORM}), got {value!r}"]


def recipient_identity_arn_problems(arns: Mapping[str, str]) -> list[str]:
    """Problems of the recipient -> identity ARN mapping used for sending authorization."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for recipient, arn in arns.items():
        if (earlier := seen.get(contract.recipient_key(recipient))) is not None:
            problems.append(
                f"recipient_identity_arns keys must differ ignoring case: {earlier!r} and "
                f"{recipient!r}"
            )
        seen[contract.recipient_key(recipient)] = recipient
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


def largest_record_time_margin_seconds() -> float:
    """The runtime's per-record time margin with the policy that needs the most time."""
    return max(
        contract.record_time_margin_seconds(needs_object_size=size, reads_headers=headers)
        for size in (False, True)
        for headers in (False, True)
    )


def batching_problems(batch_size: int, window: cdk.Duration | None) -> list[str]:
    """Problems of the batching window (SQS needs one above 10 records per batch)."""
    if window is not None:
        large_batch = isinstance(batch_size, int) and batch_size > 10
        return duration_problems(
            "max_batching_window",
            window,
            minimum_seconds=1 if large_batch else 0,
            maximum_seconds=300,
            why=f" (batch_size {batch_size} is above 10)" if large_batch else "",
        )
    if isinstance(batch_size, int) and batch_size > 10:
        return [f"batch_size {batch_size} is above 10, which needs a max_batching_window"]
    return []


def bucket_problems(
    bucket: s3.IBucket | None,
    mail_retention: cdk.Duration | None,
    removal_policy: cdk.RemovalPolicy | None,
    server_access_logs_bucket: s3.IBucket | None,
) -> list[str]:
    """Problems of the bucket props (settings of a new bucket do not apply to a passed one)."""
    if bucket is None:
        return (
            whole_days_problems("mail_retention", mail_retention)
            if mail_retention is not None
            else []
        )
    settings = {
        "mail_retention": mail_retention,
        "removal_policy": removal_policy,
        "server_access_logs_bucket": server_access_logs_bucket,
    }
    conflicts = [name for name, value in settings.items() if value is not None]
    if not conflicts:
        return []
    return [
        "bucket is an existing bucket, so these settings of a new bucket do not apply: "
        + ", ".join(conflicts)
    ]


def is_imported_rule_set(rule_set: ses.IReceiptRuleSet | None) -> bool:
    """True for a rule set that this app references but does not define."""
    return rule_set is not None and not isinstance(
        rule_set.node.default_child, ses.CfnReceiptRuleSet
    )


def rule_set_problems(
    rule_set: ses.IReceiptRuleSet | None, activate: bool, activate_imported: bool
) -> list[str]:
    """Problems of activation (an imported rule set is activated only on explicit request)."""
    if activate_imported and not activate:
        return ["activate_imported_rule_set=True needs activate_rule_set=True"]
    if activate and is_imported_rule_set(rule_set) and not activate_imported:
        return [
            "activate_rule_set=True with an imported rule_set would make a rule set that "
            "this app does not own the active one; pass activate_imported_rule_set=True "
            "to confirm"
        ]
    return []


def recipient_identities_problems(recipients: Sequence[str], create: bool) -> list[str]:
    """Problems of `recipient_identities` (it creates domain identities only)."""
    if not create or any(cdk.Token.is_unresolved(r) or is_domain(r) for r in recipients):
        return []
    return [
        "recipient_identities=True creates identities for domain recipients only, and "
        "recipients holds no domain: verify the addresses (or their domains) in SES yourself"
    ]


def checked_policy(
    policy: BouncePolicy | Mapping[str, Any] | None, problems: list[str]
) -> BouncePolicy:
    """The policy, validated; a validation error is added to `problems` (default policy then)."""
    if policy is None:
        return default_policy()
    if isinstance(policy, BouncePolicy):
        return policy
    try:
        return BouncePolicy.from_dict(dict(policy))
    except PolicyError as error:
        problems.append(f"policy is invalid: {error}")
        return default_policy()


def environment_size_problems(props: Props) -> list[str]:
    """Problems of the function's environment size (Lambda allows 4 KB for all variables); the
    recipients and identity ARNs are the parts that grow with the props."""
    values = [
        props.bounce_sender,
        props.bounce_sender_arn or "",
        props.object_key_prefix,
        props.metrics_namespace,
        json.dumps([contract.recipient_key(r) for r in props.recipients], separators=(",", ":")),
        json.dumps(dict(props.recipient_identity_arns), separators=(",", ":")),
    ]
    size = defaults.OTHER_ENVIRONMENT_BYTES + sum(
        len(value.encode()) for value in values if not cdk.Token.is_unresolved(value)
    )
    if size <= defaults.LAMBDA_ENVIRONMENT_BYTES:
        return []
    return [
        f"the function's environment would take about {size} bytes, more than the "
        f"{defaults.LAMBDA_ENVIRONMENT_BYTES} that Lambda allows: recipients (passed to the "
        "runtime as OWNED_RECIPIENTS) and recipient_identity_arns are too long; split them "
        "over more than one BounceProcessor"
    ]


def rate_problems(rate_per_second: float | None, budget: object | None) -> list[str]:
    """The deprecated `rate_per_second`: refused with a budget (the rate is the budget's)."""
    if rate_per_second is None:
        return []
    if budget is not None:
        return [
            f"rate_per_second is {rate_per_second!r} and a budget is passed: the rate is the "
            "budget's; set rate_per_second on the SendBounceBudget instead"
        ]
    return number_problems(
        "rate_per_second",
        rate_per_second,
        minimum=0,
        maximum=contract.MAX_SEND_RATE_PER_SECOND,
        exclusive_minimum=True,
    )


def text_problems(props: Props) -> list[str]:
    """The string props that UTF-8 cannot encode (a lone surrogate, such as '\\udcff' from a
    byte that was not UTF-8): checked first, since jsii (every token check calls it) and the
    deployed template cannot carry them. The policy is parsed by the runtime, which names its
    own."""
    texts: list[tuple[str, object]] = [
        ("bounce_sender", props.bounce_sender),
        ("bounce_sender_arn", props.bounce_sender_arn),
        ("object_key_prefix", props.object_key_prefix),
        ("metrics_namespace", props.metrics_namespace),
        *((f"recipients[{index}]", value) for index, value in enumerate(props.recipients)),
        *(
            (f"receiving_regions[{index}]", value)
            for index, value in enumerate(props.receiving_regions or ())
        ),
    ]
    for key, arn in props.recipient_identity_arns.items():
        texts += [("recipient_identity_arns key", key), (f"recipient_identity_arns[{key!r}]", arn)]
    return [
        f"{name} {value!r} {problem}"
        for name, value in texts
        if isinstance(value, str) and (problem := unicode_problem(value)) is not None
    ]


def validate_props(scope: Construct, props: Props) -> BouncePolicy:
    """The validated bounce policy; raises one ValueError listing every problem of `props`."""
    if unencodable := text_problems(props):
        raise ValueError("; ".join(unencodable))
    largest_margin = largest_record_time_margin_seconds()
    problems = [
        *recipient_problems(props.recipients),
        *address_problems("bounce_sender", props.bounce_sender),
        *(
            identity_arn_problems("bounce_sender_arn", props.bounce_sender_arn)
            if props.bounce_sender_arn is not None
            else []
        ),
        *recipient_identity_arn_problems(props.recipient_identity_arns),
        *object_key_prefix_problems(props.object_key_prefix),
        *rate_problems(props.rate_per_second, props.budget),
        *number_problems(
            "max_concurrency",
            props.max_concurrency,
            minimum=defaults.MIN_MAX_CONCURRENCY,
            maximum=1000,
            integer=True,
        ),
        *number_problems("batch_size", props.batch_size, minimum=1, maximum=10000, integer=True),
        *number_problems(
            "max_receive_count",
            props.max_receive_count,
            minimum=1,
            maximum=contract.MAX_RECEIVE_COUNT_LIMIT,
            integer=True,
        ),
        *duration_problems(
            "function_timeout",
            props.function_timeout,
            minimum_seconds=defaults.MIN_FUNCTION_TIMEOUT_SECONDS,
            maximum_seconds=defaults.MAX_FUNCTION_TIMEOUT_SECONDS,
            why=f" (the runtime keeps up to {largest_margin:g} s of margin to finish a record)",
        ),
        *duration_problems(
            "oldest_message_age_threshold",
            props.oldest_message_age_threshold,
            minimum_seconds=60,
            maximum_seconds=contract.SEND_BOUNCE_WINDOW_S,
            exclusive_maximum=True,
            why=" (the 24-hour SendBounce window)",
        ),
        *metrics_namespace_problems(props.metrics_namespace),
        *environment_size_problems(props),
        *batching_problems(props.batch_size, props.max_batching_window),
        *bucket_problems(
            props.bucket,
            props.mail_retention,
            props.removal_policy,
            props.server_access_logs_bucket,
        ),
        *rule_set_problems(
            props.rule_set, props.activate_rule_set, props.activate_imported_rule_set
        ),
        *regions.region_problems(
            scope, cdk.Stack.of(scope).region, props.receiving_regions, props.hosted_zone
        ),
        *regions.mail_write_role_problems(cdk.Stack.of(scope).region, props.mail_write_role),
        *recipient_identities_problems(props.recipients, props.recipient_identities),
    ]
    policy = checked_policy(props.policy, problems)
    if problems:
        raise ValueError("; ".join(problems))
    return policy


def add_warnings(
    scope: Construct, props: Props, policy: BouncePolicy, budget: ISendBounceBudget
) -> None:
    """Annotate `scope` with what deploys but may not work as the user expects."""
    if props.rate_per_second is not None:
        cdk.Annotations.of(scope).add_warning_v2(
            "cdk-ses-bounce:ratePerSecondDeprecated",
            "rate_per_second on BounceProcessor is deprecated and will be removed in the next "
            "minor version: set rate_per_second on SendBounceBudget and pass budget= (one "
            "budget per account and region, shared by every processor there)",
        )
    if cdk.Token.is_unresolved(cdk.Stack.of(scope).region):
        cdk.Annotations.of(scope).add_warning_v2(
            "cdk-ses-bounce:unresolvedRegion",
            "The stack region is unresolved, so whether SES receives mail there cannot be "
            "checked, nor whether it is an opt-in region (where SES needs mail_write_role=True): "
            "give the stack a concrete region (env) to check both at synth time",
        )
    if props.alarm_action is None:
        cdk.Annotations.of(scope).add_warning_v2(
            "cdk-ses-bounce:noAlarmAction",
            "No alarm_action: the alarms on dead letters, waiting mail, function errors, "
            "throttling and permanent failures notify nobody. Pass alarm_action (for example "
            "an SNS action), or acknowledge this warning if something else watches the alarms",
        )
    if (too_long := sizing.batch_outlasts_timeout_warning(props, policy, budget)) is not None:
        cdk.Annotations.of(scope).add_warning_v2("cdk-ses-bounce:batchOutlastsTimeout", too_long)
