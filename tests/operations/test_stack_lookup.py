"""Finding a processor's queues from a deployed stack (moto's CloudFormation) by construct path."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from operations.pipeline import run

from bounce_runtime.errors import OperationsError
from bounce_runtime.operations.dead_letters import (
    ProcessorQueues,
    find_processor_queues,
)


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
