"""Hostile input to ``plan`` and ``validate-policy``: whatever the flags and files hold, the command
ends with one clear line on stderr (exit status 1, or 2 for usage errors) or its output, and never
with a traceback.

The commands run in-process through ``main`` with the streams a real process has: stdout strict
UTF-8, stderr UTF-8 with backslash escapes (CPython's defaults), so an encoding failure shows.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounce_runtime.cli import main
from support.events import EVENTS_DIR, notification

CLEAN = str(EVENTS_DIR / "received-clean.json")
SOON = "2015-09-11T20:40:00Z"
PREFIX = "python -m bounce_runtime: error: "


class Outcome(NamedTuple):
    status: int
    out: str
    err: str


def run(argv: list[str], stdin: bytes = b"", stdout_encoding: str = "utf-8") -> Outcome:
    """``main(argv)`` with real-process streams; anything but a return or SystemExit fails."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"),
        io.TextIOWrapper(out_bytes, encoding=stdout_encoding, errors="strict"),
        io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace"),
    )
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = streams
    try:
        try:
            status = main(argv)
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return Outcome(
        status, out_bytes.getvalue().decode(stdout_encoding), err_bytes.getvalue().decode()
    )


def one_error_line(outcome: Outcome) -> str:
    """The error of a failed command: exactly one line after the prefix, nothing on stdout."""
    assert (outcome.status, outcome.out) == (1, ""), outcome
    assert outcome.err.startswith(PREFIX) and outcome.err.count("\n") == 1, outcome.err
    assert "Traceback" not in outcome.err
    assert "(please report it)" not in outcome.err  # classified, not caught as a bug
    return outcome.err[len(PREFIX) : -1]


def plan(*extra: str, notification_path: str = CLEAN, stdin: bytes = b"") -> Outcome:
    argv = ["plan", "--notification", notification_path, "--bounce-sender", "b@example.com"]
    return run([*argv, "--now", SOON, *extra], stdin=stdin)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Any]:
    def write(name: str, content: str | bytes) -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    yield write


# Files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "what"),
    [
        ("--notification", "notification"),
        ("--policy", "policy"),
        ("--recipient-arns", "recipient ARNs"),
        ("--rule-recipients-file", "rule recipients"),
    ],
)
def test_a_file_that_is_not_utf8_is_named(flag: str, what: str, files: Any) -> None:
    path = files("latin1.json", '{"k": "caf\u00e9"}'.encode("latin-1"))
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com", "--now", SOON]
    if flag == "--notification":
        argv[2] = path
    else:
        argv += [flag, path]
    error = one_error_line(run(argv))
    assert error.startswith(f"cannot read {what} {path!r}: 'utf-8' codec can't decode byte 0xe9")


def test_standard_input_that_is_not_utf8_is_named() -> None:
    error = one_error_line(plan(notification_path="-", stdin=b'{"notificationType": "\xff"}'))
    assert error.startswith("cannot read notification standard input: 'utf-8' codec can't decode")


def test_validate_policy_names_a_file_that_is_not_utf8_or_a_directory(
    files: Any, tmp_path: Path
) -> None:
    path = files("p.json", b'{"version": 1, "message": {"explanation": "\xe9"}}')
    error = one_error_line(run(["validate-policy", path]))
    assert error.startswith(f"cannot read policy {path!r}: 'utf-8' codec can't decode byte 0xe9")
    error = one_error_line(run(["validate-policy", str(tmp_path)]))
    assert error.startswith(f"cannot read policy {str(tmp_path)!r}: [Errno ")  # 21; 31 on WASM
    assert "Is a directory" in error


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--notification", "body: not JSON (RecursionError"),
        ("--policy", "invalid policy {path!r}: policy: not valid JSON"),
        ("--rule-recipients-file", "--rule-recipients-file {path!r}: not valid JSON"),
        ("--recipient-arns", "recipient ARNs {path!r}: not valid JSON"),
    ],
)
def test_a_deeply_nested_file_is_one_line(flag: str, expected: str, files: Any) -> None:
    path = files("deep.json", '{"a": ' * 100_000 + "1" + "}" * 100_000)
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com", "--now", SOON]
    if flag == "--notification":
        argv[2] = path
    else:
        argv += [flag, path]
    assert one_error_line(run(argv)).startswith(expected.format(path=path))


