"""The grants of a processor, one per operator role. Mixed into `BounceProcessor`, which
provides the resources.

The operator commands' grants are built from `bounce_runtime.operations.permissions`, the one
declaration of the IAM actions each command calls: a role given `grant_replay_dead_letters` or
`grant_preflight` can run that command, in every form the docs show, and nothing more.
"""

from __future__ import annotations

from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from bounce_runtime.contract import CLAIM_SUFFIX
from bounce_runtime.operations import permissions
from cdk_ses_bounce.budget import ISendBounceBudget


class BounceProcessorGrants:
    """`grant_*` methods, each returning an `iam.Grant` for one operator role."""

    @property
    def queue(self) -> sqs.Queue:
        raise NotImplementedError

    @property
    def dead_letter_queue(self) -> sqs.Queue:
        raise NotImplementedError

    @property
    def bucket(self) -> s3.IBucket:
        raise NotImplementedError

    @property
    def object_key_prefix(self) -> str:
        raise NotImplementedError

    @property
    def function(self) -> lambda_.Function:
        raise NotImplementedError

    @property
    def budget(self) -> ISendBounceBudget:
        raise NotImplementedError

    def grant_consume_dead_letters(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant reading and deleting dead letters (a consumer of the queue) to `grantee`."""
        return self.dead_letter_queue.grant_consume_messages(grantee)

    def grant_list_dead_letters(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant what `cdk-ses-bounce dead-letters list` calls (by URL or `--stack`)."""
        return self.grant_operator_command(grantee, "dead-letters list")

    def grant_replay_dead_letters(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant what `cdk-ses-bounce dead-letters replay` calls: consume the dead-letter queue,
        send to the queue (and read its redrive policy), read the mail objects' tags and read and
        delete stale send claims (`ses-outcome-unknown` letters), read the stack (`--stack`)."""
        return self.grant_operator_command(grantee, "dead-letters replay")

    def grant_preflight(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant what `cdk-ses-bounce preflight` calls: read-only (SES receiving and identity
        reads, the function's configuration, the queues' attributes, CloudWatch metrics, a
        simulation of the function role's policy on the budget table, a read of the budget item)."""
        return self.grant_operator_command(grantee, "preflight")

    def grant_read_mail(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant reading the raw mail (objects under the key prefix) to `grantee`."""
        return self.bucket.grant_read(grantee, f"{self.object_key_prefix}*")

    def grant_operator_command(self, grantee: iam.IGrantable, command: str) -> iam.Grant:
        """Grant exactly the IAM actions `command` (a key of
        `permissions.COMMAND_PERMISSIONS`) declares, one statement per resource kind."""
        declared = permissions.COMMAND_PERMISSIONS.get(command)
        if declared is None:
            raise ValueError(
                f"command {command!r} is unknown; commands: "
                f"{', '.join(sorted(permissions.COMMAND_PERMISSIONS))}"
            )
        by_resource: dict[str, set[str]] = {}
        for permission in declared:
            by_resource.setdefault(permission.resource, set()).update(permission.actions)
        grant: iam.Grant | None = None
        for kind, actions in by_resource.items():
            one = iam.Grant.add_to_principal(
                grantee=grantee, actions=sorted(actions), resource_arns=self._arns_of(kind)
            )
            grant = one if grant is None else grant.combine(one)
        if grant is None:  # a command that calls no AWS API
            return iam.Grant.drop(grantee, f"{command} calls no AWS API")
        return grant

    def _arns_of(self, kind: str) -> list[str]:
        prefix = self.object_key_prefix
        if kind == permissions.DEAD_LETTER_QUEUE:
            return [self.dead_letter_queue.queue_arn]
        if kind == permissions.QUEUE:
            return [self.queue.queue_arn]
        if kind == permissions.MAIL_OBJECTS:
            return [self.bucket.arn_for_objects(f"{prefix}*")]
        if kind == permissions.SEND_CLAIMS:
            return [self.bucket.arn_for_objects(f"{prefix}*{CLAIM_SUFFIX}")]
        if kind == permissions.FUNCTION:
            return [self.function.function_arn]
        if kind == permissions.FUNCTION_ROLE:
            role = self.function.role
            assert role is not None  # the construct always gives its function a role
            return [role.role_arn]
        if kind == permissions.BUDGET_TABLE:
            return [self.budget.table.table_arn]
        if kind == permissions.STACK:
            stack = cdk.Stack.of(cast(Construct, self))
            return [
                stack.format_arn(
                    service="cloudformation",
                    resource="stack",
                    resource_name=f"{stack.stack_name}/*",
                )
            ]
        if kind == permissions.ANY_RESOURCE:
            return ["*"]
        raise ValueError(f"resource kind {kind!r} has no ARN in the construct")
