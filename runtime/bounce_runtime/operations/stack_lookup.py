"""Finding a deployed BounceProcessor's resources, and checking that the ones an operator names
belong together: the main queue and its dead-letter queue, and the function that owns them (the
mail bucket and key prefix it acts on, its send-claim TTL).

The SQS, CloudFormation and Lambda clients are injected (boto3 clients or fakes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bounce_runtime.contract import (
    DEAD_LETTER_QUEUE_CONSTRUCT_ID,
    DEFAULT_SEND_CLAIM_TTL_SECONDS,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_MAIL_BUCKET,
    ENV_OBJECT_KEY_PREFIX,
    ENV_SEND_CLAIM_TTL_SECONDS,
    QUEUE_CONSTRUCT_ID,
)
from bounce_runtime.errors import OperationsError
from bounce_runtime.operations.reason_classes import printable

PATH_METADATA_KEY: Final = "aws:cdk:path"
SQS_QUEUE_TYPE: Final = "AWS::SQS::Queue"
LAMBDA_FUNCTION_TYPE: Final = "AWS::Lambda::Function"
# The construct ID of the processor's function (constructs/cdk_ses_bounce/function.py).
FUNCTION_CONSTRUCT_ID: Final = "Function"


class CloudFormationClient(Protocol):
    """The CloudFormation calls that find a processor's queues in a deployed stack."""

    def get_template(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def describe_stack_resource(self, **kwargs: Any) -> Mapping[str, Any]: ...


class SqsAttributesClient(Protocol):
    """The SQS call that checks two queues belong together."""

    def get_queue_attributes(self, **kwargs: Any) -> Mapping[str, Any]: ...


class LambdaClient(Protocol):
    """The Lambda call that reads what a processor's function owns."""

    def get_function_configuration(self, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ProcessorQueues:
    """The queue URLs of one BounceProcessor."""

    queue_url: str
    dead_letter_queue_url: str


@dataclass(frozen=True)
class ProcessorScope:
    """What one BounceProcessor's function acts on, read from its configuration.

    ``claim_ttl_s`` is the longest a delivery can hold a send claim: the function's
    ``SEND_CLAIM_TTL_SECONDS``, and never less than ``DEFAULT_SEND_CLAIM_TTL_SECONDS`` (Lambda's
    longest timeout), so a claim older than it belongs to an invocation that has ended.
    """

    function_name: str
    mail_bucket: str
    object_key_prefix: str
    dead_letter_queue_url: str
    claim_ttl_s: float

    def owns(self, bucket: str, key: str, ses_message_id: str) -> bool:
        """Whether ``bucket``/``key`` is the object this processor stores for the message: its
        bucket and the prefix + the SES message id (the runtime's own rule)."""
        return bucket == self.mail_bucket and key == self.object_key_prefix + ses_message_id


def find_processor_queues(
    cloudformation: CloudFormationClient, *, stack: str, processor: str
) -> ProcessorQueues:
    """The queue URLs of the processor at construct path ``processor`` inside ``stack``.

    Matches the template's ``aws:cdk:path`` metadata ``<stack path>/<processor>/Queue/Resource``
    (and ``DeadLetterQueue``); the physical ID of an ``AWS::SQS::Queue`` is its URL.
    """
    queues = _paths(cloudformation, stack, SQS_QUEUE_TYPE)
    urls = [
        _physical_id(cloudformation, stack, _logical_id(queues, stack, processor, construct_id))
        for construct_id in (QUEUE_CONSTRUCT_ID, DEAD_LETTER_QUEUE_CONSTRUCT_ID)
    ]
    return ProcessorQueues(queue_url=urls[0], dead_letter_queue_url=urls[1])


def find_processor_function(
    cloudformation: CloudFormationClient, *, stack: str, processor: str
) -> str:
    """The function name of the processor at construct path ``processor`` inside ``stack``
    (``<processor>/Function/Resource``; the physical ID of an ``AWS::Lambda::Function``)."""
    functions = _paths(cloudformation, stack, LAMBDA_FUNCTION_TYPE)
    logical_id = _logical_id(functions, stack, processor, FUNCTION_CONSTRUCT_ID, kind="function")
    return _physical_id(cloudformation, stack, logical_id)


def check_queue_pair(sqs: SqsAttributesClient, queues: ProcessorQueues) -> None:
    """Refuse a main queue and dead-letter queue that are not one processor's: the same queue
    twice, or a main queue whose RedrivePolicy names another dead-letter queue (or none)."""
    main, dead = queues.queue_url, queues.dead_letter_queue_url
    if main.rstrip("/") == dead.rstrip("/"):
        raise OperationsError(
            f"--queue-url and --dead-letter-queue-url are the same queue ({printable(main)})"
        )
    main_attributes = _attributes(sqs, main, ["QueueArn", "RedrivePolicy"])
    dead_arn = _attributes(sqs, dead, ["QueueArn"]).get("QueueArn")
    if main_attributes.get("QueueArn") == dead_arn:
        raise OperationsError("--queue-url and --dead-letter-queue-url name the same queue")
    try:
        target = json.loads(main_attributes.get("RedrivePolicy") or "{}").get("deadLetterTargetArn")
    except (ValueError, AttributeError):
        target = None
    if target is None:
        raise OperationsError(
            f"the main queue {printable(main)} has no redrive policy: it is not a "
            "BounceProcessor's queue"
        )
    if target != dead_arn:
        raise OperationsError(
            f"the main queue dead-letters to {printable(str(target))}, not to "
            f"{printable(str(dead_arn))}: the two queues are not one processor's"
        )


def read_processor_scope(
    functions: LambdaClient, function_name: str, queues: ProcessorQueues
) -> ProcessorScope:
    """What the processor's function acts on (GetFunctionConfiguration), after checking that
    it dead-letters to ``queues``' dead-letter queue."""
    configuration = functions.get_function_configuration(FunctionName=function_name)
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    bucket = variables.get(ENV_MAIL_BUCKET)
    prefix = variables.get(ENV_OBJECT_KEY_PREFIX)
    dead_letter_queue_url = variables.get(ENV_DEAD_LETTER_QUEUE_URL)
    name = printable(function_name)
    if not (isinstance(bucket, str) and isinstance(prefix, str) and dead_letter_queue_url):
        raise OperationsError(
            f"function {name} has no {ENV_MAIL_BUCKET}, {ENV_OBJECT_KEY_PREFIX} and "
            f"{ENV_DEAD_LETTER_QUEUE_URL} in its environment: it is not a BounceProcessor's"
        )
    if dead_letter_queue_url != queues.dead_letter_queue_url:
        raise OperationsError(
            f"function {name} dead-letters to {printable(str(dead_letter_queue_url))}, not to "
            f"{printable(queues.dead_letter_queue_url)}: it is another processor's function"
        )
    return ProcessorScope(
        function_name=function_name,
        mail_bucket=bucket,
        object_key_prefix=prefix,
        dead_letter_queue_url=dead_letter_queue_url,
        claim_ttl_s=_claim_ttl(variables.get(ENV_SEND_CLAIM_TTL_SECONDS)),
    )


def _claim_ttl(text: object) -> float:
    try:
        value = float(str(text))
    except ValueError:
        return DEFAULT_SEND_CLAIM_TTL_SECONDS
    return (
        max(value, DEFAULT_SEND_CLAIM_TTL_SECONDS)
        if math.isfinite(value)
        else (DEFAULT_SEND_CLAIM_TTL_SECONDS)
    )


def _attributes(sqs: SqsAttributesClient, url: str, names: list[str]) -> Mapping[str, str]:
    response = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return response.get("Attributes") or {}


def _paths(cloudformation: CloudFormationClient, stack: str, kind: str) -> dict[str, object]:
    """The ``aws:cdk:path`` of each resource of type ``kind`` in the stack's template."""
    body = cloudformation.get_template(StackName=stack).get("TemplateBody")
    if isinstance(body, str):  # botocore decodes JSON templates; YAML stays a string
        try:
            body = json.loads(body)
        except ValueError:
            raise OperationsError(
                f"the template of stack {stack!r} is not JSON: give the queue URLs instead"
            ) from None
    resources = body.get("Resources") if isinstance(body, Mapping) else None
    paths = {
        logical_id: resource.get("Metadata", {}).get(PATH_METADATA_KEY)
        for logical_id, resource in (resources or {}).items()
        if isinstance(resource, Mapping) and resource.get("Type") == kind
    }
    if not any(isinstance(path, str) for path in paths.values()):
        raise OperationsError(
            f"stack {stack!r} has no {kind} with {PATH_METADATA_KEY} metadata: path metadata "
            "must be on (the CDK default; `cdk deploy --path-metadata true`), or give the queue "
            "URLs with --queue-url and --dead-letter-queue-url (and --function-name)"
        )
    return paths


def _logical_id(
    resources: Mapping[str, object],
    stack: str,
    processor: str,
    construct_id: str,
    *,
    kind: str = "queue",
) -> str:
    processor = processor.strip("/")
    suffix = f"/{processor}/{construct_id}/Resource"
    found = sorted(
        logical_id
        for logical_id, path in resources.items()
        if isinstance(path, str) and path.endswith(suffix)
    )
    if len(found) == 1:
        return found[0]
    marker = f"/{DEAD_LETTER_QUEUE_CONSTRUCT_ID if kind == 'queue' else construct_id}/Resource"
    processors = sorted(
        path.split("/", 1)[-1].removesuffix(marker)
        for path in resources.values()
        if isinstance(path, str) and path.endswith(marker)
    )
    plural = "queues" if kind == "queue" else "functions"
    if found:
        raise OperationsError(
            f"{len(found)} {plural} in stack {stack!r} end in {processor}/{construct_id}: give "
            f"a longer --processor path (processors: {', '.join(processors)})"
        )
    what = "SQS queue" if kind == "queue" else "Lambda function"
    having = "a dead-letter queue" if kind == "queue" else "a function"
    raise OperationsError(
        f"no {what} at {processor}/{construct_id} in stack {stack!r} (matched against "
        f"{PATH_METADATA_KEY} metadata); processors with {having} in the stack: "
        f"{', '.join(processors) or 'none'}"
    )


def _physical_id(cloudformation: CloudFormationClient, stack: str, logical_id: str) -> str:
    detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    physical_id = (detail.get("StackResourceDetail") or {}).get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        raise OperationsError(f"stack {stack!r}: resource {logical_id} has no physical ID yet")
    return physical_id
