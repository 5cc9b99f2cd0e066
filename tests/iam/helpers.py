"""Constants and helpers of the IAM evaluation tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from support.cfn_resolver import TemplateResolver
from support.iam_calls import Deployment, RecordedCall
from support.iam_simulator import IamDecision, IamRequest, IamSimulator

ACCOUNT = "111111111111"
REGION = "eu-west-1"
STACK = "SesBounceExample"
# Test roles added to the example stack, each granted by one `grant_*` method only.
TRIAGE_ROLE = "IamTestDeadLetterTriageRole"
REPLAY_ROLE = "IamTestDeadLetterReplayRole"
LIST_ROLE = "IamTestDeadLetterListRole"
PREFLIGHT_ROLE = "IamTestPreflightRole"
# The processor's construct path in the example stack (`--processor`).
PROCESSOR = "BounceProcessor"

# Every decision of the session, for the summary line.
TALLY: list[IamDecision] = []


def deployed_as(template: dict[str, Any], physical_names: dict[str, str]) -> Deployment:
    """The template resolved with some resources named as a test world named them."""
    return Deployment(TemplateResolver(template, ACCOUNT, REGION, STACK, physical_names))


def logical_id(deployment: Deployment, resource_type: str, containing: str = "") -> str:
    return deployment.resolver.one_of_type(resource_type, containing=containing)


def evaluate(
    simulator: IamSimulator, deployment: Deployment, requests: Sequence[IamRequest]
) -> list[IamDecision]:
    return simulator.evaluate(deployment.policies(), requests)


def requests_of_role(
    deployment: Deployment, calls: Sequence[RecordedCall], role_id: str
) -> list[IamRequest]:
    """The IAM requests of `calls` made in a session of the role `role_id` (its identity policies,
    and each resource's own policy)."""
    principal = deployment.session_arn(role_id)
    return [
        request
        for call in calls
        for request in deployment.requests_for(
            call, principal=principal, identity_policies=[f"role:{role_id}"]
        )
    ]


def main_queue_id(deployment: Deployment) -> str:
    """The processor's queue: the one with a redrive policy."""
    found = [
        i
        for i, r in deployment.resolver.template["Resources"].items()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r.get("Properties", {})
    ]
    assert len(found) == 1, found
    return found[0]


def dead_letter_queue_id(deployment: Deployment) -> str:
    """The processor's dead-letter queue: the main queue's redrive target."""
    target = deployment.resolver.template["Resources"][main_queue_id(deployment)]["Properties"][
        "RedrivePolicy"
    ]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    return str(target)
