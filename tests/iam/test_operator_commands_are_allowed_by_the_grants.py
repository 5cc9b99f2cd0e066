"""`dead-letters list` and `dead-letters replay`, run against moto in server mode, with every AWS
call they make evaluated against a role built ONLY from the construct's grant for that command
(`grant_consume_dead_letters` or `grant_list_dead_letters` for list, `grant_replay_dead_letters`
for replay), each resource's own policy included. Found by queue URLs, and by `--stack/--processor`
(CloudFormation answered by botocore's Stubber from the example stack's synthesized template:
moto's CloudFormation would create the template's resources)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from iam.helpers import (
    LIST_ROLE,
    PROCESSOR,
    REPLAY_ROLE,
    STACK,
    TRIAGE_ROLE,
    dead_letter_queue_id,
    deployed_as,
    evaluate,
    logical_id,
    main_queue_id,
    requests_of_role,
)
from operations.conftest import SERVICES
from operations.pipeline import REGION, Pipeline, clients, run

import bounce_runtime.operations.command_support as command_support
from bounce_runtime.contract import CLAIM_SUFFIX
from bounce_runtime.operations.dead_letters import OUTCOME_CHECKED_FLAG
from support.aws_env import moto_server, use_dummy_credentials
from support.iam_calls import Deployment, RecordedCall, record_calls
from support.iam_simulator import IamSimulator, assert_all_allowed, assert_all_denied

FAST = ["--rate", "100"]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@functools.cache
def _session(*, profile: str | None = None, region: str | None = None) -> Any:
    return boto3.session.Session(profile_name=profile, region_name=region)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    use_dummy_credentials(monkeypatch, REGION)
    for service in SERVICES:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_endpoint)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SES"):
        monkeypatch.delenv(name, raising=False)
    # One session for every command (a new one loads the service models again).
    monkeypatch.setattr(command_support, "new_session", _session)


@pytest.fixture
def pipeline(moto_endpoint: str) -> Pipeline:
    made = clients(moto_endpoint)
    return Pipeline(made)


@pytest.fixture
def world(template: dict[str, Any], pipeline: Pipeline) -> Deployment:
    """The template deployed with the pipeline's names for its queues and bucket."""
    base = deployed_as(template, {})
    return deployed_as(
        template,
        {
            main_queue_id(base): pipeline.queue_url.rsplit("/", 1)[1],
            dead_letter_queue_id(base): pipeline.dlq_url.rsplit("/", 1)[1],
            logical_id(base, "AWS::S3::Bucket", "MailBucket"): pipeline.bucket,
            logical_id(base, "AWS::Lambda::Function", "Function"): pipeline.function_name,
        },
    )


def _role(world: Deployment, name: str) -> str:
    return logical_id(world, "AWS::IAM::Role", name)


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, list[RecordedCall]]:
    with record_calls() as calls:
        status, out, err = run(argv, capsys)
    assert (status, err) == (0, ""), out + err
    return status, out, list(calls)


