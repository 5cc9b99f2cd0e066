"""Snapshot of the example stack (app.py), with asset hashes scrubbed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from construct.synth_helpers import RECOMMENDED_FLAGS, REPO_ROOT, Synthesized
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def scrub_asset_hashes(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every asset hash (S3 keys, asset metadata) replaced by a marker."""
    scrubbed: dict[str, Any] = json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))
    return scrubbed


def test_scrubbing_replaces_asset_hashes_only() -> None:
    digest = "0123456789abcdef" * 4
    template = {"Code": {"S3Key": f"{digest}.zip"}, "Name": "keep-me", "Short": digest[:63]}
    assert scrub_asset_hashes(template) == {
        "Code": {"S3Key": "<asset-hash>.zip"},
        "Name": "keep-me",
        "Short": digest[:63],
    }


def test_example_stack_matches_snapshot(
    example: Synthesized, snapshot_json: SnapshotAssertion
) -> None:
    assert scrub_asset_hashes(example.templates["SesBounceExample"]) == snapshot_json


def test_example_stack_under_the_recommended_flags_matches_snapshot(
    example_recommended: Synthesized, snapshot_json: SnapshotAssertion
) -> None:
    template = example_recommended.templates["SesBounceExample"]
    assert scrub_asset_hashes(template) == snapshot_json


def test_cdk_json_carries_the_flags_cdk_init_writes_for_the_pinned_cli() -> None:
    # `cdk init` writes these, sorted, into a new app's cdk.json context.
    cli_flags = json.loads(
        (
            REPO_ROOT / "node_modules/aws-cdk/lib/init-templates/.recommended-feature-flags.json"
        ).read_text()
    )
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert context == cli_flags
    assert list(context) == sorted(context)
    assert context == RECOMMENDED_FLAGS
