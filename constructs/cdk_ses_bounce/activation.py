"""RuleSetActivation: a custom resource that makes a receipt rule set the active one and, on
delete or rollback, gives back the rule set that was active before (docs/design.md, "Rule set
activation")."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses
from constructs import Construct

from cdk_ses_bounce import defaults, nag
from cdk_ses_bounce import rule_set_activation as handler

HANDLER_SOURCE = Path(__file__).with_name("rule_set_activation.py")
RESOURCE_TYPE = "Custom::SesActiveReceiptRuleSet"
# The handler's worst case: its SES calls with every retry, then the answer's reserve (its
# watchdog stops the work before the reserve, so the answer always fits in the timeout).
WORST_CASE_SECONDS = (
    handler.MOST_SES_CALLS * handler.WORST_SES_CALL_SECONDS + handler.ANSWER_RESERVE_SECONDS
)
FUNCTION_TIMEOUT = cdk.Duration.minutes(2)
# CloudFormation gives up on an unanswered request after this (its default is an hour).
SERVICE_TIMEOUT = cdk.Duration.minutes(5)
# An asynchronous invocation older than this is dropped, and a failed one is not retried: a late
# or repeated run could activate a set after CloudFormation gave up (and after its rollback).
MAX_EVENT_AGE = cdk.Duration.minutes(3)


class RuleSetActivation(Construct):
    """Activates `rule_set` on create and update; on delete (or a failed create's rollback),
    if it is still the active set, re-activates the set that was active before (or deactivates
    when there was none or it no longer exists); a set someone else activated is left alone.

    The set that was active before is the custom resource's `PreviousRuleSetName` attribute
    (`previous_rule_set_name`; empty when none was). Construct IDs: `Role`, `LogGroup`,
    `Function`, `Resource` (the custom resource).
    """

    def __init__(self, scope: Construct, id: str, *, rule_set: ses.IReceiptRuleSet) -> None:
        super().__init__(scope, id)
        log_group = logs.LogGroup(self, "LogGroup", retention=defaults.LOG_RETENTION)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Activates/deactivates an SES receipt rule set (cdk-ses-bounce)",
        )
        log_group.grant_write(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                # Neither action has a resource type (Service Authorization Reference); a set
                # that no longer exists is told by SetActiveReceiptRuleSet itself
                # (RuleSetDoesNotExist), so no Describe/ListReceiptRuleSet(s) is needed.
                actions=["ses:SetActiveReceiptRuleSet", "ses:DescribeActiveReceiptRuleSet"],
                resources=["*"],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=defaults.FUNCTION_RUNTIME,
            architecture=defaults.FUNCTION_ARCHITECTURE,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER_SOURCE.read_text(encoding="utf-8")),
            timeout=FUNCTION_TIMEOUT,
            retry_attempts=0,
            max_event_age=MAX_EVENT_AGE,
            memory_size=defaults.ACTIVATION_MEMORY_MB,
            role=self.role,
            log_group=log_group,
            description="Activates an SES receipt rule set (cdk-ses-bounce)",
        )
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties={"RuleSetName": rule_set.receipt_rule_set_name},
            service_timeout=SERVICE_TIMEOUT,
        )
        self.previous_rule_set_name = self.resource.get_att_string(handler.PREVIOUS_ATTRIBUTE)
        """The rule set that was active before this one was activated ('' when none was)."""
        nag.acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "CloudFormation invokes this custom resource handler and waits for its answer: a "
            "failure fails the stack operation, so there is nothing for a dead-letter target",
        )
        nag.acknowledge(
            self.function,
            "Serverless-LambdaTracing",
            "Active tracing needs xray:PutTraceSegments on Resource '*'; the handler runs once "
            "per deployment and reports its outcome to CloudFormation",
        )
        nag.acknowledge(
            self.function,
            "Serverless-LambdaAsyncFailureDestination",
            "Its only caller is CloudFormation, which learns every outcome from the handler's own "
            "answer; a failed invocation is deliberately not retried (see MAX_EVENT_AGE)",
        )
        nag.acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ses:SetActiveReceiptRuleSet and ses:DescribeActiveReceiptRuleSet have no resource "
            "type: IAM accepts only Resource '*' for them",
        )