def test_validate_policy_of_a_deeply_nested_file_is_one_line(files: Any) -> None:
    path = files("deep.json", "[" * 100_000 + "]" * 100_000)
    error = one_error_line(run(["validate-policy", path]))
    assert error.startswith(f"invalid policy {path!r}: policy: not valid JSON")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # Integers longer than Python converts (4,300 digits) and floats beyond the double range.
        ('{"version": ' + "9" * 5000 + "}", "policy: not valid JSON (Exceeds the limit"),
        ('{"version": 1e999}', "version: inf is not a supported policy version (1)"),
        (
            '{"rules": [{"match": {"min_size_bytes": 1e999}, "action": {"type": "accept"}}]}',
            "rules[0].match.min_size_bytes: inf is not a whole number of bytes from 0 to "
            "9007199254740991",
        ),
        ("", "policy: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        ("\ufeff{}", "policy: not valid JSON (Unexpected UTF-8 BOM"),
    ],
)
def test_validate_policy_refuses_huge_numbers_and_odd_text(
    content: str, expected: str, files: Any
) -> None:
    path = files("p.json", content)
    assert one_error_line(run(["validate-policy", path])).startswith(
        f"invalid policy {path!r}: {expected}"
    )


def test_a_notification_with_a_huge_number_is_malformed(files: Any) -> None:
    data = json.dumps(notification())
    huge = data.replace('"processingTimeMillis": 574', '"processingTimeMillis": ' + "9" * 5000)
    assert huge != data
    assert one_error_line(plan(notification_path=files("n.json", huge))).startswith(
        "body: not JSON (ValueError: Exceeds the limit (4300 digits)"
    )


# Lone surrogates and what UTF-8 cannot encode ------------------------------------------------


def test_a_lone_surrogate_in_a_policy_is_named(files: Any) -> None:
    # Every text field: test_vocabulary; here, both commands name the file and the field.
    policy_file = files("p.json", json.dumps({"message": {"explanation": "gone \ud800"}}))
    expected = (
        f"invalid policy {policy_file!r}: message.explanation: 'gone \\ud800' contains a lone "
        "surrogate (U+D800), not valid Unicode"
    )
    assert one_error_line(run(["validate-policy", policy_file])) == expected
    assert one_error_line(plan("--policy", policy_file)) == expected


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--bounce-sender", "b@ex\udcffample.com"),
        ("--bounce-sender-arn", "arn:aws:ses:us-east-1:123456789012:identity/\udcff.example"),
        ("--now", "2024-05-01T12:00:00\udcff"),
        ("--rule-recipients", "ex\udcffample.com"),
        ("--mail-bucket", "bucket\udcff"),
        ("--object-key-prefix", "inbound/\udcff/"),
    ],
)
def test_a_flag_that_utf8_cannot_encode_is_named(flag: str, value: str) -> None:
    # Arguments that are not UTF-8 reach sys.argv as lone surrogates (surrogateescape).
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com", "--now", SOON]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    if flag == "--object-key-prefix":
        argv += ["--mail-bucket", "inbound-mail-bucket"]
    assert one_error_line(run(argv)) == (
        f"{flag} {value!r} contains a lone surrogate (U+DCFF), not valid Unicode"
    )


def test_a_lone_surrogate_in_the_recipient_arns_file_is_named(files: Any) -> None:
    arns = files(
        "arns.json", json.dumps({"example.com": "arn:aws:ses:us-east-1:1:identity/\ud800"})
    )
    assert one_error_line(plan("--recipient-arns", arns)) == (
        f"recipient ARNs {arns!r}: 'example.com' maps to "
        "'arn:aws:ses:us-east-1:1:identity/\\ud800', which is not an SES identity ARN "
        "arn:<partition>:ses:<region>:<account>:identity/<address or domain>"
    )
    keys = files("keys.json", json.dumps({"\u212aelvin.example": "x"}))
    assert one_error_line(plan("--recipient-arns", keys)) == (
        f"recipient ARNs {keys!r}: the key '\u212aelvin.example' is neither a domain nor a "
        "bare address"
    )


