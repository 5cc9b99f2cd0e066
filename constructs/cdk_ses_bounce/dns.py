"""MX records that point the recipients' domains at SES inbound SMTP."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_route53 as route53
from constructs import Construct

from cdk_ses_bounce import defaults, validation


def in_zone(domain: str, zone_name: str) -> bool:
    """True when `domain` is `zone_name` or below it (or the zone's name is unresolved)."""
    zone = zone_name.rstrip(".").lower()
    return cdk.Token.is_unresolved(zone_name) or domain == zone or domain.endswith("." + zone)


def new_mx_records(
    scope: Construct, zone: route53.IHostedZone, recipients: Sequence[str], region: str
) -> list[route53.MxRecord]:
    """`MxRecord-<domain>` for each domain recipient in `zone`; a warning for each outside it."""
    zone_name = zone.zone_name.rstrip(".")
    domains = dict.fromkeys(
        recipient.lower() for recipient in recipients if validation.is_domain(recipient)
    )
    records = []
    for domain in domains:
        if not in_zone(domain, zone_name):
            cdk.Annotations.of(scope).add_warning_v2(
                "cdk-ses-bounce:recipientOutsideZone",
                f"Recipient domain {domain!r} is not in hosted_zone {zone_name!r}: "
                "no MX record is created for it",
            )
            continue
        records.append(
            route53.MxRecord(
                scope,
                f"MxRecord-{domain}",
                zone=zone,
                record_name=f"{domain}.",
                values=[
                    route53.MxRecordValue(
                        host_name=f"inbound-smtp.{region}.amazonaws.com",
                        priority=defaults.MX_PRIORITY,
                    )
                ],
            )
        )
    return records
