"""``plan --headers-from``: the header guards see what the Lambda sees, the cap included."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings

from bounce_runtime.cli import main
from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES
from support.events import EVENTS_DIR
from support.header_blocks import blocks_with_a_guard

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


# Issue 17 (3): the header block as RFC 5322 writes it. 400 Received lines, an obsolete or odd
# line, then a guard header: the stdlib parser stopped at the odd line and called the block whole.
RECEIVED_400 = b"".join(b"Received: from relay%d.example.net\r\n" % n for n in range(400))


@pytest.mark.parametrize(
    "odd_line",
    [b"X-Mailer : x", b"X-Mailer\t: x", b"X-Mailer: x\r\r", b"X\x00Mailer: x", b"X-Mail\xe9r: x"],
    ids=["space-before-colon", "tab-before-colon", "bare-cr-cr", "nul-in-name", "8-bit-in-name"],
)
@pytest.mark.parametrize(
    ("guard", "reason"),
    [
        (b"Auto-Submitted: auto-replied", "auto-submitted"),
        (b"Precedence: bulk", "list-traffic"),
        (b"List-Id: <news.example.net>", "list-traffic"),
        (b"X-Auto-Response-Suppress: NDR", "no-ndr-requested"),
    ],
)
def test_plan_sees_a_guard_header_behind_an_obsolete_or_odd_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    odd_line: bytes,
    guard: bytes,
    reason: str,
) -> None:
    eml = tmp_path / "message.eml"
    eml.write_bytes(RECEIVED_400 + odd_line + b"\r\n" + guard + b"\r\n\r\nbody\r\n")
    document = plan(eml, capsys)
    assert (document["outcome"], document["reason"], document["request"]) == (
        "suppress",
        reason,
        None,
    )


def test_plan_suppresses_a_block_with_an_unreadable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "message.eml"
    eml.write_bytes(RECEIVED_400 + b"X\x00Mailer: x\r\nSubject: hi\r\n\r\nbody\r\n")
    document = plan(eml, capsys)
    assert (document["outcome"], document["reason"]) == ("suppress", "header-block-unreadable")
    # The same block with the obsolete forms only is read whole and bounced.
    eml.write_bytes(RECEIVED_400 + b"X-Mailer : x\r\nX-Other\t: y\r\n\r\nbody\r\n")
    assert plan(eml, capsys)["outcome"] == "bounce"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('"mailer-daemon"@example.com', "daemon-sender"),
        ("@relay.example.com:mailer-daemon@example.com", "daemon-sender"),
        ("< >", "null-sender"),
    ],
)
def test_plan_recognises_every_reverse_path_form_of_a_daemon_or_null_sender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, reason: str
) -> None:
    data = json.loads(Path(TRUNCATED).read_text(encoding="utf-8"))
    data["mail"]["source"] = source
    data["mail"]["headers"].append({"name": " Auto-Submitted ", "value": "no"})
    notification = tmp_path / "notification.json"
    notification.write_text(json.dumps(data), encoding="utf-8")
    argv = ["plan", "--notification", str(notification), "--bounce-sender", "b@example.com"]
    assert main([*argv, "--now", SOON]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["outcome"], document["reason"]) == ("suppress", reason)


def test_plan_matches_a_notification_header_name_with_surrounding_spaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(Path(TRUNCATED).read_text(encoding="utf-8"))
    data["mail"]["headers"].append({"name": " Auto-Submitted ", "value": "auto-replied"})
    notification = tmp_path / "notification.json"
    notification.write_text(json.dumps(data), encoding="utf-8")
    eml = tmp_path / "message.eml"
    eml.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    argv = ["plan", "--notification", str(notification), "--bounce-sender", "b@example.com"]
    assert main([*argv, "--now", SOON, "--headers-from", str(eml)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["outcome"], document["reason"]) == ("suppress", "auto-submitted")


def test_plan_decides_a_notification_whose_unused_fields_have_another_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(Path(TRUNCATED).read_text(encoding="utf-8"))
    data["receipt"]["processingTimeMillis"] = "574"  # "a string", says the SES developer guide
    data["receipt"]["dmarcPolicy"] = {"status": "none"}
    notification = tmp_path / "notification.json"
    notification.write_text(json.dumps(data), encoding="utf-8")
    eml = tmp_path / "message.eml"
    eml.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    argv = ["plan", "--notification", str(notification), "--bounce-sender", "b@example.com"]
    assert main([*argv, "--now", SOON, "--headers-from", str(eml)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["outcome"], document["reason"]) == ("bounce", "policy")


@settings(max_examples=60, deadline=None)
@given(raw=blocks_with_a_guard())
def test_plan_never_bounces_a_generated_block_with_a_guard_header(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        eml = Path(folder) / "message.eml"
        eml.write_bytes(raw)
        argv = ["plan", "--notification", TRUNCATED, "--bounce-sender", "b@example.com"]
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            assert main([*argv, "--now", SOON, "--headers-from", str(eml)]) == 0
    assert json.loads(output.getvalue())["outcome"] == "suppress"