def test_a_file_name_that_is_not_utf8_is_escaped_not_a_crash(tmp_path: Path) -> None:
    name = os.fsdecode(b"policy-\xff.json")  # '\udcff' in the name: any bytes make a file name
    try:
        (tmp_path / name).write_text('{"version": 1}', encoding="utf-8")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses names that are not UTF-8")
    outcome = run(["validate-policy", str(tmp_path / name)])
    assert (outcome.status, outcome.err) == (0, "")
    assert outcome.out.startswith(f"ok: {tmp_path}/policy-\\udcff.json: 0 rules")
    missing = str(tmp_path / os.fsdecode(b"absent-\xff.json"))
    assert one_error_line(run(["validate-policy", missing])).startswith(
        f"cannot read policy {missing!r}: "
    )


def test_the_plan_is_json_escapes_when_stdout_cannot_carry_the_text(files: Any) -> None:
    path = files("n.json", json.dumps(notification(source="j\u00f6rg@example.net")))
    argv = ["plan", "--notification", path, "--bounce-sender", "b@example.com"]
    outcome = run([*argv, "--now", "2024-05-01T12:05:00Z"], stdout_encoding="ascii")
    assert (outcome.status, outcome.err) == (0, "")
    assert '"sender": "j\\u00f6rg@example.net"' in outcome.out
    assert json.loads(outcome.out)["sender"] == "j\u00f6rg@example.net"
    utf8 = run([*argv, "--now", "2024-05-01T12:05:00Z"])
    assert '"sender": "j\u00f6rg@example.net"' in utf8.out  # readable where it can be


# Lookalikes, numbers, sizes ------------------------------------------------------------------


@pytest.mark.parametrize("size", ["\u0661\u0660\u0660\u0660", "\uff11", "9" * 5000, "1e3", "-1"])
def test_an_object_size_that_is_not_ascii_digits_is_a_usage_error(size: str) -> None:
    outcome = plan("--object-size", size)
    assert outcome.status == 2 and outcome.out == ""
    assert "Traceback" not in outcome.err
    assert f"argument --object-size: {size!r} is not a whole number of bytes >= 0" in outcome.err


@pytest.mark.parametrize(
    "now",
    [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "2024-05-01T12:00:00+\u0660\u0660:00",
        "\uff12024-05-01T12:00:00Z",
        "2024-05-01T12:00:00+25:00",
        "\x00",
    ],
)
def test_an_extreme_or_lookalike_now_is_one_line(now: str) -> None:
    error = one_error_line(plan("--now", now))
    assert error.startswith(f"--now {now!r}: ")


def test_a_status_with_arabic_indic_digits_never_reaches_the_plan(files: Any) -> None:
    policy = files(
        "p.json", json.dumps({"default": {"type": "bounce", "dsn": {"status": "5.\u0661.\u0661"}}})
    )
    assert one_error_line(plan("--policy", policy)) == (
        f"invalid policy {policy!r}: default.dsn.status: '5.\u0661.\u0661' is not an RFC 3463 "
        "status: class.subject.detail, class 2, 4 or 5, e.g. 5.1.1"
    )


def test_more_recipients_than_one_request_carries_is_one_line(files: Any) -> None:
    recipients = [f"r{i}@example.com" for i in range(101)]
    path = files("n.json", json.dumps(notification(recipients=recipients)))
    outcome = plan("--now", "2024-05-01T12:05:00Z", notification_path=path)
    outcome = run(
        ["plan", "--notification", path, "--bounce-sender", "b@example.com",
         "--now", "2024-05-01T12:05:00Z"]
    )  # fmt: skip
    assert one_error_line(outcome) == (
        "BouncedRecipientInfoList: 101 recipients, more than the 100 one SendBounce request may "
        "carry (SES documents no bound; 100 is the recipients per message every SMTP server "
        "accepts, RFC 5321 4.5.3.1.8)"
    )
    fits = files("fits.json", json.dumps(notification(recipients=recipients[:100])))
    ok = run(["plan", "--notification", fits, "--bounce-sender", "b@example.com",
              "--now", "2024-05-01T12:05:00Z"])  # fmt: skip
    assert ok.status == 0 and len(json.loads(ok.out)["request"]["BouncedRecipientInfoList"]) == 100


