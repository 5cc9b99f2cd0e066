"""Lambda code and policy layer assets: exact content, hashes that depend only on content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from construct.synth_helpers import CUSTOM_POLICY, Synthesized, resources_of_type

from bounce_runtime.contract import OPERATOR_ONLY_PARTS
from bounce_runtime.core.policy import BouncePolicy, default_policy
from bounce_runtime.core.policy_json import compile_policy, load_policy_text
from cdk_ses_bounce import BounceProcessor
from cdk_ses_bounce.assets import (
    RUNTIME_BYTECODE_DIR,
    bytecode_name,
    modules_without_bytecode,
    runtime_package_dir,
)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def runtime_key(template: dict[str, Any]) -> str:
    (function,) = [
        f
        for f in resources_of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "bounce_runtime.handler.handler"
    ]
    key: str = function["Properties"]["Code"]["S3Key"]
    return key


def layer_key(template: dict[str, Any]) -> str:
    (layer,) = resources_of_type(template, "AWS::Lambda::LayerVersion").values()
    key: str = layer["Properties"]["Content"]["S3Key"]
    return key


def test_runtime_asset_holds_the_runtime_package_and_its_bytecode(example: Synthesized) -> None:
    asset = example.asset_dir(runtime_key(example.templates["SesBounceExample"]))
    source = runtime_package_dir()
    sources = {
        f"bounce_runtime/{name}"
        for name in files_under(source)
        if "__pycache__" not in name
        and not name.endswith(".pyc")
        and name.split("/", 1)[0] not in OPERATOR_ONLY_PARTS
    }
    # CPython 3.14 bytecode of each module whose source it matches (`make bytecode` builds all).
    stale = modules_without_bytecode(source, RUNTIME_BYTECODE_DIR)
    bytecode = {
        bytecode_name(Path(name)).as_posix()
        for name in sources
        if name.endswith(".py") and Path(name) not in stale
    }
    assert "bounce_runtime/handler.py" in sources
    # The operator's tools stay out of the function's code.
    assert "bounce_runtime/operations/preflight.py" not in sources
    assert not any(
        name.startswith(("bounce_runtime/cli/", "bounce_runtime/operations/"))
        for name in files_under(asset)
    )
    assert files_under(asset) == sources | bytecode
    for name in sources:
        relative = name.removeprefix("bounce_runtime/")
        assert (asset / name).read_bytes() == (source / relative).read_bytes()
    for name in bytecode:
        assert (asset / name).read_bytes() == (RUNTIME_BYTECODE_DIR / name).read_bytes()


def test_runtime_asset_hash_depends_only_on_content(
    example: Synthesized, composition: Synthesized
) -> None:
    # Each processor stages its own copy in a fresh temporary folder: same content, same hash.
    keys = {runtime_key(example.templates["SesBounceExample"])} | {
        runtime_key({"Resources": {k: v}})
        for k, v in composition.templates["Composed"]["Resources"].items()
        if v["Type"] == "AWS::Lambda::Function"
    }
    assert len(keys) == 1


def test_default_policy_layer_holds_the_default_policy(example: Synthesized) -> None:
    asset = example.asset_dir(layer_key(example.templates["SesBounceExample"]))
    assert files_under(asset) == {"cdk-ses-bounce/policy.json"}
    text = (asset / "cdk-ses-bounce/policy.json").read_text()
    assert text == compile_policy(default_policy())
    assert load_policy_text(text, full_check=True) == default_policy()


def test_custom_policy_layer_holds_the_canonical_policy(full_options: Synthesized) -> None:
    asset = full_options.asset_dir(layer_key(full_options.templates["Full"]))
    text = (asset / "cdk-ses-bounce/policy.json").read_text()
    policy = load_policy_text(text, full_check=True)
    assert text == compile_policy(BouncePolicy.from_dict(CUSTOM_POLICY))
    assert policy == BouncePolicy.from_dict(CUSTOM_POLICY)
    assert policy.rules[0].name == "keep-the-ceo"


def test_policy_object_and_its_dict_give_the_same_layer(
    new_stack: Callable[..., cdk.Stack],
) -> None:
    keys = []
    for policy in (CUSTOM_POLICY, BouncePolicy.from_dict(CUSTOM_POLICY)):
        stack = new_stack()
        processor = BounceProcessor(
            stack, "B", recipients=["a.example.com"], bounce_sender="b@example.com", policy=policy
        )
        layer = processor.policy_layer.node.default_child
        keys.append(stack.resolve(layer.content)["s3Key"])  # type: ignore[union-attr]
    default_stack = new_stack()
    default_processor = BounceProcessor(
        default_stack, "B", recipients=["a.example.com"], bounce_sender="b@example.com"
    )
    default_layer = default_processor.policy_layer.node.default_child
    default_key = default_stack.resolve(default_layer.content)["s3Key"]  # type: ignore[union-attr]
    assert keys[0] == keys[1] != default_key
