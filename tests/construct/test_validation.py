"""Synth-time validation of the props: exact messages, all problems reported together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns

from bounce_runtime import contract
from cdk_ses_bounce import BounceProcessor, defaults, validation

NewStack = Callable[..., cdk.Stack]
VALID: dict[str, Any] = {"recipients": ["old.example.com"], "bounce_sender": "b@example.com"}
BARE = (
    "one bare address local@domain is required (ASCII, an IDN domain as xn--; no display name, "
    "spaces or angle brackets)"
)


def build(stack: cdk.Stack, **props: Any) -> BounceProcessor:
    return BounceProcessor(stack, "Bounces", **{**VALID, **props})


def rejected(stack: cdk.Stack, **props: Any) -> str:
    with pytest.raises(ValueError) as raised:
        build(stack, **props)
    return str(raised.value)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"recipients": []},
            "recipients must not be empty: give at least one domain or address",
        ),
        (
            {"recipients": ["ok.example.com", "not a domain"]},
            "recipients[1] must be a domain (example.com) or an address (user@example.com), "
            "got 'not a domain'",
        ),
        (
            {"recipients": ["a@example.com", "A@Example.com"]},
            "recipients[1] repeats 'A@Example.com' (recipients compare case-insensitively)",
        ),
        (
            {"recipients": [f"r{i}.example.com" for i in range(101)]},
            "recipients must hold at most 100 entries (the SES limit per receipt rule), got 101",
        ),
        (
            {"bounce_sender": "example.com"},
            f"bounce_sender 'example.com' has 0 '@': {BARE}",
        ),
        (
            {"bounce_sender": "a@b@example.com"},
            f"bounce_sender 'a@b@example.com' has 2 '@': {BARE}",
        ),
        (
            {"bounce_sender": "Bounces <b@example.com>"},
            "bounce_sender 'Bounces <b@example.com>' has a display name, a space, a control "
            f"character or angle brackets: {BARE}",
        ),
        (
            {"bounce_sender": "b@mail.\u212aelvin.example"},
            f"bounce_sender 'b@mail.\u212aelvin.example' has U+212A at position 7: {BARE}",
        ),
        (
            {"bounce_sender": "j\u00f6rg@example.com"},
            f"bounce_sender 'j\u00f6rg@example.com' has U+00F6 at position 1: {BARE}",
        ),
        (
            {"recipients": ["\u212aelvin.example.com"]},
            "recipients[0] must be a domain (example.com) or an address (user@example.com), "
            "got '\u212aelvin.example.com'",
        ),
        (
            {"recipients": ["j\u00f6rg@example.com"]},
            "recipients[0] must be a domain (example.com) or an address (user@example.com), "
            "got 'j\u00f6rg@example.com'",
        ),
        (
            {"object_key_prefix": "inbound/\udcff/"},
            "object_key_prefix 'inbound/\\udcff/' contains a lone surrogate (U+DCFF), not valid "
            "Unicode",
        ),
        (
            {"policy": {"message": {"explanation": "gone\ud800"}}},
            "policy is invalid: message.explanation: 'gone\\ud800' contains a lone surrogate "
            "(U+D800), not valid Unicode",
        ),
        (
            {"policy": {"default": {"type": "bounce", "dsn": {"status": "5.\u0661.\u0661"}}}},
            "policy is invalid: default.dsn.status: '5.\u0661.\u0661' is not an RFC 3463 status: "
            "class.subject.detail, class 2, 4 or 5, e.g. 5.1.1",
        ),
        (
            {
                "policy": {
                    "default": {"type": "bounce", "dsn": {"diagnostic_code": "smtp; " + "x" * 976}}
                }
            },
            "policy is invalid: default.dsn.diagnostic_code: 'smtp; " + "x" * 70 + "... is 982 "
            "characters long: at most 981 are allowed (one 998-character line of RFC 5322 with "
            "'Diagnostic-Code: ')",
        ),
        (
            {"bounce_sender_arn": "arn:aws:iam::123456789012:role/x"},
            "bounce_sender_arn must be an SES identity ARN "
            "(arn:<partition>:ses:<region>:<account>:identity/<address or domain>), "
            "got 'arn:aws:iam::123456789012:role/x'",
        ),
        (
            {"recipient_identity_arns": {"nope": "arn:aws:ses:eu-west-1:123456789012:identity/x"}},
            "recipient_identity_arns keys must be domains or addresses, got 'nope'",
        ),
        (
            {"recipient_identity_arns": {"old.example.com": "x"}},
            "recipient_identity_arns['old.example.com'] must be an SES identity ARN "
            "(arn:<partition>:ses:<region>:<account>:identity/<address or domain>), got 'x'",
        ),
        ({"rate_per_second": 0}, "rate_per_second must be > 0 and <= 1000, got 0"),
        ({"rate_per_second": 1000.5}, "rate_per_second must be > 0 and <= 1000, got 1000.5"),
        ({"max_concurrency": 1}, "max_concurrency must be an integer >= 2 and <= 1000, got 1"),
        (
            {"max_concurrency": 2.5},
            "max_concurrency must be an integer >= 2 and <= 1000, got 2.5",
        ),
        ({"batch_size": 0}, "batch_size must be an integer >= 1 and <= 10000, got 0"),
        ({"batch_size": 11}, "batch_size 11 is above 10, which needs a max_batching_window"),
        (
            {"max_batching_window": cdk.Duration.minutes(6)},
            "max_batching_window must be >= 0 and <= 300 seconds, got 6 minutes",
        ),
        (
            {"max_receive_count": 0},
            "max_receive_count must be an integer >= 1 and <= 1000, got 0",
        ),
        (
            {"function_timeout": cdk.Duration.minutes(16)},
            "function_timeout must be >= 60 and <= 900 seconds (the runtime keeps up to 50 s of "
            "margin to finish a record), got 16 minutes",
        ),
        (
            {"function_timeout": cdk.Duration.seconds(45)},
            "function_timeout must be >= 60 and <= 900 seconds (the runtime keeps up to 50 s of "
            "margin to finish a record), got 45 seconds",
        ),
        (
            {"batch_size": 100, "max_batching_window": cdk.Duration.seconds(0)},
            "max_batching_window must be >= 1 and <= 300 seconds (batch_size 100 is above 10), "
            "got 0 seconds",
        ),
        (
            {
                "recipient_identity_arns": {
                    "Example.com": "arn:aws:ses:eu-west-1:111111111111:identity/example.com",
                    "example.COM": "arn:aws:ses:eu-west-1:111111111111:identity/example.com",
                }
            },
            "recipient_identity_arns keys must differ ignoring case: 'Example.com' and "
            "'example.COM'",
        ),
        (
            {"oldest_message_age_threshold": cdk.Duration.hours(24)},
            "oldest_message_age_threshold must be >= 60 and < 86400 seconds "
            "(the 24-hour SendBounce window), got 1 day",
        ),
        (
            {"mail_retention": cdk.Duration.hours(36)},
            "mail_retention must be a whole number of days >= 1, got 1 day 12 hours",
        ),
        (
            {"object_key_prefix": "/inbound/*"},
            "object_key_prefix must be at most 900 characters, must not start with '/' and "
            "must not contain '*' or '?', got '/inbound/*'",
        ),
        (
            {"metrics_namespace": "AWS/SES"},
            "metrics_namespace must be 1-255 characters of letters, digits, space and "
            ". _ / # : - and must not start with 'AWS/', got 'AWS/SES'",
        ),
        (
            {"activate_imported_rule_set": True},
            "activate_imported_rule_set=True needs activate_rule_set=True",
        ),
    ],
)
def test_invalid_prop_is_named_with_value_and_range(
    new_stack: NewStack, props: dict[str, Any], message: str
) -> None:
    assert rejected(new_stack(), **props) == message


def test_all_problems_are_reported_together(new_stack: NewStack) -> None:
    assert rejected(new_stack(), bounce_sender="nobody", rate_per_second=-1, max_concurrency=0) == (
        f"bounce_sender 'nobody' has 0 '@': {BARE}; "
        "rate_per_second must be > 0 and <= 1000, got -1; "
        "max_concurrency must be an integer >= 2 and <= 1000, got 0"
    )


def test_existing_bucket_conflicts_are_reported_in_one_error(new_stack: NewStack) -> None:
    stack = new_stack()
    logs_bucket = s3.Bucket(stack, "Logs")
    message = rejected(
        stack,
        bucket=s3.Bucket.from_bucket_name(stack, "Mail", "mail-bucket"),
        mail_retention=cdk.Duration.days(3),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        server_access_logs_bucket=logs_bucket,
    )
    assert message == (
        "bucket is an existing bucket, so these settings of a new bucket do not apply: "
        "mail_retention, removal_policy, server_access_logs_bucket"
    )


def test_activating_an_imported_rule_set_needs_explicit_opt_in(new_stack: NewStack) -> None:
    stack = new_stack()
    imported = ses.ReceiptRuleSet.from_receipt_rule_set_name(stack, "Imported", "production")
    assert rejected(stack, rule_set=imported, activate_rule_set=True) == (
        "activate_rule_set=True with an imported rule_set would make a rule set that this app "
        "does not own the active one; pass activate_imported_rule_set=True to confirm"
    )
    confirmed = build(
        stack, rule_set=imported, activate_rule_set=True, activate_imported_rule_set=True
    )
    assert confirmed.activation is not None


def test_invalid_policy_names_the_field(new_stack: NewStack) -> None:
    message = rejected(
        new_stack(), policy={"version": 1, "default": {"type": "bounce", "bounce_type": "Nope"}}
    )
    assert message == (
        "policy is invalid: default.bounce_type: 'Nope' is not one of DoesNotExist, "
        "MessageTooLarge, ExceededQuota, ContentRejected, Undefined, TemporaryFailure"
    )


def test_an_invalid_policy_is_reported_with_the_other_problems(new_stack: NewStack) -> None:
    message = rejected(
        new_stack(),
        rate_per_second=0,
        policy={"version": 1, "default": {"type": "bounce", "bounce_type": "Nope"}},
    )
    assert message == (
        "rate_per_second must be > 0 and <= 1000, got 0; "
        "policy is invalid: default.bounce_type: 'Nope' is not one of DoesNotExist, "
        "MessageTooLarge, ExceededQuota, ContentRejected, Undefined, TemporaryFailure"
    )


def test_unresolved_tokens_are_not_validated(new_stack: NewStack) -> None:
    stack = new_stack()
    sender = cdk.CfnParameter(stack, "Sender").value_as_string
    recipient = cdk.CfnParameter(stack, "Recipient").value_as_string
    processor = build(stack, recipients=[recipient], bounce_sender=sender)
    assert processor.function is not None


def test_region_outside_the_receiving_list_fails_with_the_list(new_stack: NewStack) -> None:
    stack = new_stack(env=cdk.Environment(account="111111111111", region="eu-north-1"))
    assert rejected(stack) == (
        "region 'eu-north-1' does not receive mail through SES; receiving regions: us-east-1, "
        "us-east-2, us-west-2, ap-southeast-1, ap-southeast-2, ap-southeast-3, ap-northeast-1, "
        "ca-central-1, eu-central-1, eu-west-1, eu-west-2 (override with the receiving_regions "
        "prop or the context key 'cdk-ses-bounce:receivingRegions')"
    )


def test_receiving_regions_prop_overrides_the_list(new_stack: NewStack) -> None:
    north = cdk.Environment(account="111111111111", region="eu-north-1")
    assert build(new_stack(env=north), receiving_regions=["eu-north-1"]).rule is not None
    message = rejected(new_stack(), receiving_regions=["eu-north-1"])
    assert message.startswith(
        "region 'eu-west-1' does not receive mail through SES; receiving regions: eu-north-1 ("
    )


@pytest.mark.parametrize("value", ["eu-north-1, eu-south-1", ["eu-north-1", "eu-south-1"]])
def test_receiving_regions_context_key_overrides_the_list(
    new_stack: NewStack, value: str | list[str]
) -> None:
    north = cdk.Environment(account="111111111111", region="eu-north-1")
    stack = new_stack(env=north, **{"cdk-ses-bounce:receivingRegions": value})
    assert build(stack).rule is not None


def test_unresolved_region_warns(new_stack: NewStack) -> None:
    stack = new_stack(env=None)
    build(stack)
    assert warnings_of(stack) == [
        "The stack region is unresolved, so whether SES receives mail there cannot be checked, "
        "nor whether it is an opt-in region (where SES needs mail_write_role=True): give the "
        "stack a concrete region (env) to check both at synth time "
        "[ack: cdk-ses-bounce:unresolvedRegion]"
    ]


NO_ALARM_ACTION = (
    "No alarm_action: the alarms on dead letters, waiting mail, function errors, throttling and "
    "permanent failures notify nobody. Pass alarm_action (for example an SNS action), or "
    "acknowledge this warning if something else watches the alarms "
    "[ack: cdk-ses-bounce:noAlarmAction]"
)


def warnings_of(stack: cdk.Stack) -> list[str]:
    """The stack's warnings, except the one about a missing alarm_action."""
    return [
        str(entry.data)
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:warning" and entry.data != NO_ALARM_ACTION
    ]


