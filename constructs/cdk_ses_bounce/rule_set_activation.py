"""Custom resource that makes a receipt rule set active and, on delete, deactivates it only if
it is still the active one. Inlined into a Lambda function, where `cfnresponse` is provided."""

from __future__ import annotations

from typing import Any


def apply(ses: Any, request_type: str, rule_set_name: str) -> None:
    """Activate the rule set on Create/Update; on Delete deactivate it if it is still active."""
    if request_type in ("Create", "Update"):
        ses.set_active_receipt_rule_set(RuleSetName=rule_set_name)
        return
    active = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    if active == rule_set_name:
        ses.set_active_receipt_rule_set()


def handler(event: dict[str, Any], context: Any) -> None:
    """CloudFormation entry point; the physical id is the rule set name."""
    import boto3
    import cfnresponse  # type: ignore[import-not-found]

    name = event["ResourceProperties"]["RuleSetName"]
    try:
        apply(boto3.client("ses"), event["RequestType"], name)
    except Exception as error:
        cfnresponse.send(event, context, cfnresponse.FAILED, {}, name, reason=str(error))
        return
    cfnresponse.send(event, context, cfnresponse.SUCCESS, {}, name)