def test_a_message_id_longer_than_ses_writes_is_malformed(files: Any) -> None:
    path = files("n.json", json.dumps(notification(message_id="m" * 101)))
    assert one_error_line(plan(notification_path=path)) == (
        "mail.messageId: expected an SES message id of at most 100 characters, got 101 "
        f'characters ("{"m" * 56}...)'
    )


# Anything at all -----------------------------------------------------------------------------

_FLAGS = ["--notification", "--bounce-sender", "--bounce-sender-arn", "--recipient-arns",
          "--policy", "--object-size", "--headers-from", "--now", "--rule-recipients",
          "--rule-recipients-file", "--mail-bucket", "--object-key-prefix"]  # fmt: skip
_HOSTILE = st.sampled_from(
    ["", "-", "\udcff", "\x00", "b@example.com", "a@b@example.com", "<b@example.com>",
     "9" * 5000, "-1", "\u0661", "1e999", "9999-12-31T23:59:59-12:00", "2024-05-01T12:00:00Z",
     "dns; \u212a.example", "\u212aelvin.example", "@", "*", "[", "{}", "--help-not"]
)  # fmt: skip
_CONTENT = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [b"[" * 5000, b'{"a": ' * 5000, b"9" * 5000, b"\xef\xbb\xbf{}", b"null", b"[]",
         json.dumps(notification()).encode(), json.dumps({"version": 1e999}).encode(),
         b'{"message": {"explanation": "\\ud800"}}', b'"\\udcff"']
    ),
)  # fmt: skip


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    command=st.sampled_from(["plan", "plan", "validate-policy"]),
    source=st.sampled_from(["FILE", "-", CLEAN]),
    sender=st.one_of(st.just("b@example.com"), _HOSTILE),
    pairs=st.lists(st.tuples(st.sampled_from(_FLAGS), st.one_of(_HOSTILE, st.just("FILE"))),
                   max_size=4),
    content=_CONTENT,
)  # fmt: skip
def test_no_input_makes_a_traceback(
    command: str,
    source: str,
    sender: str,
    pairs: list[tuple[str, str]],
    content: bytes,
    tmp_path: Path,
) -> None:
    file = tmp_path / "input"
    file.write_bytes(content)

    def value(text: str) -> str:
        return str(file) if text == "FILE" else text

    if command == "plan":
        argv = ["plan", "--notification", value(source), "--bounce-sender", sender]
    else:
        argv = ["validate-policy", value(source)]
    for flag, text in pairs:
        argv += [flag, value(text)]
    outcome = run(argv, stdin=content)
    assert outcome.status in (0, 1, 2), outcome
    assert "Traceback" not in outcome.err
    if outcome.status == 1:
        one_error_line(outcome)
    elif outcome.status == 2:
        assert outcome.out == ""
        last = outcome.err.splitlines()[-1]  # argparse: the usage, then one error line
        assert last.startswith("python -m bounce_runtime") and ": error: " in last
    elif command == "plan":
        assert json.loads(outcome.out)["outcome"]
    else:
        assert outcome.out.startswith("ok: ")


# A real process ------------------------------------------------------------------------------


def test_a_real_process_with_bytes_that_are_not_utf8_prints_no_traceback(tmp_path: Path) -> None:
    notification_file = tmp_path / "n.json"
    notification_file.write_text(json.dumps(notification(source="j\u00f6rg@example.net")))
    command = [sys.executable.encode(), b"-m", b"bounce_runtime", b"plan", b"--notification",
               bytes(notification_file), b"--now", b"2024-05-01T12:05:00Z"]  # fmt: skip
    environment = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C.UTF-8"}
    for sender, expected in (
        (b"b@ex\xffample.com", "--bounce-sender 'b@ex\\udcffample.com' contains a lone surrogate"),
        (b"b@example.com", None),
    ):
        completed = subprocess.run(
            [*command, b"--bounce-sender", sender],
            capture_output=True,
            env=environment,
            timeout=60,
            check=False,
        )
        err = completed.stderr.decode("ascii")
        assert "Traceback" not in err
        if expected is None:  # the plan, in JSON escapes on an ASCII stdout
            assert (completed.returncode, err) == (0, "")
            assert json.loads(completed.stdout)["sender"] == "j\u00f6rg@example.net"
        else:
            assert completed.returncode == 1
            assert err == f"{PREFIX}{expected} (U+DCFF), not valid Unicode\n"
