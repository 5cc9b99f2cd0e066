"""Snapshot of the example stack (app.py), with asset hashes scrubbed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from construct.synth_helpers import Synthesized
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
