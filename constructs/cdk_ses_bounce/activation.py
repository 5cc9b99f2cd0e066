"""RuleSetActivation: a custom resource that makes a receipt rule set the active one."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses
from constructs import Construct

from cdk_ses_bounce import defaults, nag

HANDLER_SOURCE = Path(__file__).with_name("rule_set_activation.py")
RESOURCE_TYPE = "Custom::SesActiveReceiptRuleSet"


class RuleSetActivation(Construct):
    """Activates `rule_set` on create; on delete deactivates it only if it is still active.

    Construct IDs: `Role`, `LogGroup`, `Function`, `Resource` (the custom resource).
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
            timeout=cdk.Duration.minutes(1),
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
        )
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
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ses:SetActiveReceiptRuleSet and ses:DescribeActiveReceiptRuleSet have no resource "
            "type: IAM accepts only Resource '*' for them",
        )
