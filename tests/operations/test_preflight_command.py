"""The ``preflight`` command as an operator runs it: found by ``--stack/--processor`` in the
template CDK really synthesizes (CloudFormation answered by Stubber: moto's CloudFormation skips
SES resources), one line per check or JSON for scripts, exit 0 / 1 / 2, and one line on stderr,
never a traceback, when the region, the credentials or the stack are wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from botocore.stub import Stubber
from operations.preflight_world import (
    FUNCTION,
    REGION,
    RULE,
    RULE_SET,
    World,
    healthy,
    moto_server,
    world,
)

from bounce_runtime import cli
from bounce_runtime.operations import preflight
from bounce_runtime.operations.permissions import actions_of
from cdk_ses_bounce import BounceProcessor

__all__ = ["moto_server", "world"]

STACK = "prod-mail"
PATH = "Mail/Bounces"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template of a processor at construct path Mail/Bounces, as `cdk synth` writes it."""
    app = cdk.App(context={"aws:cdk:enable-path-metadata": True})  # as the CDK CLI sets it
    stack = cdk.Stack(app, "MailStack", env=cdk.Environment(account="123456789012", region=REGION))
    BounceProcessor(
        _scope(stack, "Mail"),
        "Bounces",
        recipients=["old.example.com", "retired@example.org"],
        bounce_sender="bounces@example.com",
    )
    BounceProcessor(
        _scope(stack, "Other"),
        "Bounces",
        recipients=["other.example.com"],
        bounce_sender="bounces@example.com",
    )
    template: dict[str, Any] = app.synth().get_stack_by_name("MailStack").template
    return template


def _scope(stack: cdk.Stack, name: str) -> Any:
    from constructs import Construct

    return Construct(stack, name)


def _logical_id(template: dict[str, Any], path_suffix: str) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix)
    ]
    return found


