"""The exact IAM actions each operator command calls, and on what: declared once, here.

The construct's grants (``BounceProcessor.grant_list_dead_letters``, ``grant_replay_dead_letters``,
``grant_preflight``) are built from this table, and docs/operations.md ("Permissions of the
operator commands") is tested against it. Pure data: no boto3, no aws_cdk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bounce_runtime.contract import CLAIM_SUFFIX

# Resource kinds: what a statement's Resource is, as the construct knows it.
DEAD_LETTER_QUEUE: Final = "dead-letter-queue"
QUEUE: Final = "queue"
MAIL_OBJECTS: Final = "mail-objects"  # <object key prefix>* in the mail bucket
SEND_CLAIMS: Final = "send-claims"  # <object key prefix>*<CLAIM_SUFFIX> in the mail bucket
STACK: Final = "stack"  # the CloudFormation stack named by --stack
FUNCTION: Final = "function"
FUNCTION_ROLE: Final = "function-role"
BUDGET_TABLE: Final = "budget-table"
ANY_RESOURCE: Final = "*"  # actions that have no resource type (Service Authorization Reference)

RESOURCE_KINDS: Final[Mapping[str, str]] = {
    DEAD_LETTER_QUEUE: "the dead-letter queue",
    QUEUE: "the main queue",
    MAIL_OBJECTS: "the mail objects, `<prefix>*` in the mail bucket",
    SEND_CLAIMS: f"the send claims, `<prefix>*{CLAIM_SUFFIX}` in the mail bucket",
    STACK: "the CloudFormation stack (`--stack`)",
    FUNCTION: "the processor's Lambda function",
    FUNCTION_ROLE: "the function's execution role",
    BUDGET_TABLE: "the send budget's DynamoDB table",
    ANY_RESOURCE: "`*`: these actions have no resource type",
}

ALWAYS: Final = "always"
WITH_STACK: Final = "with --stack"


@dataclass(frozen=True)
class Permission:
    """IAM ``actions`` a command calls on one kind of resource, ``when`` it calls them."""

    actions: tuple[str, ...]
    resource: str
    when: str = ALWAYS


_FIND_BY_STACK: Final = Permission(
    ("cloudformation:DescribeStackResource", "cloudformation:GetTemplate"), STACK, WITH_STACK
)

COMMAND_PERMISSIONS: Final[Mapping[str, tuple[Permission, ...]]] = {
    "plan": (),
    "validate-policy": (),
    "dead-letters list": (
        Permission(
            ("sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"),
            DEAD_LETTER_QUEUE,
        ),
        _FIND_BY_STACK,
    ),
    "dead-letters replay": (
        Permission(
            (
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ),
            DEAD_LETTER_QUEUE,
        ),
        # GetQueueAttributes: the main queue's RedrivePolicy must name the dead-letter queue.
        Permission(("sqs:GetQueueAttributes", "sqs:SendMessage"), QUEUE),
        # The function's MAIL_BUCKET, OBJECT_KEY_PREFIX, SEND_CLAIM_TTL_SECONDS and
        # DEAD_LETTER_QUEUE_URL: the letter's object is checked before any S3 call.
        Permission(("lambda:GetFunctionConfiguration",), FUNCTION, "ses-outcome-unknown letters"),
        Permission(("s3:GetObjectTagging",), MAIL_OBJECTS, "ses-outcome-unknown letters"),
        # The stale send claim: read (GetObject also covers HeadObject), then deleted.
        Permission(("s3:DeleteObject", "s3:GetObject"), SEND_CLAIMS, "ses-outcome-unknown letters"),
        _FIND_BY_STACK,
    ),
    "preflight": (
        Permission(
            (
                "ses:DescribeActiveReceiptRuleSet",
                "ses:DescribeReceiptRuleSet",
                "ses:GetAccountSendingEnabled",
                "ses:GetIdentityPolicies",
                "ses:GetIdentityVerificationAttributes",
                "ses:GetSendQuota",
                "ses:ListIdentityPolicies",
                "cloudwatch:GetMetricStatistics",
            ),
            ANY_RESOURCE,
        ),
        Permission(("lambda:GetFunctionConfiguration",), FUNCTION),
        Permission(("sqs:GetQueueAttributes",), QUEUE),
        Permission(("sqs:GetQueueAttributes",), DEAD_LETTER_QUEUE),
        Permission(("iam:SimulatePrincipalPolicy",), FUNCTION_ROLE),
        # Only when the simulation is denied: a read shows at least that the item is reachable.
        Permission(("dynamodb:GetItem",), BUDGET_TABLE, "if the simulation is denied"),
        _FIND_BY_STACK,
    ),
}


def actions_of(command: str) -> frozenset[str]:
    """Every IAM action ``command`` may call."""
    return frozenset(action for p in COMMAND_PERMISSIONS[command] for action in p.actions)