def test_dead_letters_list_is_allowed_by_grant_consume_dead_letters(
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline.dead_letter("l-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("l-2", "mail-object-missing")
    pipeline.dead_letter("l-3", None)

    _, out, calls = _run(
        ["dead-letters", "list", *pipeline.dead_letter_queue(), "--output", "json"], capsys
    )

    assert "ses-rejected" in out and "mail-object-missing" in out
    assert {c.describe() for c in calls} >= {"sqs.ReceiveMessage", "sqs.GetQueueAttributes"}
    requests = requests_of_role(world, calls, _role(world, TRIAGE_ROLE))
    assert_all_allowed(evaluate(simulator, world, requests))


def test_dead_letters_replay_is_allowed_by_grant_replay_dead_letters(
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = pipeline.dead_letter("r-1", "ses-rejected:MessageRejected")
    pipeline.dead_letter("r-2", "mail-object-missing")

    _, out, calls = _run(
        ["dead-letters", "replay", *pipeline.where(), "--reason", "ses-rejected", "--yes", *FAST],
        capsys,
    )

    assert "replay r-1 [" in out
    assert pipeline.bodies(pipeline.queue_url) == [body]
    assert {c.describe() for c in calls} >= {"sqs.SendMessage", "sqs.DeleteMessage"}
    requests = requests_of_role(world, calls, _role(world, REPLAY_ROLE))
    assert_all_allowed(evaluate(simulator, world, requests))
    # The triage role (list only) may not move letters back to the main queue.
    as_triage = requests_of_role(world, calls, _role(world, TRIAGE_ROLE))
    assert_all_denied(
        evaluate(simulator, world, [r for r in as_triage if r.action == "sqs:SendMessage"])
    )


def test_replay_of_an_outcome_unknown_letter_is_allowed_by_grant_replay_dead_letters(
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Replay reads the mail object's tags (was the bounce sent?) and deletes its send claim:
    # grant_replay_dead_letters must cover both.
    pipeline.dead_letter("u-1", "ses-outcome-unknown")
    claim = pipeline.store_mail("u-1", claimed=True) + CLAIM_SUFFIX

    _, out, calls = _run(
        [
            *["dead-letters", "replay", *pipeline.where()],
            *["--reason", "ses-outcome-unknown", "--yes", *FAST, OUTCOME_CHECKED_FLAG],
        ],
        capsys,
    )

    assert "replay u-1 [" in out
    assert claim not in pipeline.keys
    assert "s3.DeleteObject" in {c.describe() for c in calls}
    requests = requests_of_role(world, calls, _role(world, REPLAY_ROLE))
    assert_all_allowed(evaluate(simulator, world, requests))


@pytest.mark.parametrize("role", [TRIAGE_ROLE, REPLAY_ROLE])
def test_the_operator_calls_over_plain_http_are_denied(
    role: str,
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline.dead_letter("t-1", "ses-rejected:MessageRejected")
    _, _, calls = _run(
        ["dead-letters", "replay", *pipeline.where(), "--reason", "ses-rejected", "--yes", *FAST],
        capsys,
    )
    requests = requests_of_role(world, calls, _role(world, role))
    twins = [r.insecure() for r in requests]
    assert twins
    assert_all_denied(evaluate(simulator, world, twins))


# The construct ids `find_processor_queues` and `find_processor_function` look up, in order.
QUEUES = ("Queue", "DeadLetterQueue")
FUNCTION = ("Function",)


class _StackSession:
    """A boto3 session whose CloudFormation client is the given (Stubber-activated) one."""

    def __init__(self, session: Any, cloudformation: Any) -> None:
        self._session, self._cloudformation = session, cloudformation

    def client(self, service: str, **kwargs: Any) -> Any:
        if service == "cloudformation":
            return self._cloudformation
        return self._session.client(service, **kwargs)


@pytest.fixture
def stack(
    template: dict[str, Any], pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., None]]:
    """``stack(*lookups)``: the example stack deployed as STACK, its CloudFormation answering
    each lookup (the construct ids one find reads) with the template and the pipeline's names."""
    client = _session(region=REGION).client("cloudformation")
    stub = Stubber(client)
    physical = {
        "Queue": pipeline.queue_url,
        "DeadLetterQueue": pipeline.dlq_url,
        "Function": pipeline.function_name,
    }

    def expect(*lookups: tuple[str, ...]) -> None:
        for construct_ids in lookups:
            stub.add_response(
                "get_template", {"TemplateBody": json.dumps(template)}, {"StackName": STACK}
            )
            for construct_id in construct_ids:
                (logical,) = [
                    logical
                    for logical, resource in template["Resources"].items()
                    if resource.get("Metadata", {})
                    .get("aws:cdk:path", "")
                    .endswith(f"/{PROCESSOR}/{construct_id}/Resource")
                ]
                detail = {
                    "LogicalResourceId": logical,
                    "PhysicalResourceId": physical[construct_id],
                    "ResourceType": template["Resources"][logical]["Type"],
                    "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
                stub.add_response(
                    "describe_stack_resource",
                    {"StackResourceDetail": detail},
                    {"StackName": STACK, "LogicalResourceId": logical},
                )

    stub.activate()
    monkeypatch.setattr(
        command_support,
        "new_session",
        lambda *, profile=None, region=None: _StackSession(
            _session(profile=profile, region=region), client
        ),
    )
    yield expect
    stub.assert_no_pending_responses()


BY_STACK = ["--stack", STACK, "--processor", PROCESSOR, "--wait-seconds", "0"]
STACK_CALLS = {"cloudformation.GetTemplate", "cloudformation.DescribeStackResource"}


def test_dead_letters_list_by_stack_is_allowed_by_grant_list_dead_letters(
    stack: Callable[..., None],
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack(QUEUES)
    pipeline.dead_letter("s-1", "ses-rejected:MessageRejected")

    _, out, calls = _run(["dead-letters", "list", *BY_STACK, "--output", "json"], capsys)

    assert "ses-rejected" in out
    assert {c.describe() for c in calls} >= STACK_CALLS | {"sqs.ReceiveMessage"}
    requests = requests_of_role(world, calls, _role(world, LIST_ROLE))
    assert_all_allowed(evaluate(simulator, world, requests))
    # grant_consume_dead_letters is a queue consumer's grant: it does not cover the lookup.
    as_consumer = requests_of_role(world, calls, _role(world, TRIAGE_ROLE))
    assert_all_denied(
        evaluate(
            simulator, world, [r for r in as_consumer if r.action.startswith("cloudformation")]
        )
    )


def test_dead_letters_replay_by_stack_is_allowed_by_grant_replay_dead_letters(
    stack: Callable[..., None],
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack(QUEUES)
    body = pipeline.dead_letter("s-2", "ses-rejected:MessageRejected")

    _, out, calls = _run(
        ["dead-letters", "replay", *BY_STACK, "--reason", "ses-rejected", "--yes", *FAST], capsys
    )

    assert "replay s-2 [" in out
    assert pipeline.bodies(pipeline.queue_url) == [body]
    assert {c.describe() for c in calls} >= STACK_CALLS | {"sqs.SendMessage"}
    requests = requests_of_role(world, calls, _role(world, REPLAY_ROLE))
    assert_all_allowed(evaluate(simulator, world, requests))


def test_replay_by_stack_of_an_outcome_unknown_letter_is_allowed_by_grant_replay_dead_letters(
    stack: Callable[..., None],
    pipeline: Pipeline,
    world: Deployment,
    simulator: IamSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The stack is read twice: the queues, then the function whose configuration scopes the
    # letter's mail object and send claim.
    stack(QUEUES, FUNCTION)
    pipeline.dead_letter("s-3", "ses-outcome-unknown")
    claim = pipeline.store_mail("s-3", claimed=True) + CLAIM_SUFFIX

    _, out, calls = _run(
        [
            *["dead-letters", "replay", *BY_STACK],
            *["--reason", "ses-outcome-unknown", "--yes", *FAST, OUTCOME_CHECKED_FLAG],
        ],
        capsys,
    )

    assert "replay s-3 [" in out
    assert claim not in pipeline.keys
    made = [c.describe() for c in calls]
    assert made.count("cloudformation.GetTemplate") == 2
    assert {"lambda.GetFunctionConfiguration", "s3.DeleteObject"} <= set(made)
    requests = requests_of_role(world, calls, _role(world, REPLAY_ROLE))
    assert_all_allowed(evaluate(simulator, world, requests))