def test_no_alarm_action_warns(new_stack: NewStack) -> None:
    stack = new_stack()
    build(stack)
    warnings = [
        entry.data
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:warning"
    ]
    assert warnings == [NO_ALARM_ACTION]
    stack = new_stack()
    topic = sns.Topic(stack, "Alarms")
    build(stack, alarm_action=cloudwatch_actions.SnsAction(topic))
    assert not [
        entry
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:warning"
    ]


def test_too_many_recipients_for_the_function_environment(new_stack: NewStack) -> None:
    long_addresses = [f"{'x' * 60}{i}@retired-{i}.example.com" for i in range(60)]
    message = rejected(new_stack(), recipients=long_addresses)
    assert message.startswith("the function's environment would take about ")
    assert message.endswith(
        " bytes, more than the 4096 that Lambda allows: recipients (passed to the runtime as "
        "OWNED_RECIPIENTS) and recipient_identity_arns are too long; split them over more than "
        "one BounceProcessor"
    )
    hundred_domains = [f"retired-{i:03}.example.com" for i in range(100)]
    assert build(new_stack(), recipients=hundred_domains).rule is not None


SIZE_RULE_POLICY: dict[str, Any] = {
    "version": 1,
    "rules": [
        {
            "match": {"min_size_bytes": 10_000_000},
            "action": {"type": "bounce", "bounce_type": "MessageTooLarge"},
        }
    ],
}


