"""Resolve a synthesized CloudFormation template's policies into concrete ARNs.

As CloudFormation would in one account and region: `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`,
`Fn::Select`, `Fn::Split` and the pseudo parameters. Each resource gets a physical name (given, or
derived from its logical id), and its ARN follows the form its service documents. Anything else
raises `UnresolvableError` naming where it is: a policy is never evaluated half-resolved.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


class UnresolvableError(ValueError):
    """A template value this resolver cannot turn into a concrete one."""


@dataclass(frozen=True)
class TemplateResolver:
    """One template deployed as stack `stack_name` in `account` and `region`.

    `physical_names` maps logical ids to physical names (bucket, queue, topic, table, role, log
    group, rule set names); a resource not named there gets one derived from its logical id.
    """

    template: Mapping[str, Any]
    account: str
    region: str
    stack_name: str
    physical_names: Mapping[str, str] = field(default_factory=dict)

    # Names and ARNs ------------------------------------------------------------------------------

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        try:
            resource: Mapping[str, Any] = self.template["Resources"][logical_id]
        except KeyError:
            raise UnresolvableError(f"no resource {logical_id!r} in the template") from None
        return resource

    def type_of(self, logical_id: str) -> str:
        return str(self.resource(logical_id)["Type"])

    def physical_name(self, logical_id: str) -> str:
        """The resource's name (the name its service knows it by)."""
        if logical_id in self.physical_names:
            return self.physical_names[logical_id]
        kind = self.type_of(logical_id)
        properties = self.resource(logical_id).get("Properties", {})
        explicit = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::SES::ReceiptRuleSet": "RuleSetName",
        }.get(kind)
        if explicit and explicit in properties:
            return str(self.resolve(properties[explicit], f"{logical_id}.{explicit}"))
        if kind == "AWS::S3::Bucket":  # lower case, at most 63 characters
            return f"{self.stack_name}-{logical_id}".lower()[:63]
        if kind == "AWS::KMS::Key":  # a key id is a UUID
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_name}/{logical_id}"))
        return f"{self.stack_name}-{logical_id}"[:80]

    def arn(self, logical_id: str) -> str:
        """The resource's ARN (`Fn::GetAtt [id, Arn]`)."""
        kind = self.type_of(logical_id)
        name = self.physical_name(logical_id)
        at = f"{self.region}:{self.account}"
        forms = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{at}:{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{at}:{name}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{at}:key/{name}",
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{at}:table/{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{self.account}:role/{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{at}:function:{name}",
            # CloudFormation's GetAtt Arn of a log group ends in ":*".
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{at}:log-group:{name}:*",
        }
        if kind not in forms:
            raise UnresolvableError(f"no ARN form for {logical_id} ({kind})")
        return forms[kind]

    def queue_url(self, logical_id: str) -> str:
        name = self.physical_name(logical_id)
        return f"https://sqs.{self.region}.{URL_SUFFIX}/{self.account}/{name}"

    def ref(self, logical_id: str) -> str:
        """What `Ref` returns for the resource or pseudo parameter."""
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.stack_name,
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        kind = self.type_of(logical_id)
        if kind == "AWS::SQS::Queue":
            return self.queue_url(logical_id)
        if kind == "AWS::SNS::Topic":
            return self.arn(logical_id)
        if kind in (
            "AWS::S3::Bucket",
            "AWS::DynamoDB::Table",
            "AWS::IAM::Role",
            "AWS::Logs::LogGroup",
            "AWS::KMS::Key",
            "AWS::SES::ReceiptRuleSet",
        ):
            return self.physical_name(logical_id)
        raise UnresolvableError(f"no Ref value for {logical_id} ({kind})")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.type_of(logical_id)
        if attribute == "Arn":
            return self.arn(logical_id)
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return self.physical_name(logical_id)
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueUrl"):
            return self.queue_url(logical_id)
        if (kind, attribute) == ("AWS::SNS::Topic", "TopicArn"):
            return self.arn(logical_id)
        if (kind, attribute) == ("AWS::SNS::Topic", "TopicName"):
            return self.physical_name(logical_id)
        if (kind, attribute) == ("AWS::KMS::Key", "KeyId"):
            return self.physical_name(logical_id)
        raise UnresolvableError(f"no value for Fn::GetAtt {logical_id}.{attribute} ({kind})")

    # Intrinsic functions -------------------------------------------------------------------------

    def resolve(self, value: Any, where: str = "value") -> Any:
        """`value` with every intrinsic function replaced by its result."""
        if isinstance(value, list):
            return [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self.ref(argument)
            if name.startswith("Fn::"):
                return self._function(name, argument, where)
        return {key: self.resolve(item, f"{where}.{key}") for key, item in value.items()}

    def _function(self, name: str, argument: Any, where: str) -> Any:
        here = f"{where}.{name}"
        if name == "Fn::GetAtt":
            logical_id, attribute = (
                argument.split(".", 1) if isinstance(argument, str) else argument
            )
            return self.get_att(logical_id, attribute)
        if name == "Fn::Join":
            separator, parts = argument
            resolved = self.resolve(parts, here)
            if not isinstance(resolved, list) or not all(isinstance(p, str) for p in resolved):
                raise UnresolvableError(f"{here}: Fn::Join of non-strings {resolved!r}")
            return str(separator).join(resolved)
        if name == "Fn::Select":
            index, items = argument
            resolved = self.resolve(items, here)
            return resolved[int(self.resolve(index, here))]
        if name == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text, here)).split(separator)
        if name == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            values = {key: self.resolve(item, here) for key, item in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), values, here), text)
        raise UnresolvableError(f"{here}: unsupported intrinsic function")

    def _sub(self, variable: str, values: Mapping[str, Any], where: str) -> str:
        if variable in values:
            return str(values[variable])
        if "." in variable:
            logical_id, attribute = variable.split(".", 1)
            return self.get_att(logical_id, attribute)
        return self.ref(variable)

    # Policies -----------------------------------------------------------------------------------

    def _of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def role_policy(self, role_id: str) -> dict[str, Any]:
        """Every statement of the role's identity policies, as one resolved policy document.

        Fails on what cannot be evaluated here: managed policies (their text is not in the
        template) and permission boundaries.
        """
        properties = self.resource(role_id).get("Properties", {})
        for unsupported in ("ManagedPolicyArns", "PermissionsBoundary"):
            if properties.get(unsupported):
                raise UnresolvableError(f"{role_id} has {unsupported}: not evaluated here")
        documents = [inline["PolicyDocument"] for inline in properties.get("Policies", [])]
        for policy in self._of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                documents.append(policy["Properties"]["PolicyDocument"])
        if not documents:
            raise UnresolvableError(f"no identity policy is attached to {role_id}")
        statements = [s for d in documents for s in d["Statement"]]
        return {"Version": "2012-10-17", "Statement": self.resolve(statements, role_id)}

    def resource_policy(self, logical_id: str) -> dict[str, Any] | None:
        """The resolved resource policy of a bucket, topic, queue or key (None: it has none)."""
        kind = self.type_of(logical_id)
        if kind == "AWS::KMS::Key":
            return dict(self.resolve(self.resource(logical_id)["Properties"]["KeyPolicy"]))
        owner = {
            "AWS::S3::Bucket": ("AWS::S3::BucketPolicy", "Bucket"),
            "AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics"),
            "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues"),
        }.get(kind)
        if owner is None:
            raise UnresolvableError(f"{logical_id} ({kind}) has no resource policy type")
        policy_type, link = owner
        ref = {"Ref": logical_id}
        found = [
            policy["Properties"]["PolicyDocument"]
            for policy in self._of_type(policy_type).values()
            if policy["Properties"][link] == ref
            or (isinstance(policy["Properties"][link], list) and ref in policy["Properties"][link])
        ]
        if len(found) > 1:
            raise UnresolvableError(f"{logical_id} has {len(found)} {policy_type}s")
        return dict(self.resolve(found[0], logical_id)) if found else None

    def one_of_type(self, resource_type: str, *, containing: str = "") -> str:
        """The logical id of the only resource of `resource_type` whose id contains `containing`."""
        found = [i for i in self._of_type(resource_type) if containing in i]
        if len(found) != 1:
            raise UnresolvableError(f"{len(found)} {resource_type} with {containing!r}: {found}")
        return found[0]
