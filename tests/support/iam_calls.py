"""AWS calls recorded at the botocore layer, and the IAM requests each one makes.

`record_calls()` wraps `BaseClient._make_api_call` (every boto3/botocore client goes through it)
and keeps each call's service, operation and real parameters. `Deployment.requests_for` maps one
call to the IAM authorization requests AWS makes for it (action, resource ARN, condition keys), in
the account and region the template is resolved for. A call with no mapping here fails loudly:
add it to `OPERATIONS`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.client import BaseClient

from support.cfn_resolver import TemplateResolver, UnresolvableError
from support.iam_simulator import IamRequest

BUCKET = "AWS::S3::Bucket"
QUEUE = "AWS::SQS::Queue"
TABLE = "AWS::DynamoDB::Table"
ROLE = "AWS::IAM::Role"
# The id part of a stack's ARN (arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>):
# CloudFormation gives each stack a new UUID; a grant names the stack as `stack/<name>/*`.
STACK_ID = "8a4f3e2c-1b6d-4e7f-9a0b-2c3d4e5f6a7b"


@dataclass(frozen=True)
class RecordedCall:
    """One botocore API call with the parameters the caller gave."""

    service: str
    operation: str
    params: Mapping[str, Any]

    def describe(self) -> str:
        return f"{self.service}.{self.operation}"


@contextlib.contextmanager
def record_calls() -> Iterator[list[RecordedCall]]:
    """Record every botocore API call made while the block runs (any client, any thread)."""
    calls: list[RecordedCall] = []
    original: Callable[..., Any] = getattr(BaseClient, "_make_api_call")  # noqa: B009

    def recording(self: BaseClient, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        calls.append(RecordedCall(service, operation_name, dict(api_params)))
        return original(self, operation_name, api_params)

    setattr(BaseClient, "_make_api_call", recording)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


# service -> operation -> (IAM action, what the resource is). Batch operations are authorized as
# their single form (SQS documents SendMessageBatch etc. under the single action).
OPERATIONS: dict[str, dict[str, str]] = {
    "s3": {
        "GetObject": "s3:GetObject",
        "HeadObject": "s3:GetObject",
        "GetObjectTagging": "s3:GetObjectTagging",
        "PutObjectTagging": "s3:PutObjectTagging",
        "PutObject": "s3:PutObject",
        "DeleteObject": "s3:DeleteObject",
        "ListObjectsV2": "s3:ListBucket",
        "ListObjects": "s3:ListBucket",
    },
    "sqs": {
        "SendMessage": "sqs:SendMessage",
        "SendMessageBatch": "sqs:SendMessage",
        "ReceiveMessage": "sqs:ReceiveMessage",
        "DeleteMessage": "sqs:DeleteMessage",
        "DeleteMessageBatch": "sqs:DeleteMessage",
        "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
        "GetQueueAttributes": "sqs:GetQueueAttributes",
        "GetQueueUrl": "sqs:GetQueueUrl",
    },
    "dynamodb": {
        "GetItem": "dynamodb:GetItem",
        "UpdateItem": "dynamodb:UpdateItem",
        "PutItem": "dynamodb:PutItem",
        "DeleteItem": "dynamodb:DeleteItem",
    },
    "ses": {
        "SendBounce": "ses:SendBounce",
        "DescribeActiveReceiptRuleSet": "ses:DescribeActiveReceiptRuleSet",
        "DescribeReceiptRuleSet": "ses:DescribeReceiptRuleSet",
        "GetAccountSendingEnabled": "ses:GetAccountSendingEnabled",
        "GetIdentityPolicies": "ses:GetIdentityPolicies",
        "GetIdentityVerificationAttributes": "ses:GetIdentityVerificationAttributes",
        "GetSendQuota": "ses:GetSendQuota",
        "ListIdentityPolicies": "ses:ListIdentityPolicies",
    },
    "lambda": {"GetFunctionConfiguration": "lambda:GetFunctionConfiguration"},
    "cloudwatch": {"GetMetricStatistics": "cloudwatch:GetMetricStatistics"},
    "iam": {"SimulatePrincipalPolicy": "iam:SimulatePrincipalPolicy"},
    "cloudformation": {
        "GetTemplate": "cloudformation:GetTemplate",
        "DescribeStackResource": "cloudformation:DescribeStackResource",
    },
}

# Actions with no resource type in the Service Authorization Reference (the "Resource types"
# column is empty): IAM authorizes them on `*` only. Checked against the reference's data that
# parliament ships (tests/iam/test_the_call_mapping_follows_the_authorization_reference.py).
NO_RESOURCE_TYPE: frozenset[str] = frozenset(
    {
        "ses:DescribeActiveReceiptRuleSet",
        "ses:DescribeReceiptRuleSet",
        "ses:GetAccountSendingEnabled",
        "ses:GetIdentityPolicies",
        "ses:GetIdentityVerificationAttributes",
        "ses:GetSendQuota",
        "ses:ListIdentityPolicies",
        "cloudwatch:GetMetricStatistics",
    }
)


@dataclass(frozen=True)
class Deployment:
    """The resolved template as one account would run it: ARNs, and the policies by name
    (`role:<logical id>` for a role's identity policies, `resource:<logical id>` for a resource
    policy)."""

    resolver: TemplateResolver

    @property
    def account(self) -> str:
        return self.resolver.account

    @property
    def region(self) -> str:
        return self.resolver.region

    def policies(self) -> dict[str, dict[str, Any]]:
        resolver = self.resolver
        resources = resolver.template["Resources"]
        found: dict[str, dict[str, Any]] = {}
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            if kind == "AWS::IAM::Role":
                with contextlib.suppress(UnresolvableError):  # a role with no policy: none
                    found[f"role:{logical_id}"] = resolver.role_policy(logical_id)
            elif kind in (BUCKET, QUEUE, "AWS::SNS::Topic", "AWS::KMS::Key"):
                policy = resolver.resource_policy(logical_id)
                if policy is not None:
                    found[f"resource:{logical_id}"] = policy
        return found

    def role_arn(self, role_id: str) -> str:
        return self.resolver.arn(role_id)

    def session_arn(self, role_id: str, session: str = "iam-test") -> str:
        """The principal of a session of the role (what Lambda and an operator's CLI act as)."""
        name = self.resolver.physical_name(role_id)
        return f"arn:aws:sts::{self.account}:assumed-role/{name}/{session}"

    def _by_name(self, resource_type: str, name: str) -> str:
        """The logical id of the `resource_type` resource whose physical name is `name`."""
        for logical_id, resource in self.resolver.template["Resources"].items():
            if (
                resource["Type"] == resource_type
                and self.resolver.physical_name(logical_id) == name
            ):
                return str(logical_id)
        raise UnresolvableError(f"no {resource_type} named {name!r} in the template")

    def _resource_policy(self, logical_id: str) -> str | None:
        name = f"resource:{logical_id}"
        return name if self.resolver.resource_policy(logical_id) is not None else None

    def requests_for(
        self, call: RecordedCall, *, principal: str, identity_policies: Sequence[str]
    ) -> list[IamRequest]:
        """The IAM requests AWS authorizes for `call` made by `principal` over TLS."""
        action = OPERATIONS.get(call.service, {}).get(call.operation)
        if action is None:
            raise UnresolvableError(
                f"no IAM mapping for {call.describe()}: add it to support.iam_calls.OPERATIONS"
            )
        p = call.params
        label = call.describe()
        context: dict[str, str | list[str]] = {"aws:SecureTransport": "true"}
        targets: list[tuple[str, str, str | None]] = []  # (action, resource ARN, policy)
        if action in NO_RESOURCE_TYPE:
            targets.append((action, "*", None))
            label = f"{label} *"
        elif call.service == "s3":
            bucket_id = self._by_name(BUCKET, p["Bucket"])
            bucket_arn = self.resolver.arn(bucket_id)
            policy = self._resource_policy(bucket_id)
            if action == "s3:ListBucket":
                if "Prefix" in p:
                    context["s3:prefix"] = p["Prefix"]
                targets.append((action, bucket_arn, policy))
            else:
                if "VersionId" in p:
                    raise UnresolvableError(f"{label} with VersionId: map its *Version action")
                object_arn = f"{bucket_arn}/{p['Key']}"
                targets.append((action, object_arn, policy))
                if call.operation == "PutObject" and p.get("Tagging"):
                    # PutObject with tags needs s3:PutObjectTagging too (S3 user guide).
                    targets.append(("s3:PutObjectTagging", object_arn, policy))
            label = f"{label} s3://{p['Bucket']}/{p.get('Key', p.get('Prefix', ''))}"
        elif call.service == "sqs":
            name = (
                p["QueueName"] if "QueueName" in p else urlparse(p["QueueUrl"]).path.split("/")[-1]
            )
            queue_id = self._by_name(QUEUE, name)
            targets.append((action, self.resolver.arn(queue_id), self._resource_policy(queue_id)))
            label = f"{label} {name}"
        elif call.service == "dynamodb":
            table_id = self._by_name(TABLE, p["TableName"])
            hash_key = next(
                k["AttributeName"]
                for k in self.resolver.resource(table_id)["Properties"]["KeySchema"]
                if k["KeyType"] == "HASH"
            )
            ((_, value),) = p["Key"][hash_key].items()
            context["dynamodb:LeadingKeys"] = [str(value)]
            targets.append((action, self.resolver.arn(table_id), None))
            label = f"{label} {p['TableName']} key {value}"
        elif call.service == "lambda":
            name = str(p["FunctionName"]).rpartition(":function:")[2] or str(p["FunctionName"])
            function_id = self._by_name("AWS::Lambda::Function", name)
            targets.append((action, self.resolver.arn(function_id), None))
            label = f"{label} {name}"
        elif call.service == "iam":
            source = str(p["PolicySourceArn"])
            if ":role/" not in source:
                raise UnresolvableError(f"{label} of {source}: only a role is mapped")
            role_id = self._by_name(ROLE, source.rpartition("/")[2])
            targets.append((action, self.resolver.arn(role_id), None))
            label = f"{label} of role {source.rpartition('/')[2]}"
        elif call.service == "cloudformation":
            stack = str(p["StackName"])
            if not stack.startswith("arn:"):
                at = f"arn:aws:cloudformation:{self.region}:{self.account}:stack"
                stack = f"{at}/{stack}/{STACK_ID}"
            targets.append((action, stack, None))
            label = f"{label} {p['StackName']} {p.get('LogicalResourceId', '')}".rstrip()
        elif call.service == "ses" and call.operation == "SendBounce":
            sender = p["BounceSender"]
            context["ses:FromAddress"] = sender
            if p.get("BounceSenderArn"):
                identities = [p["BounceSenderArn"]]
            else:
                # SES authorizes the identity that covers the sender: the address's own, or its
                # domain's; the policy must allow whichever one is verified.
                at = f"arn:aws:ses:{self.region}:{self.account}:identity"
                identities = [f"{at}/{sender}", f"{at}/{sender.rpartition('@')[2]}"]
            targets.extend((action, arn, None) for arn in identities)
            label = f"{label} from {sender}"
        else:
            raise UnresolvableError(f"no resource mapping for {label}: add it to requests_for")
        return [
            IamRequest(
                label=label,
                principal=principal,
                action=target_action,
                resource=arn,
                account=self.account,
                context=dict(context),
                identity_policies=tuple(identity_policies),
                resource_policy=policy,
            )
            for target_action, arn, policy in targets
        ]