def test_a_batch_that_cannot_be_sent_within_the_timeout_warns(new_stack: NewStack) -> None:
    # A size rule adds a HeadObject per record: the runtime's margin grows from 39 s to 50 s.
    stack = new_stack()
    build(stack, policy=SIZE_RULE_POLICY, function_timeout=cdk.Duration.seconds(60))
    assert warnings_of(stack) == [
        "A batch of 10 bounces needs at least 20.4 s: 2 containers share the send budget "
        "(max_concurrency of Test/Bounces (2)), so each gets one SendBounce slot every 2.04 s "
        "(2 x (1/1 + 0.02) s); with the runtime's 50 s margin that is more than "
        "function_timeout 60 s. The rest of each full batch returns to the queue unsent and "
        "uses up receives (max_receive_count 10); lower batch_size to 4 or raise "
        "function_timeout [ack: cdk-ses-bounce:batchOutlastsTimeout]"
    ]
    stack = new_stack()
    build(
        stack,
        batch_size=11,
        max_batching_window=cdk.Duration.seconds(1),
        function_timeout=cdk.Duration.seconds(60),
    )
    assert warnings_of(stack) == [
        "A batch of 11 bounces needs at least 22.44 s: 2 containers share the send budget "
        "(max_concurrency of Test/Bounces (2)), so each gets one SendBounce slot every 2.04 s "
        "(2 x (1/1 + 0.02) s); with the runtime's 39 s margin that is more than "
        "function_timeout 60 s. The rest of each full batch returns to the queue unsent and "
        "uses up receives (max_receive_count 10); lower batch_size to 10 or raise "
        "function_timeout [ack: cdk-ses-bounce:batchOutlastsTimeout]"
    ]