@pytest.fixture
def by_stack(
    world: Callable[..., World], template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """A healthy world whose CloudFormation answers with the synthesized template."""
    built = world(healthy())
    client = built.session.client("cloudformation")
    stub = Stubber(client)
    stub.add_response("get_template", {"TemplateBody": json.dumps(template)}, {"StackName": STACK})
    rule_set_id = template["Resources"][_logical_id(template, f"{PATH}/Rule/Resource")][
        "Properties"
    ]["RuleSetName"]["Ref"]
    physical = {
        f"{PATH}/Function/Resource": FUNCTION,
        f"{PATH}/Rule/Resource": RULE,
        f"{PATH}/Queue/Resource": built.queue_url,
        f"{PATH}/DeadLetterQueue/Resource": built.dead_letter_queue_url,
    }
    for suffix, physical_id in physical.items():
        logical_id = _logical_id(template, suffix)
        stub.add_response(
            "describe_stack_resource",
            _detail(logical_id, physical_id),
            {"StackName": STACK, "LogicalResourceId": logical_id},
        )
    stub.add_response(
        "describe_stack_resource",
        _detail(rule_set_id, RULE_SET),
        {"StackName": STACK, "LogicalResourceId": rule_set_id},
    )
    stub.activate()
    built.stubs["cloudformation"] = stub
    monkeypatch.setattr(preflight, "new_clients", lambda profile, region: (built.clients, REGION))
    monkeypatch.setattr(preflight, "lookup_mx", built.resolve_mx)
    yield built
    stub.assert_no_pending_responses()


def _detail(logical_id: str, physical_id: str) -> dict[str, Any]:
    return {
        "StackResourceDetail": {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": physical_id,
            "ResourceType": "AWS::Test",
            "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
            "ResourceStatus": "CREATE_COMPLETE",
        }
    }


def test_found_by_stack_and_processor_path_every_check_passes_and_exit_is_0(
    by_stack: World, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["preflight", "--stack", STACK, "--processor", PATH])
    out, err = capsys.readouterr()
    assert status == 0, out
    lines = out.splitlines()
    assert lines[-1] == "14 ok, 0 problem, 0 unknown"
    assert all(line.startswith("ok ") for line in lines[:-2])
    assert err == ""
    # The stack lookup's calls are declared (and so granted by grant_preflight).
    stack_calls = {a for a in by_stack.actions if a.startswith("cloudformation:")}
    assert stack_calls == {"cloudformation:GetTemplate", "cloudformation:DescribeStackResource"}
    assert set(by_stack.actions) <= actions_of("preflight")


def test_a_name_given_with_the_stack_replaces_what_the_stack_says(
    by_stack: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["preflight", "--stack", STACK, "--processor", PATH, "--rule-set", "SomeoneElses"]
    assert cli.main([*argv, "--output", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["rule_set"] == "SomeoneElses" and document["rule"] == RULE


def test_json_output_for_scripts(by_stack: World, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["preflight", "--stack", STACK, "--processor", PATH, "--output", "json"])
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    assert document["rule_set"] == RULE_SET and document["rule"] == RULE
    assert document["function"] == FUNCTION
    assert document["summary"] == {"ok": 14, "problem": 0, "unknown": 0}
    assert set(document["checks"][0]) == {"check", "status", "meaning", "fix"}


def test_a_problem_exits_1_with_its_fix_on_the_next_line(
    world: Callable[..., World],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = world(healthy(dead_letters=1))
    monkeypatch.setattr(preflight, "new_clients", lambda profile, region: (built.clients, REGION))
    monkeypatch.setattr(preflight, "lookup_mx", built.resolve_mx)
    names = ["--function", FUNCTION, "--rule-set", RULE_SET, "--rule", RULE]
    queues = [
        "--queue-url",
        built.queue_url,
        "--dead-letter-queue-url",
        built.dead_letter_queue_url,
    ]
    status = cli.main(["preflight", *names, *queues])
    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    (index,) = [i for i, line in enumerate(lines) if line.startswith("problem  dead-letters")]
    assert "fix: cdk-ses-bounce dead-letters list" in lines[index + 1]


def test_unknown_fails_only_with_strict(
    world: Callable[..., World],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = world(healthy())
    monkeypatch.setattr(preflight, "new_clients", lambda profile, region: (built.clients, REGION))
    monkeypatch.setattr(preflight, "lookup_mx", built.resolve_mx)
    # Without the queue URLs, the queue checks are unknown, not problems.
    base = ["preflight", "--function", FUNCTION, "--rule-set", RULE_SET, "--rule", RULE]
    assert cli.main(base) == 0
    assert "unknown  queue-backlog" in capsys.readouterr().out
    assert cli.main([*base, "--strict"]) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", STACK], "--stack and --processor go together"),
        ([], "give --stack and --processor, or --function"),
    ],
)
def test_bad_naming_is_one_line_and_exit_1(
    world: Callable[..., World],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    built = world(healthy())
    monkeypatch.setattr(preflight, "new_clients", lambda profile, region: (built.clients, REGION))
    assert cli.main(["preflight", *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert err.startswith(f"{cli.PROG} preflight: error: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["preflight", "--output", "yaml"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


def test_no_region_and_no_profile_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    assert cli.main(["preflight", "--function", "f"]) == 1
    assert "no AWS region: pass --region" in capsys.readouterr().err
    assert cli.main(["preflight", "--function", "f", "--profile", "nobody"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nobody" in err and "Traceback" not in err


def test_missing_credentials_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["preflight", "--function", "f", "--region", REGION]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Unable to locate credentials" in err


def test_a_missing_aws_sdk_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def without_botocore(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in {"boto3", "botocore"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_botocore)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["preflight", "--function", "f"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "needs boto3" in err and "pip install 'boto3>=1.40'" in err


class _Terminal:
    def __init__(self, tty: bool) -> None:
        self.text, self.tty = "", tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        return None


def test_progress_is_shown_on_a_terminal_only() -> None:
    terminal, pipe = _Terminal(tty=True), _Terminal(tty=False)
    for stream in (terminal, pipe):
        show = preflight._progress(stream)  # type: ignore[arg-type]
        show("the stack")
        show("identities")
    assert terminal.text.startswith("\rchecking the stack...")
    assert "\rchecking identities..." in terminal.text
    assert pipe.text == ""
