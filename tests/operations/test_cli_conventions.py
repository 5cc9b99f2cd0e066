"""The AWS-tool conventions of the dead-letters commands: --profile, --output, exit codes, and
one line on stderr (never a traceback) even without boto3."""

from __future__ import annotations

import json
import sys

import boto3
import pytest
from operations.pipeline import Pipeline, run

import bounce_runtime.operations.command_support as command_support


def test_an_unknown_profile_is_one_line_and_status_1(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh session (the fixture shares cached ones): boto3 looks the profile up.
    monkeypatch.setattr(
        command_support,
        "new_session",
        lambda *, profile, region: boto3.session.Session(profile_name=profile, region_name=region),
    )

    status, out, err = run(
        ["dead-letters", "list", *pipeline.dead_letter_queue(), "--profile", "no-such-profile"],
        capsys,
    )

    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert "no-such-profile" in err


def test_the_profile_and_region_reach_the_session(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[str | None, str | None]] = []
    real = command_support.new_session

    def spy(*, profile: str | None = None, region: str | None = None) -> object:
        made.append((profile, region))
        return real(region=region)

    monkeypatch.setattr(command_support, "new_session", spy)

    status, _, _ = run(
        ["dead-letters", "list", *pipeline.dead_letter_queue(), "--profile", "ops",
         "--region", "us-east-1"],
        capsys,
    )  # fmt: skip

    assert status == 0
    assert made == [("ops", "us-east-1")]


def test_output_json_and_the_deprecated_json_flag_print_the_same_document(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.dead_letter("o-1", "expired")
    listing = ["dead-letters", "list", *pipeline.dead_letter_queue()]

    new = run([*listing, "--output", "json"], capsys)
    old = run([*listing, "--json"], capsys)

    assert new[0] == old[0] == 0
    assert json.loads(new[1]) == json.loads(old[1])
    assert json.loads(new[1])["reasons"][0]["reason"] == "expired"


def test_an_unknown_output_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(
        ["dead-letters", "list", "--dead-letter-queue-url", "u", "--output", "yaml"], capsys
    )

    assert status == 2
    assert "invalid choice: 'yaml'" in err


def test_without_boto3_the_command_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("botocore", "botocore.exceptions", "boto3"):
        monkeypatch.setitem(sys.modules, name, None)

    status, out, err = run(["dead-letters", "list", "--dead-letter-queue-url", "u"], capsys)

    assert (status, out) == (1, "")
    assert "Traceback" not in err
    assert err.startswith(
        "python -m bounce_runtime: error: this command calls AWS and needs boto3 (module "
    )
    assert "pip install 'boto3>=1.40'" in err and err.count("\n") == 1


def test_a_long_replay_reports_progress_on_stderr(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command_support, "PROGRESS_MIN_MESSAGES", 20)
    monkeypatch.setattr(command_support, "PROGRESS_EVERY", 10)
    pipeline.bulk(25, "expired")  # every one refused: nothing is sent, all are read

    status, out, err = run(
        ["dead-letters", "replay", *pipeline.where(), "--reason", "ses-rejected", "--output",
         "json"],
        capsys,
    )  # fmt: skip

    assert status == 0
    assert json.loads(out)["read"] == 25
    assert err.splitlines() == [
        "read 10 of about 25 dead letters",
        "read 20 of about 25 dead letters",
    ]