@pytest.mark.parametrize(
    "props",
    [
        {},  # the defaults: 10 bounces at 0.5/s in a 120 s timeout
        {"function_timeout": cdk.Duration.seconds(60)},  # 20.4 s + the default policy's 39 s
        {"policy": SIZE_RULE_POLICY, "function_timeout": cdk.Duration.seconds(71)},  # 20.4 + 50 s
    ],
)
def test_a_batch_that_fits_the_timeout_does_not_warn(
    new_stack: NewStack, props: dict[str, Any]
) -> None:
    stack = new_stack()
    build(stack, **props)
    assert warnings_of(stack) == []


def test_the_minimum_timeout_exceeds_every_record_time_margin() -> None:
    margins = {
        contract.record_time_margin_seconds(needs_object_size=size, reads_headers=headers)
        for size in (False, True)
        for headers in (False, True)
    }
    assert max(margins) == validation.largest_record_time_margin_seconds()
    assert max(margins) < defaults.MIN_FUNCTION_TIMEOUT_SECONDS


def test_a_domain_recipient_outside_the_hosted_zone_warns(new_stack: NewStack) -> None:
    stack = new_stack()
    zone = route53.HostedZone(stack, "Zone", zone_name="example.com")
    build(stack, recipients=["old.example.com", "retired.example.org"], hosted_zone=zone)
    assert warnings_of(stack) == [
        "Recipient domain 'retired.example.org' is not in hosted_zone 'example.com': no MX "
        "record is created for it [ack: cdk-ses-bounce:recipientOutsideZone]"
    ]


