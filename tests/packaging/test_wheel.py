"""Build the wheel, install it into a fresh virtualenv and synthesize a separate consumer app."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from bounce_runtime.contract import OPERATOR_ONLY_PARTS
from cdk_ses_bounce.assets import RUNTIME_BYTECODE_DIR, bytecode_name, modules_without_bytecode

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SOURCE = REPO_ROOT / "runtime" / "bounce_runtime"


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


CONSUMER_APP = """
import aws_cdk as cdk
import bounce_runtime
import cdk_ses_bounce
from cdk_ses_bounce import BounceProcessor

app = cdk.App(outdir="cdk.out")
stack = cdk.Stack(app, "Consumer", env=cdk.Environment(account="123456789012", region="us-east-1"))
BounceProcessor(
    stack, "Bounces", recipients=["old.example.org"], bounce_sender="bounces@example.org"
)
app.synth()
print(cdk_ses_bounce.__file__)
print(bounce_runtime.__file__)
"""


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory, wheel_file: Path) -> tuple[Path, list[str]]:
    """A consumer project with the wheel installed in its own venv, synthesized once."""
    work = tmp_path_factory.mktemp("consumer")
    wheel = wheel_file
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], cwd=work)
    # Dependencies (aws-cdk-lib, constructs, jsii) come from the test venv, appended after the
    # fresh venv's own site-packages so the installed wheel, not the checkout, is what imports.
    fresh_site = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work
        ).strip()
    )
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    app_dir = work / "consumer"
    app_dir.mkdir()
    (app_dir / "consumer_app.py").write_text(CONSUMER_APP)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    printed = run([python, "consumer_app.py"], cwd=app_dir, env=env).strip().splitlines()
    return app_dir / "cdk.out", printed[-2:]


def test_consumer_imports_the_installed_wheel(consumer: tuple[Path, list[str]]) -> None:
    _, (construct_file, runtime_file) = consumer
    for module_file in (construct_file, runtime_file):
        assert "site-packages" in Path(module_file).parts
        assert not Path(module_file).is_relative_to(REPO_ROOT)


def test_lambda_asset_holds_the_runtime_package_and_its_bytecode(
    consumer: tuple[Path, list[str]],
) -> None:
    cdk_out, _ = consumer
    template = json.loads((cdk_out / "Consumer.template.json").read_text())
    functions = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "bounce_runtime.handler.handler"
    ]
    assert len(functions) == 1
    asset_hash = functions[0]["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset_dir = cdk_out / f"asset.{asset_hash}"
    shipped = sorted(str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file())
    sources = [
        Path("bounce_runtime") / p.relative_to(RUNTIME_SOURCE)
        for p in RUNTIME_SOURCE.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix != ".pyc"
        and p.relative_to(RUNTIME_SOURCE).parts[0] not in OPERATOR_ONLY_PARTS
    ]
    stale = modules_without_bytecode(RUNTIME_SOURCE, RUNTIME_BYTECODE_DIR)
    bytecode = [bytecode_name(p) for p in sources if p.suffix == ".py" and p not in stale]
    assert shipped == sorted(str(p) for p in sources + bytecode)
    assert "bounce_runtime/handler.py" in shipped
    for name in bytecode:
        assert (asset_dir / name).read_bytes() == (RUNTIME_BYTECODE_DIR / name).read_bytes()
