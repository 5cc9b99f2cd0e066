"""Finding a processor's queues from a deployed stack (moto's CloudFormation) by construct path."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from operations.pipeline import Pipeline, run

from bounce_runtime.contract import DEFAULT_SEND_CLAIM_TTL_SECONDS
from bounce_runtime.errors import OperationsError
from bounce_runtime.operations.dead_letters import (
    ProcessorQueues,
    find_processor_function,
    find_processor_queues,
    read_processor_scope,
)
from support.events import OBJECT_KEY_PREFIX


def queue(path: str | None, name: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}
    if path is not None:
        resource["Metadata"] = {"aws:cdk:path": path}
    return resource


class Stack:
    """A deployed stack holding processors' queues, named by construct path (None: no path)."""

    def __init__(self, cloudformation: Any, processors: dict[str, str | None]) -> None:
        self.cloudformation = cloudformation
        self.name = f"prod-bounce-{uuid.uuid4().hex[:8]}"  # the stack name, not its construct id
        self.names: dict[str, tuple[str, str]] = {}
        resources: dict[str, Any] = {
            "Topic": {"Type": "AWS::SNS::Topic", "Metadata": {"aws:cdk:path": "App/Topic"}}
        }
        for index, (key, path) in enumerate(processors.items()):
            names = (f"{self.name}-q{index}", f"{self.name}-dlq{index}")
            self.names[key] = names
            resources[f"Queue{index}"] = queue(path and f"{path}/Queue/Resource", names[0])
            resources[f"DeadLetterQueue{index}"] = queue(
                path and f"{path}/DeadLetterQueue/Resource", names[1]
            )
        cloudformation.create_stack(
            StackName=self.name, TemplateBody=json.dumps({"Resources": resources})
        )

    def find(self, processor: str) -> ProcessorQueues:
        return find_processor_queues(self.cloudformation, stack=self.name, processor=processor)


@pytest.fixture
def cloudformation(moto_clients: dict[str, Any]) -> Any:
    return moto_clients["cloudformation"]


def test_finds_both_queues_by_construct_path(cloudformation: Any) -> None:
    stack = Stack(
        cloudformation,
        {"mail": "SesBounce/Mail/BounceProcessor", "other": "SesBounce/Other/BounceProcessor"},
    )

    found = stack.find("Mail/BounceProcessor")

    queue_name, dlq_name = stack.names["mail"]
    assert found.queue_url.endswith(f"/{queue_name}")
    assert found.dead_letter_queue_url.endswith(f"/{dlq_name}")
    assert found.queue_url.startswith("https://")
    assert stack.find("/Other/BounceProcessor/").queue_url.endswith(stack.names["other"][0])


def test_an_ambiguous_path_asks_for_a_longer_one(cloudformation: Any) -> None:
    stack = Stack(
        cloudformation,
        {"a": "SesBounce/A/BounceProcessor", "b": "SesBounce/B/BounceProcessor"},
    )

    with pytest.raises(OperationsError) as error:
        stack.find("BounceProcessor")

    assert str(error.value) == (
        f"2 queues in stack {stack.name!r} end in BounceProcessor/Queue: give a longer "
        "--processor path (processors: A/BounceProcessor, B/BounceProcessor)"
    )


def test_a_wrong_path_names_the_processors_there_are(cloudformation: Any) -> None:
    stack = Stack(cloudformation, {"mail": "SesBounce/Mail/BounceProcessor"})

    with pytest.raises(OperationsError) as error:
        stack.find("BounceProcessor2")

    assert str(error.value) == (
        f"no SQS queue at BounceProcessor2/Queue in stack {stack.name!r} (matched against "
        "aws:cdk:path metadata); processors with a dead-letter queue in the stack: "
        "Mail/BounceProcessor"
    )


def test_without_path_metadata_the_error_says_to_turn_it_on(cloudformation: Any) -> None:
    stack = Stack(cloudformation, {"mail": None})

    with pytest.raises(OperationsError, match="path metadata must be on"):
        stack.find("BounceProcessor")


def test_list_by_stack_reads_the_processors_dead_letter_queue(
    cloudformation: Any, moto_clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(cloudformation, {"mail": "SesBounce/BounceProcessor"})
    dlq_url = stack.find("BounceProcessor").dead_letter_queue_url
    moto_clients["sqs"].send_message(
        QueueUrl=dlq_url,
        MessageBody="{}",
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "expired"}},
    )

    status, out, err = run(
        [
            "dead-letters", "list", "--stack", stack.name, "--processor", "BounceProcessor",
            "--json", "--wait-seconds", "0",
        ],
        capsys,
    )  # fmt: skip

    assert (status, err) == (0, "")
    document = json.loads(out)
    assert document["dead_letter_queue_url"] == dlq_url
    assert [(group["reason"], group["count"]) for group in document["reasons"]] == [("expired", 1)]


