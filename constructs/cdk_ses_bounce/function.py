"""The bounce function: its policy layer, least-privilege role, log group and SQS event source."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from bounce_runtime import contract
from bounce_runtime.core.policy import BouncePolicy
from bounce_runtime.core.policy_json import compile_policy
from cdk_ses_bounce import defaults, nag
from cdk_ses_bounce.assets import stage_policy, stage_runtime
from cdk_ses_bounce.budget import ISendBounceBudget
from cdk_ses_bounce.props import Props


def new_policy_layer(scope: Construct, policy: BouncePolicy) -> lambda_.LayerVersion:
    """`PolicyLayer`: the policy at `contract.POLICY_FILE` (too big for the environment), in the
    compiled form that the runtime loads without checking each pattern again (it was checked at
    synth by the same code)."""
    content = stage_policy(compile_policy(policy), contract.POLICY_LAYER_PATH)
    return lambda_.LayerVersion(
        scope,
        "PolicyLayer",
        code=lambda_.Code.from_asset(str(content)),
        compatible_runtimes=[defaults.FUNCTION_RUNTIME],
        compatible_architectures=[defaults.FUNCTION_ARCHITECTURE],
        description="cdk-ses-bounce bounce policy",
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def sender_identity_arns(scope: Construct, bounce_sender: str) -> list[str]:
    """The SES identities SendBounce may act as: the sender's address and its domain."""
    stack = cdk.Stack.of(scope)

    def identity_arn(name: str) -> str:
        return stack.format_arn(
            service="ses",
            resource="identity",
            resource_name=name,
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    if cdk.Token.is_unresolved(bounce_sender):
        return [identity_arn(bounce_sender)]
    local_part, domain = bounce_sender.rsplit("@", 1)
    # IAM compares resource ARNs case-sensitively; SES identities are lowercase domains.
    return [identity_arn(f"{local_part}@{domain.lower()}"), identity_arn(domain.lower())]


def grant_runtime_access(
    role: iam.Role, props: Props, bucket: s3.IBucket, recipient_arns: Mapping[str, str]
) -> None:
    """SendBounce as the bounce sender; read and tag raw mail; write only the send claims."""
    sender_arns = (
        [props.bounce_sender_arn]
        if props.bounce_sender_arn is not None
        else sender_identity_arns(role, props.bounce_sender)
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="SendBounceAsTheBounceSender",
            actions=["ses:SendBounce"],
            resources=[*sender_arns, *dict.fromkeys(recipient_arns.values())],
            conditions={"StringEquals": {"ses:FromAddress": props.bounce_sender}},
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="TellMissingMailFromForbidden",
            # Without ListBucket, S3 answers 403 instead of 404 for a missing key, and the
            # runtime could not dead-letter a missing mail object as mail-object-missing.
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
        )
    )
    mail_objects = bucket.arn_for_objects(f"{props.object_key_prefix}*")
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadAndTagRawMail",
            actions=["s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging"],
            resources=[mail_objects],
        )
    )
    nag.acknowledge_wildcard_resource(
        role,
        mail_objects,
        "The runtime reads and tags the raw mail objects, whose keys are the key prefix "
        "plus the SES message id: the '*' is only under that prefix",
    )
    send_claims = bucket.arn_for_objects(f"{props.object_key_prefix}*{contract.CLAIM_SUFFIX}")
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ClaimAndReleaseBounceSends",
            actions=["s3:PutObject", "s3:DeleteObject"],
            resources=[send_claims],
        )
    )
    nag.acknowledge_wildcard_resource(
        role,
        send_claims,
        f"Before each SendBounce the runtime creates <mail object key>{contract.CLAIM_SUFFIX} "
        "with a conditional write (and deletes it when SES did not send): the '*' stands for the "
        "SES message id, and only keys with that suffix under the prefix can be written",
    )


def recipient_key(recipient: str) -> str:
    """The runtime's lookup key of a recipient (a token is passed on as it is)."""
    return recipient if cdk.Token.is_unresolved(recipient) else contract.recipient_key(recipient)


