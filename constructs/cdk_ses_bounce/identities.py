"""SES domain identities for the recipient domains (opt-in: `recipient_identities=True`).

SES receives mail only for domains and addresses that are verified identities in the region, so a
rule for an unverified domain deploys and then receives nothing. With a hosted zone, the
identity's Easy DKIM CNAME records go into the zone, which verifies the domain; without one, add
the records shown in the SES console by hand. CloudFormation cannot adopt an identity that
already exists (creating it fails and the stack rolls back), which synth cannot know: every
identity created here comes with the warning `cdk-ses-bounce:identityMayExist`.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_ses as ses
from constructs import Construct

from cdk_ses_bounce import dns, validation

IDENTITY_MAY_EXIST: str = "cdk-ses-bounce:identityMayExist"


def recipient_domains(recipients: Sequence[str]) -> list[str]:
    """The domain recipients, lowercased, first occurrence first (addresses are left out: an
    address identity is verified by a link mailed to it, which SES cannot deliver yet)."""
    return list(dict.fromkeys(r.lower() for r in recipients if validation.is_domain(r)))


def new_recipient_identities(
    scope: Construct, recipients: Sequence[str], hosted_zone: route53.IHostedZone | None
) -> list[ses.EmailIdentity]:
    """`Identity-<domain>` for each domain recipient; with `hosted_zone`, its DKIM records
    `DkimRecord-<domain>-<n>` in the zone (domains outside the zone get none)."""
    identities = []
    for domain in recipient_domains(recipients):
        identity = ses.EmailIdentity(
            scope, f"Identity-{domain}", identity=ses.Identity.domain(domain)
        )
        cdk.Annotations.of(identity).add_warning_v2(
            IDENTITY_MAY_EXIST,
            f"recipient_identities=True creates the SES identity {domain!r}: if it already exists "
            "in this account and region, CloudFormation fails to create it and rolls the stack "
            "back. Leave recipient_identities off for domains you have verified already",
        )
        if hosted_zone is not None and dns.in_zone(domain, hosted_zone.zone_name):
            for index, record in enumerate(identity.dkim_records, start=1):
                route53.CnameRecord(
                    scope,
                    f"DkimRecord-{domain}-{index}",
                    zone=hosted_zone,
                    record_name=record.name,
                    domain_name=record.value,
                )
        identities.append(identity)
    return identities
