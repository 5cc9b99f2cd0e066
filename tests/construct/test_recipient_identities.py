"""`recipient_identities=True`: an SES domain identity for each domain recipient (SES receives
only for verified identities), its DKIM records in the hosted zone, and a synth warning that an
identity which already exists makes the deployment fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_route53 as route53
from construct.synth_helpers import cfn_lint_findings, resources_of_type

from cdk_ses_bounce import BounceProcessor
from cdk_ses_bounce.identities import IDENTITY_MAY_EXIST

NewStack = Callable[..., cdk.Stack]
RECIPIENTS = ["Retired.example.com", "old-sales@example.com", "other.example.org"]


def build(stack: cdk.Stack, **props: Any) -> BounceProcessor:
    return BounceProcessor(
        stack,
        "Bounces",
        recipients=props.pop("recipients", RECIPIENTS),
        bounce_sender="mailer-daemon@example.com",
        **props,
    )


def warnings_with(stack: cdk.Stack, warning_id: str) -> list[tuple[str, str]]:
    return [
        (construct.node.path, str(entry.data))
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:warning" and warning_id in str(entry.data)
    ]


def test_an_identity_per_domain_recipient_with_dkim_records_in_the_zone(
    new_stack: NewStack,
) -> None:
    stack = new_stack()
    zone = route53.HostedZone(stack, "Zone", zone_name="example.com")
    processor = build(stack, recipient_identities=True, hosted_zone=zone)
    template = assertions.Template.from_stack(stack).to_json()
    identities = resources_of_type(template, "AWS::SES::EmailIdentity")
    # Domains only (an address identity is verified by mail SES cannot receive yet), lowercased.
    assert sorted(i["Properties"]["EmailIdentity"] for i in identities.values()) == [
        "other.example.org",
        "retired.example.com",
    ]
    assert len(processor.recipient_identities) == 2
    cnames = [
        r["Properties"]
        for r in resources_of_type(template, "AWS::Route53::RecordSet").values()
        if r["Properties"]["Type"] == "CNAME"
    ]
    # Easy DKIM: three CNAMEs for the domain in the zone, none for the one outside it.
    (retired_id,) = [
        k
        for k, i in identities.items()
        if i["Properties"]["EmailIdentity"] == "retired.example.com"
    ]
    assert len(cnames) == 3
    for cname in cnames:
        assert retired_id in json.dumps(cname)
        assert cname["HostedZoneId"] == {"Ref": stack.resolve(zone.hosted_zone_id)["Ref"]}
    assert cfn_lint_findings(template) == []


def test_every_created_identity_warns_that_it_may_already_exist(new_stack: NewStack) -> None:
    stack = new_stack()
    build(stack, recipient_identities=True)
    warnings = warnings_with(stack, IDENTITY_MAY_EXIST)
    assert len(warnings) == 2
    for path, text in warnings:
        assert path.startswith("Test/Bounces/Identity-")
        assert "already exists" in text and "rolls the stack back" in text


def test_without_a_zone_the_identities_have_no_records(new_stack: NewStack) -> None:
    stack = new_stack()
    build(stack, recipient_identities=True)
    template = assertions.Template.from_stack(stack).to_json()
    assert len(resources_of_type(template, "AWS::SES::EmailIdentity")) == 2
    assert not resources_of_type(template, "AWS::Route53::RecordSet")


def test_no_identities_unless_asked(new_stack: NewStack) -> None:
    stack = new_stack()
    processor = build(stack)
    template = assertions.Template.from_stack(stack).to_json()
    assert not resources_of_type(template, "AWS::SES::EmailIdentity")
    assert processor.recipient_identities == []
    assert warnings_with(stack, IDENTITY_MAY_EXIST) == []


def test_asking_for_identities_of_addresses_only_is_refused(new_stack: NewStack) -> None:
    with pytest.raises(ValueError) as raised:
        build(new_stack(), recipients=["old-sales@example.com"], recipient_identities=True)
    assert "recipient_identities=True creates identities for domain recipients only" in str(
        raised.value
    )