def runtime_environment(
    scope: Construct,
    props: Props,
    bucket: s3.IBucket,
    dead_letter_queue: sqs.IQueue,
    budget: ISendBounceBudget,
) -> dict[str, str]:
    """The environment the runtime reads (names from `bounce_runtime.contract`): the send
    budget's table, item and rate among them."""
    stack = cdk.Stack.of(scope)
    environment = {
        contract.ENV_BOUNCE_SENDER: props.bounce_sender,
        contract.ENV_RECIPIENT_IDENTITY_ARNS: stack.to_json_string(
            {
                recipient_key(recipient): arn
                for recipient, arn in props.recipient_identity_arns.items()
            }
        ),
        contract.ENV_BOUNCE_POLICY_FILE: contract.POLICY_FILE,
        contract.ENV_DEAD_LETTER_QUEUE_URL: dead_letter_queue.queue_url,
        **budget.environment(),
        # A claim older than one invocation can only be left by a function that was stopped.
        contract.ENV_SEND_CLAIM_TTL_SECONDS: str(int(props.function_timeout.to_seconds())),
        contract.ENV_METRICS_NAMESPACE: props.metrics_namespace,
        # What this processor owns: the runtime acts on nothing else.
        contract.ENV_OWNED_RECIPIENTS: stack.to_json_string(
            list(dict.fromkeys(recipient_key(recipient) for recipient in props.recipients))
        ),
        contract.ENV_MAIL_BUCKET: bucket.bucket_name,
        contract.ENV_OBJECT_KEY_PREFIX: props.object_key_prefix,
        # The queue's redrive count: the last receive dead-letters a failing record with a reason.
        contract.ENV_MAX_RECEIVE_COUNT: cdk.Tokenization.stringify_number(props.max_receive_count),
    }
    if props.bounce_sender_arn is not None:
        environment[contract.ENV_BOUNCE_SENDER_ARN] = props.bounce_sender_arn
    return environment


def new_function(
    scope: Construct,
    props: Props,
    *,
    bucket: s3.IBucket,
    dead_letter_queue: sqs.IQueue,
    policy_layer: lambda_.ILayerVersion,
    budget: ISendBounceBudget,
) -> lambda_.Function:
    """`FunctionLogGroup`, `FunctionRole` and `Function` (the runtime, with the policy layer),
    allowed to take slots from `budget`."""
    log_group = logs.LogGroup(scope, "FunctionLogGroup", retention=props.log_retention)
    role = iam.Role(
        scope,
        "FunctionRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="cdk-ses-bounce runtime: SendBounce, raw mail, queues",
    )
    log_group.grant_write(role)
    grant_runtime_access(role, props, bucket, props.recipient_identity_arns)
    budget.grant_take_slots(role)
    function = lambda_.Function(
        scope,
        "Function",
        runtime=defaults.FUNCTION_RUNTIME,
        architecture=defaults.FUNCTION_ARCHITECTURE,
        handler=contract.HANDLER,
        code=lambda_.Code.from_asset(str(stage_runtime())),
        layers=[policy_layer],
        environment=runtime_environment(scope, props, bucket, dead_letter_queue, budget),
        timeout=props.function_timeout,
        memory_size=defaults.FUNCTION_MEMORY_MB,
        role=role,
        log_group=log_group,
        description="cdk-ses-bounce: sends SES bounces for received mail",
    )
    nag.acknowledge(
        function,
        "Serverless-LambdaDLQ",
        "Only the SQS event source invokes the function, synchronously; a Lambda dead-letter "
        "target applies to asynchronous invocations. Failed records reach the dead-letter queue "
        "through the queue's redrive policy or from the runtime, with a reason",
    )
    nag.acknowledge(
        function,
        "Serverless-LambdaTracing",
        "Active tracing needs xray:PutTraceSegments on Resource '*' (X-Ray actions have no "
        "resource type); each record's outcome is in the structured logs and EMF metrics instead",
    )
    return function


def consume_queue(
    function: lambda_.Function, props: Props, queue: sqs.IQueue, dead_letter_queue: sqs.IQueue
) -> None:
    """Read `queue` paced by maximum concurrency, reporting failures per record; the function
    sends what it cannot process to `dead_letter_queue` itself, with a reason."""
    function.add_event_source(
        event_sources.SqsEventSource(
            queue,
            batch_size=props.batch_size,
            max_batching_window=props.max_batching_window,
            max_concurrency=props.max_concurrency,
            report_batch_item_failures=True,
        )
    )
    dead_letter_queue.grant_send_messages(function)
    nag.acknowledge(
        function,
        "Serverless-LambdaEventSourceMappingDestination",
        "Lambda takes an on-failure destination only for stream and Kafka event sources, not "
        "for SQS: records that keep failing move to the dead-letter queue through the queue's "
        "redrive policy, and the runtime dead-letters what it cannot process with a reason",
    )
