"""The command line: no AWS call for --help, and every bad input one line on stderr."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from operations.pipeline import Pipeline, run

import bounce_runtime.operations.commands as commands
from bounce_runtime.operations.commands import add_commands
from bounce_runtime.operations.dead_letters import OUTCOME_CHECKED_FLAG

NOWHERE = [
    "--queue-url",
    "http://127.0.0.1:9/1/q",
    "--dead-letter-queue-url",
    "http://127.0.0.1:9/1/d",
]
LIST = ["dead-letters", "list"]
REPLAY = ["dead-letters", "replay"]

HELP_PROBE = """
import sys
from bounce_runtime.cli import main
for argv in (["dead-letters", "--help"], ["dead-letters", "list", "--help"],
             ["dead-letters", "replay", "--help"]):
    try:
        main(argv)
    except SystemExit as exit_:
        assert exit_.code == 0, argv
print(sorted(name for name in ("boto3", "botocore") if name in sys.modules))
"""


def test_help_imports_no_aws_sdk() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"
    assert "--i-checked-no-bounce-was-sent" in result.stdout


def test_add_commands_plugs_into_another_parser() -> None:
    parser = argparse.ArgumentParser(prog="python -m bounce_runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan")
    add_commands(commands)

    args = parser.parse_args([*REPLAY, "--reason", "ses-rejected", *NOWHERE])

    assert callable(args.run)
    assert (args.reason, args.yes, args.rate) == (["ses-rejected"], False, 1.0)
    assert callable(parser.parse_args([*LIST, *NOWHERE]).run)


@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        ([*REPLAY, *NOWHERE], "choose what to replay: --reason and/or --message-id", 2),
        ([*REPLAY, *NOWHERE, "--reason", "nonsense"], "unknown reason 'nonsense'; reasons: ", 2),
        (
            [*LIST, *NOWHERE, "--stack", "s", "--processor", "p"],
            "give the queue URLs or --stack and --processor, not both",
            2,
        ),
        ([*LIST, "--stack", "s"], "--stack and --processor go together", 2),
        ([*LIST], "give --dead-letter-queue-url, or --stack and --processor", 2),
        (
            [*REPLAY, "--dead-letter-queue-url", "http://127.0.0.1:9/1/d", "--reason", "expired"],
            "refusing to replay 'expired'",
            1,
        ),
        (
            [*REPLAY, "--dead-letter-queue-url", "u", "--reason", "ses-rejected"],
            "give --queue-url and --dead-letter-queue-url, or --stack and --processor",
            2,
        ),
        (
            [*LIST, "--dead-letter-queue-url", "https://sqs.example/1/dlq.fifo"],
            "https://sqs.example/1/dlq.fifo: a BounceProcessor's queues are standard, not FIFO",
            2,
        ),
        (
            [*REPLAY, *NOWHERE, "--reason", "ses-outcome-unknown", OUTCOME_CHECKED_FLAG],
            f"{OUTCOME_CHECKED_FLAG} with queue URLs needs --function-name",
            2,
        ),
    ],
)
def test_bad_input_is_one_line_with_its_status(
    argv: list[str],
    message: str,
    status: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Options are checked before any AWS call is made: the queues' pairing check never runs.
    monkeypatch.setattr(commands, "check_queue_pair", lambda sqs, queues: None)

    result, out, err = run(argv, capsys)

    assert (result, out) == (status, "")
    assert err.startswith(f"python -m bounce_runtime dead-letters: error: {message}")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [*REPLAY, *NOWHERE, "--reason", "ses-rejected", "--rate", "0"],
        [*REPLAY, *NOWHERE, "--reason", "ses-rejected", "--rate", "nan"],
        [*REPLAY, *NOWHERE, "--reason", "ses-rejected", "--rate", "1000"],
        [*REPLAY, *NOWHERE, "--reason", "ses-rejected", "--rate", "0.001"],
        [*LIST, *NOWHERE, "--max-messages", "0"],
        [*LIST, *NOWHERE, "--max-messages", "many"],
        [*LIST, *NOWHERE, "--hold-seconds", "1"],
        [*LIST, *NOWHERE, "--wait-seconds", "21"],
        ["dead-letters"],
    ],
)
def test_usage_errors_exit_2_without_a_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(argv, capsys)

    assert status == 2
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("python -m bounce_runtime dead-letters")


def test_an_aws_error_is_one_line(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    missing = pipeline.dlq_url + "-missing"

    status, out, err = run(
        [*LIST, "--dead-letter-queue-url", missing, "--wait-seconds", "0"], capsys
    )

    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert "NonExistentQueue" in err or "does not exist" in err


def test_an_unreachable_endpoint_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")

    status, _, err = run(
        [*LIST, "--dead-letter-queue-url", "http://127.0.0.1:9/1/d", "--region", "eu-west-1"],
        capsys,
    )

    assert status == 1
    assert err == (
        "python -m bounce_runtime dead-letters: error: Could not connect to the endpoint URL: "
        '"http://127.0.0.1:9/"\n'
    )


def test_an_unexpected_error_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("StackResourceDetail")

    monkeypatch.setattr(commands, "find_processor_queues", broken)

    status, _, err = run([*LIST, "--stack", "s", "--processor", "p"], capsys)

    assert status == 1
    assert err == (
        "python -m bounce_runtime dead-letters: error: unexpected KeyError: 'StackResourceDetail'\n"
    )