def test_an_unknown_stack_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        ["dead-letters", "list", "--stack", "no-such-stack", "--processor", "BounceProcessor"],
        capsys,
    )

    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("python -m bounce_runtime dead-letters: error: ")
    assert "no-such-stack" in err


def processor_stack(
    cloudformation: Any, pipeline: Pipeline, path: str, *, queues: bool = False
) -> str:
    """A stack holding a processor's function at ``path``/Function, whose configuration names
    the pipeline's bucket and dead-letter queue; with ``queues``, also the processor's two
    queues (the main one redriving to the other), the function naming that dead-letter queue."""
    name = f"fn-stack-{uuid.uuid4().hex[:8]}"
    dead_letter_queue_url: Any = pipeline.dlq_url
    extra: dict[str, Any] = {}
    if queues:
        dead_letter_queue_url = {"Ref": "DeadLetterQueue0"}
        extra = {
            "DeadLetterQueue0": queue(f"{path}/DeadLetterQueue/Resource", f"{name}-dlq"),
            "Queue0": queue(f"{path}/Queue/Resource", name),
        }
        extra["Queue0"]["Properties"]["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue0", "Arn"]},
            "maxReceiveCount": 5,
        }
    template = {
        "Resources": {
            **extra,
            "Role0": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "Function0": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"aws:cdk:path": f"{path}/Function/Resource"},
                "Properties": {
                    "FunctionName": name,
                    "Runtime": "python3.13",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["Role0", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return None\n"},
                    "Environment": {
                        "Variables": {
                            "MAIL_BUCKET": pipeline.bucket,
                            "OBJECT_KEY_PREFIX": OBJECT_KEY_PREFIX,
                            "DEAD_LETTER_QUEUE_URL": dead_letter_queue_url,
                            "SEND_CLAIM_TTL_SECONDS": "60",
                        }
                    },
                },
            },
        }
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def test_the_processors_function_is_found_and_read(
    cloudformation: Any, pipeline: Pipeline, moto_clients: dict[str, Any]
) -> None:
    stack = processor_stack(cloudformation, pipeline, "SesBounce/Mail/BounceProcessor")

    name = find_processor_function(cloudformation, stack=stack, processor="Mail/BounceProcessor")
    scope = read_processor_scope(
        moto_clients["lambda"], name, ProcessorQueues(pipeline.queue_url, pipeline.dlq_url)
    )

    assert name == stack
    assert (scope.mail_bucket, scope.object_key_prefix) == (pipeline.bucket, OBJECT_KEY_PREFIX)
    # A TTL below Lambda's longest timeout is never trusted to bound a claim.
    assert scope.claim_ttl_s == DEFAULT_SEND_CLAIM_TTL_SECONDS
    assert scope.owns(pipeline.bucket, OBJECT_KEY_PREFIX + "m-1", "m-1")
    assert not scope.owns(pipeline.bucket, OBJECT_KEY_PREFIX + "m-2", "m-1")
    with pytest.raises(OperationsError, match="it is another processor's function"):
        read_processor_scope(
            moto_clients["lambda"], name, ProcessorQueues(pipeline.queue_url, "https://other/dlq")
        )


def test_a_stack_without_the_processors_function_says_so(
    cloudformation: Any, pipeline: Pipeline
) -> None:
    stack = processor_stack(cloudformation, pipeline, "SesBounce/Mail/BounceProcessor")

    with pytest.raises(OperationsError) as error:
        find_processor_function(cloudformation, stack=stack, processor="Other/BounceProcessor")

    assert "no Lambda function at Other/BounceProcessor/Function" in str(error.value)
    assert str(error.value).endswith(
        "processors with a function in the stack: Mail/BounceProcessor"
    )


def test_replay_by_stack_checks_outcome_unknown_letters_against_the_function(
    cloudformation: Any,
    pipeline: Pipeline,
    moto_clients: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack = processor_stack(cloudformation, pipeline, "App/BounceProcessor", queues=True)
    found = find_processor_queues(cloudformation, stack=stack, processor="BounceProcessor")
    foreign = pipeline.body("s-1", bucket="someone-elses-bucket")
    moto_clients["sqs"].send_message(
        QueueUrl=found.dead_letter_queue_url,
        MessageBody=foreign,
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": "ses-outcome-unknown"},
        },
    )

    status, out, err = run(
        [
            "dead-letters", "replay", "--stack", stack, "--processor", "BounceProcessor",
            "--message-id", "s-1", "--yes", "--i-checked-no-bounce-was-sent",
            "--wait-seconds", "0",
        ],
        capsys,
    )  # fmt: skip

    assert status == 1, err
    assert "s3://someone-elses-bucket/inbound/s-1, which is not this processor's" in out
    assert f"(s3://{pipeline.bucket}/inbound/s-1)" in out
