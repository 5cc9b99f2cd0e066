"""The wheel installs the operator command: `cdk-ses-bounce` (and `python -m bounce_runtime`)
runs every subcommand from a fresh virtualenv that holds only the wheel and the AWS SDK, against
a moto server; without the SDK, a command that calls AWS says what to install.

The fresh venv gets the wheel with `--no-deps` and, as its only other packages, boto3 and its own
dependencies linked from the test venv (no aws-cdk-lib, moto or pytest: the commands must not
need them), so the test costs seconds and no download."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from bounce_runtime.cli import CONSOLE_COMMAND
from bounce_runtime.operations.permissions import COMMAND_PERMISSIONS
from support.aws_env import moto_server

# boto3 and what it imports (its dependencies and theirs).
AWS_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
SUBCOMMANDS = [command.split() for command in COMMAND_PERMISSIONS]


def _venv(root: Path, wheel: Path, *, with_sdk: bool) -> Path:
    """A venv without pip (fast) into which the test venv's pip installs the wheel."""
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run(
        [*pip, "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    if with_sdk:
        site = Path(
            subprocess.run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        linked = root / "aws-sdk"
        linked.mkdir()
        for module in AWS_SDK:
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin is not None, module
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            (linked / source.name).symlink_to(source)
        (site / "aws-sdk.pth").write_text(f"{linked}\n")
    return root


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel_file: Path) -> Path:
    return _venv(tmp_path_factory.mktemp("fresh") / "venv", wheel_file, with_sdk=True)


@pytest.fixture(scope="module")
def without_sdk(tmp_path_factory: pytest.TempPathFactory, wheel_file: Path) -> Path:
    return _venv(tmp_path_factory.mktemp("bare") / "venv", wheel_file, with_sdk=False)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def _environment(endpoint: str | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_CONFIG_FILE="/nonexistent/config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
        AWS_MAX_ATTEMPTS="1",  # moto answers 500 to calls it lacks: no retries for those
    )
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def _run(
    venv_root: Path, *args: str, endpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv_root / "bin" / CONSOLE_COMMAND), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(endpoint),
        cwd=venv_root,
    )


def test_the_wheel_declares_the_console_command_and_boto3(installed: Path) -> None:
    code = (
        "import importlib.metadata as m, json; d = m.distribution('cdk-ses-bounce'); "
        "print(json.dumps([[e.name, e.value] for e in d.entry_points], ) ); "
        "print(json.dumps(d.requires))"
    )
    out = subprocess.run(
        [installed / "bin" / "python", "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert json.loads(out[0]) == [[CONSOLE_COMMAND, "bounce_runtime.cli:main"]]
    assert any(r.startswith("boto3") and "extra" not in r for r in json.loads(out[1]))


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(installed: Path, command: list[str]) -> None:
    result = _run(installed, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {CONSOLE_COMMAND} {' '.join(command)}")


def test_python_dash_m_still_works(installed: Path) -> None:
    result = subprocess.run(
        [installed / "bin" / "python", "-m", "bounce_runtime", "--help"],
        capture_output=True,
        text=True,
        env=_environment(),
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m bounce_runtime")


def test_the_fresh_venv_has_no_cdk_and_no_checkout(installed: Path) -> None:
    code = (
        "import importlib.util as u, bounce_runtime; "
        "print(u.find_spec('aws_cdk') is None, u.find_spec('moto') is None); "
        "print(bounce_runtime.__file__)"
    )
    result = subprocess.run(
        [installed / "bin" / "python", "-c", code],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=installed,
    )
    first, location = result.stdout.splitlines()
    assert first == "True True"
    assert Path(location).is_relative_to(installed)


def test_dead_letters_list_against_moto(installed: Path, moto_endpoint: str) -> None:
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.create_queue(QueueName="installed-dlq")["QueueUrl"]
    result = _run(
        installed,
        "dead-letters",
        "list",
        "--dead-letter-queue-url",
        url,
        "--wait-seconds",
        "0",
        endpoint=moto_endpoint,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the dead-letter queue is empty"


def test_preflight_against_moto_reports_every_check_without_a_traceback(
    installed: Path, moto_endpoint: str
) -> None:
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dlq = sqs.create_queue(QueueName="preflight-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="a dead letter")
    result = _run(
        installed,
        "preflight",
        "--rule-set",
        "NoSuchSet",
        "--rule",
        "R",
        "--dead-letter-queue-url",
        dlq,
        "--output",
        "json",
        endpoint=moto_endpoint,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert statuses["receiving-region"] == "ok"
    assert statuses["rule-set-active"] == "problem"  # moto: no rule set is active
    assert statuses["dead-letters"] == "problem"
    assert statuses["account-sending"] == "problem"  # moto's quota is the sandbox's


def test_without_the_aws_sdk_a_command_says_what_to_install(without_sdk: Path) -> None:
    assert _run(without_sdk, "plan", "--help").returncode == 0
    result = _run(without_sdk, "dead-letters", "list", "--dead-letter-queue-url", "https://q")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{CONSOLE_COMMAND}: error: this command calls AWS and needs boto3")
    assert "pip install 'boto3>=1.40'" in line
    result = _run(without_sdk, "preflight", "--function", "f")
    assert result.returncode == 1 and "needs boto3" in result.stderr
