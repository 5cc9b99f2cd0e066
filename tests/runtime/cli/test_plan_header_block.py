"""``plan --headers-from``: the header guards see what the Lambda sees, the cap included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bounce_runtime.cli import main
from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES
from support.events import EVENTS_DIR

TRUNCATED = str(EVENTS_DIR / "received-headers-truncated.json")
SOON = "2015-09-11T20:40:00Z"


def plan(eml: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    argv = ["plan", "--notification", TRUNCATED, "--bounce-sender", "b@example.com"]
    assert main([*argv, "--now", SOON, "--headers-from", str(eml)]) == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"X-Autoreply: yes", "auto-submitted"),
        (b"Precedence: auto_reply", "auto-submitted"),
        (b"X-Auto-Response-Suppress: DR, OOF, AutoReply", "no-ndr-requested"),
    ],
)
def test_plan_shows_the_marker_found_in_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: bytes, reason: str
) -> None:
    eml = tmp_path / "message.eml"
    eml.write_bytes(b"From: x@example.net\r\n" + header + b"\r\n\r\nbody\r\n")
    document = plan(eml, capsys)
    assert (document["outcome"], document["reason"], document["request"]) == (
        "suppress",
        reason,
        None,
    )


def test_plan_shows_a_header_block_past_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "message.eml"
    eml.write_bytes(b"X-Pad: " + b"p" * HEADER_BLOCK_MAX_BYTES + b"\r\n\r\nbody\r\n")
    document = plan(eml, capsys)
    assert (document["outcome"], document["reason"], document["request"]) == (
        "suppress",
        "header-block-too-large",
        None,
    )
    assert document["decisions"] == [
        {
            "recipient": "recipient@example.com",
            "action": "suppress",
            "reason": "header-block-too-large",
            "rule": "default",
            "bounce_type": None,
            "dsn_status": None,
        }
    ]
    eml.write_bytes(b"X-Pad: " + b"p" * 100 + b"\r\n\r\nbody\r\n")
    assert plan(eml, capsys)["outcome"] == "bounce"