def test_hosted_zone_needs_a_concrete_region(new_stack: NewStack) -> None:
    stack = new_stack(env=None)
    zone = route53.HostedZone(stack, "Zone", zone_name="example.com")
    assert rejected(stack, hosted_zone=zone) == (
        "hosted_zone needs a concrete stack region for its MX records "
        "(inbound-smtp.<region>.amazonaws.com), got an unresolved region"
    )


def test_strings_utf8_cannot_encode_are_named_before_anything_else(new_stack: NewStack) -> None:
    # jsii (which every token check calls) cannot carry a lone surrogate: named, not a crash.
    arn = "arn:aws:ses:eu-west-1:111111111111:identity/example.com"
    assert rejected(
        new_stack(),
        recipients=["old.example.com", "b\udcff.example.com"],
        recipient_identity_arns={"x\ud800.example.com": arn},
        metrics_namespace="Mail\udcff",
    ) == (
        "metrics_namespace 'Mail\\udcff' contains a lone surrogate (U+DCFF), not valid Unicode; "
        "recipients[1] 'b\\udcff.example.com' contains a lone surrogate (U+DCFF), not valid "
        "Unicode; recipient_identity_arns key 'x\\ud800.example.com' contains a lone surrogate "
        "(U+D800), not valid Unicode"
    )


def test_the_construct_uses_the_runtimes_grammar(new_stack: NewStack) -> None:
    from bounce_runtime.core.addresses import bare_address_problem, is_mail_domain

    samples = ["b@example.com", "a@b@example.com", "B <b@example.com>", "example.com",
               "\u212aelvin.example", "j\u00f6rg@example.com", "xn--bcher-kva.example",
               "o'brien+x@example.com", "localhost", "b@localhost", "a..b@example.com"]  # fmt: skip
    for sample in samples:
        assert validation.is_address(sample) is (bare_address_problem(sample) is None), sample
        assert validation.is_domain(sample) is is_mail_domain(sample), sample
    arn = "arn:aws:ses:eu-west-1:111111111111:identity/example.com"
    assert rejected(new_stack(), recipient_identity_arns={"\u212aelvin.example": arn}) == (
        "recipient_identity_arns keys must be domains or addresses, got '\u212aelvin.example'"
    )
