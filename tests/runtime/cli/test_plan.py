"""The operator command ``python -m bounce_runtime`` (plan, validate-policy)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from bounce_runtime.cli import main
from bounce_runtime.core.policy_json import compile_policy, parse_policy
from support.events import EVENTS_DIR, notification

Accepts = Callable[[Mapping[str, Any]], None]
CLEAN = str(EVENTS_DIR / "received-clean.json")
SOON = "2015-09-11T20:40:00Z"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_plan_prints_decisions_and_request(
    capsys: pytest.CaptureFixture[str], botocore_accepts: Accepts
) -> None:
    status, out, err = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com", "--now", SOON],
        capsys,
    )
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert document == {
        "ses_message_id": "d6iitobk75ur44p8kdnnp7g2n800",
        "mail_timestamp": "2015-09-11T20:32:33.936Z",
        "now": "2015-09-11T20:40:00.000Z",
        "sender": "61967230-7A45-4A9D-BEC9-87CBCF2211C9@example.net",
        "outcome": "bounce",
        "reason": "policy",
        "decisions": [
            {
                "recipient": "recipient@example.com",
                "action": "bounce",
                "reason": "default-rule",
                "rule": "default",
                "bounce_type": "DoesNotExist",
                "dsn_status": None,  # BounceType alone: SES writes the DSN itself
            }
        ],
        "warnings": [],
        "request": {
            "OriginalMessageId": "d6iitobk75ur44p8kdnnp7g2n800",
            "BounceSender": "b@example.com",
            "MessageDsn": {
                "ReportingMta": "dns; example.com",
                "ArrivalDate": "2015-09-11T20:32:33.936Z",
            },
            "BouncedRecipientInfoList": [
                {"Recipient": "recipient@example.com", "BounceType": "DoesNotExist"}
            ],
        },
    }
    botocore_accepts(document["request"])


def test_plan_defaults_to_the_current_time_so_an_old_sample_is_expired(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com"], capsys
    )
    document = json.loads(out)
    assert (status, document["outcome"], document["reason"], document["request"]) == (
        0,
        "expired",
        "expired",
        None,
    )


def test_plan_with_policy_size_arns_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write(
        tmp_path,
        "policy.json",
        {
            "rules": [
                {
                    "name": "too-big",
                    "match": {"min_size_bytes": 1000},
                    "action": {"type": "bounce", "bounce_type": "MessageTooLarge"},
                }
            ],
            "default": {"type": "accept"},
        },
    )
    arns = write(
        tmp_path,
        "arns.json",
        {"Example.com": "arn:aws:ses:us-east-1:123456789012:identity/example.com"},
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(notification())))
    argv = ["plan", "--notification", "-", "--bounce-sender", "b@example.com", "--policy", policy]
    argv += ["--recipient-arns", arns, "--now", "2024-05-01T12:01:00+00:00"]
    status, out, _ = run([*argv, "--object-size", "1000"], capsys)
    document = json.loads(out)
    assert status == 0
    assert document["decisions"][0]["rule"] == "too-big"
    assert document["request"]["BouncedRecipientInfoList"] == [
        {
            "Recipient": "recipient@example.com",
            "RecipientArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
            "BounceType": "MessageTooLarge",
        }
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(notification())))
    status, out, err = run(argv, capsys)
    assert status == 2
    assert err.endswith("error: --object-size is required: the policy matches on message size\n")


def test_plan_warns_about_truncated_headers_and_reads_them_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--notification", str(EVENTS_DIR / "received-headers-truncated.json")]
    argv += ["--bounce-sender", "b@example.com", "--now", SOON]
    _, out, _ = run(argv, capsys)
    assert json.loads(out)["warnings"] == [
        "mail.headersTruncated is true: the header guards saw only the notification's headers; "
        "pass --headers-from MESSAGE.eml to check the full header block"
    ]
    eml = tmp_path / "message.eml"
    eml.write_bytes(b"From: x@example.net\r\nAuto-Submitted: auto-generated\r\n\r\nbody\r\n")
    _, out, _ = run([*argv, "--headers-from", str(eml)], capsys)
    document = json.loads(out)
    assert (document["outcome"], document["reason"], document["warnings"]) == (
        "suppress",
        "auto-submitted",
        [],
    )


@pytest.mark.parametrize(
    ("extra", "content", "message"),
    [
        ([], "nope", "body: not JSON (JSONDecodeError: Expecting value: line 1 column 1 (char 0))"),
        (
            [],
            json.dumps({"notificationType": "Bounce"}),
            'notificationType: expected "Received", got "Bounce"',
        ),
        (
            ["--now", "2024-05-01 12:00"],
            None,
            (
                "--now '2024-05-01 12:00': expected an ISO 8601 time with a time zone, "
                "e.g. 2024-05-01T12:00:00Z"
            ),
        ),
        (
            ["--now", "soon"],
            None,
            "--now 'soon': expected an ISO 8601 time with a time zone, e.g. 2024-05-01T12:00:00Z",
        ),
    ],
)
def test_plan_bad_input_exits_1_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    content: str | None,
    message: str,
) -> None:
    path = write(tmp_path, "n.json", content) if content is not None else CLEAN
    status, out, err = run(
        ["plan", "--notification", path, "--bounce-sender", "b@example.com", *extra], capsys
    )
    assert (status, out) == (1, "")
    assert err == f"python -m bounce_runtime: error: {message}\n"


def test_plan_missing_files_and_bad_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "absent.json")
    status, _, err = run(
        ["plan", "--notification", missing, "--bounce-sender", "b@x.example"], capsys
    )
    assert status == 1
    assert err.startswith(
        f"python -m bounce_runtime: error: cannot read notification {missing!r}: "
    )
    policy = write(tmp_path, "p.json", {"default": {"type": "drop"}})
    status, _, err = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", "b@x.example", "--policy", policy],
        capsys,
    )
    assert status == 1
    assert err == (
        f"python -m bounce_runtime: error: invalid policy {policy!r}: "
        "default.type: 'drop' is not one of bounce, accept, suppress\n"
    )


BARE = (
    "one bare address local@domain is required (ASCII, an IDN domain as xn--; no display name, "
    "spaces or angle brackets)"
)


@pytest.mark.parametrize(
    ("sender", "problem"),
    [
        ("nobody", "has 0 '@'"),
        ("a@b@example.com", "has 2 '@'"),  # was emitted as BounceSender
        ("Bounces <b@example.com>", "has a display name, a space, a control character or "
         "angle brackets"),  # was blamed on MessageDsn.ReportingMta
        ("<b@example.com>", "has a display name, a space, a control character or angle brackets"),
        ("b@ex\u00e4mple.com", "has U+00E4 at position 4"),
        ("b@\u212aelvin.example", "has U+212A at position 2"),
    ],
)  # fmt: skip
def test_plan_bad_bounce_sender_names_the_flag(
    sender: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", sender, "--now", SOON], capsys
    )
    assert (status, out) == (1, "")
    assert err == f"python -m bounce_runtime: error: --bounce-sender {sender!r} {problem}: {BARE}\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["plan", "--notification", CLEAN], capsys)
    assert status == 2
    assert "the following arguments are required: --bounce-sender" in err
    status, _, err = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", "b@x.example", "--object-size", "-3"],
        capsys,
    )
    assert status == 2
    assert "argument --object-size: '-3' is not a whole number of bytes >= 0" in err


def test_validate_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(
        tmp_path,
        "good.json",
        {
            "rules": [
                {
                    "match": {"recipients": ["a@example.com", "example.org"]},
                    "action": {"type": "accept"},
                }
            ],
            "guards": {"list_traffic": False},
        },
    )
    status, out, err = run(["validate-policy", good], capsys)
    assert (status, err) == (0, "")
    assert out == (
        f"ok: {good}: 1 rules, 2 address patterns, default bounce (DoesNotExist), guards on: "
        "null_sender, auto_submitted, failed_authentication, spam_or_virus, "
        "unauthenticated_sender, sender authentication: spf, needs object size: no\n"
    )
    bad = write(
        tmp_path, "bad.json", '{"rules": [{"action": {"type": "bounce", "bounce_type": "Gone"}}]}'
    )
    status, out, err = run(["validate-policy", bad], capsys)
    assert (status, out) == (1, "")
    assert err == (
        f"python -m bounce_runtime: error: invalid policy {bad!r}: rules[0].action.bounce_type: "
        "'Gone' is not one of DoesNotExist, MessageTooLarge, ExceededQuota, ContentRejected, "
        "Undefined, TemporaryFailure\n"
    )


def test_validate_policy_reads_the_compiled_layer_file_and_checks_it_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = parse_policy({"rules": [{"match": {"recipients": ["a@example.com"]},
                                      "action": {"type": "accept"}}]})  # fmt: skip
    compiled = tmp_path / "policy.json"
    compiled.write_text(compile_policy(policy), encoding="utf-8")
    status, out, err = run(["validate-policy", str(compiled)], capsys)
    assert (status, err) == (0, "")
    assert out.startswith(f"ok: {compiled}: 1 rules, 1 address patterns")
    compiled.write_text(compile_policy(policy).replace("a@example.com", "b@example.com", 1))
    status, out, err = run(["validate-policy", str(compiled)], capsys)
    assert (status, out) == (1, "")
    assert err.startswith(f"python -m bounce_runtime: error: invalid policy {str(compiled)!r}: ")
    assert "the digest does not match the body" in err
    assert err.count("\n") == 1


def test_module_runs_as_a_command() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bounce_runtime",
            "plan",
            "--notification",
            str(EVENTS_DIR / "sns-envelope-clean.json"),
            "--bounce-sender",
            "b@example.com",
            "--now",
            SOON,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (completed.returncode, completed.stderr) == (0, "")
    assert (
        json.loads(completed.stdout)["request"]["OriginalMessageId"]
        == "d6iitobk75ur44p8kdnnp7g2n800"
    )
    failed = subprocess.run(
        [sys.executable, "-m", "bounce_runtime", "validate-policy", "/nonexistent/policy.json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith(
        "python -m bounce_runtime: error: cannot read policy '/nonexistent/policy.json': "
    )
    assert "Traceback" not in failed.stderr


def test_plan_shows_the_dsn_status_only_when_the_runtime_writes_the_dsn(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = write(
        tmp_path,
        "policy.json",
        {
            "rules": [
                {
                    "match": {"recipients": ["recipient@example.com"]},
                    "action": {"type": "bounce", "bounce_type": "ExceededQuota",
                               "dsn": {"status": "5.2.2"}},
                }
            ],
            "default": {"type": "bounce", "bounce_type": "ContentRejected"},
        },
    )  # fmt: skip
    message = write(
        tmp_path,
        "n.json",
        notification(recipients=["recipient@example.com", "other@example.com"]),
    )
    status, out, err = run(
        ["plan", "--notification", message, "--bounce-sender", "b@example.com",
         "--policy", policy, "--now", "2024-05-01T12:05:00Z"],
        capsys,
    )  # fmt: skip
    assert (status, err) == (0, "")
    rows = json.loads(out)["decisions"]
    assert [(row["bounce_type"], row["dsn_status"]) for row in rows] == [
        ("ExceededQuota", "5.2.2"),
        ("ContentRejected", None),
    ]


@pytest.mark.parametrize(
    "now", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T12:00:00Z"]
)
def test_an_extreme_now_is_one_line_not_a_traceback(
    now: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", "b@x.example", "--now", now], capsys
    )
    assert (status, out) == (1, "")
    assert (
        err == f"python -m bounce_runtime: error: --now {now!r}: out of range (years 1 to 9998)\n"
    )


def test_a_deeply_nested_recipient_arns_file_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested = tmp_path / "arns.json"
    nested.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@x.example",
            "--recipient-arns", str(nested), "--now", SOON]  # fmt: skip
    status, out, err = run(argv, capsys)
    assert (status, out) == (1, "")
    assert err.startswith(f"python -m bounce_runtime: error: recipient ARNs {str(nested)!r}: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_unexpected_error_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr("bounce_runtime.cli.plan.plan_message", broken)
    status, out, err = run(
        ["plan", "--notification", CLEAN, "--bounce-sender", "b@x.example", "--now", SOON], capsys
    )
    assert (status, out) == (1, "")
    assert err == (
        "python -m bounce_runtime: error: unexpected KeyError (please report it): 'surprise'\n"
    )


def test_plan_shows_an_unauthenticated_sender_suppressed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_scan = str(EVENTS_DIR / "received-no-scan.json")
    argv = ["plan", "--notification", no_scan, "--bounce-sender", "b@example.com", "--now", SOON]
    status, out, err = run(argv, capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert (document["outcome"], document["reason"], document["request"]) == (
        "suppress",
        "unauthenticated-sender",
        None,
    )
    assert [(d["action"], d["reason"]) for d in document["decisions"]] == [
        ("suppress", "unauthenticated-sender")
    ]
    dkim_only = write(
        tmp_path,
        "dkim.json",
        notification(spf="GRAY", dkim="PASS", timestamp="2015-09-11T20:32:33.936Z"),
    )
    relaxed = write(tmp_path, "relaxed.json", {"guards": {"sender_authentication": ["dkim"]}})
    argv = ["plan", "--notification", dkim_only, "--bounce-sender", "b@example.com", "--now", SOON]
    assert json.loads(run(argv, capsys)[1])["reason"] == "unauthenticated-sender"
    assert json.loads(run([*argv, "--policy", relaxed], capsys)[1])["outcome"] == "bounce"


def test_plan_takes_the_rule_recipients_and_shows_a_foreign_recipient_suppressed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = write(
        tmp_path,
        "n.json",
        notification(
            recipients=["victim@third-party.example", "Recipient@Example.com"],
            timestamp="2015-09-11T20:32:33.936Z",
        ),
    )
    argv = ["plan", "--notification", message, "--bounce-sender", "b@example.com", "--now", SOON]
    status, out, err = run([*argv, "--rule-recipients", "example.com,b@c.example"], capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert [(d["recipient"], d["action"], d["reason"]) for d in document["decisions"]] == [
        ("victim@third-party.example", "suppress", "not-owned"),
        ("Recipient@Example.com", "bounce", "default-rule"),
    ]
    assert [r["Recipient"] for r in document["request"]["BouncedRecipientInfoList"]] == [
        "Recipient@Example.com"
    ]
    rule_file = write(tmp_path, "rule.json", ["c.example"])
    document = json.loads(run([*argv, "--rule-recipients-file", rule_file], capsys)[1])
    assert (document["outcome"], document["request"]) == ("suppress", None)
    unchecked = json.loads(run(argv, capsys)[1])  # no rule recipients: no ownership check
    assert len(unchecked["request"]["BouncedRecipientInfoList"]) == 2


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--rule-recipients", ""], "--rule-recipients: expected at least one domain or address"),
        (
            ["--rule-recipients", "example.com,a b@x.example"],
            "--rule-recipients: [1] 'a b@x.example' is not a domain (example.com) or an address "
            "(user@example.com)",
        ),
    ],
)
def test_plan_bad_rule_recipients_exit_1(
    extra: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com", *extra]
    status, out, err = run(argv, capsys)
    assert (status, out) == (1, "")
    assert err == f"python -m bounce_runtime: error: {error}\n"


def test_plan_bad_rule_recipients_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com"]
    for content, problem in (
        ("[" * 100_000, "not valid JSON"),
        ('{"example.com": true}', "expected a JSON list of domains and addresses"),
    ):
        path = write(tmp_path, "rule.json", content)
        status, out, err = run([*argv, "--rule-recipients-file", path], capsys)
        assert (status, out) == (1, "")
        assert err.startswith(
            f"python -m bounce_runtime: error: --rule-recipients-file {path!r}: {problem}"
        )
        assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"bucket": "someone-elses-bucket"}, "receipt.action.bucketName 'someone-elses-bucket'"),
        ({"object_key": "payroll/m-1"}, "receipt.action.objectKey 'payroll/m-1' is not"),
    ],
)
def test_plan_shows_a_foreign_mail_object_dead_lettered(
    fields: dict[str, Any], detail: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = write(tmp_path, "n.json", notification(message_id="m-1", **fields))
    argv = ["plan", "--notification", message, "--bounce-sender", "b@example.com"]
    owned = ["--mail-bucket", "inbound-mail-bucket", "--object-key-prefix", "inbound/"]
    status, out, err = run([*argv, *owned], capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert (document["outcome"], document["reason"], document["request"]) == (
        "dead-letter",
        "foreign-mail-object",
        None,
    )
    assert document["detail"].startswith(detail)
    mine = write(tmp_path, "mine.json", notification(message_id="m-1"))
    own = json.loads(run(["plan", "--notification", mine, "--bounce-sender", "b@x.example",
                          "--now", "2024-05-01T12:05:00Z", *owned], capsys)[1])  # fmt: skip
    assert own["outcome"] == "bounce"


def test_plan_object_key_prefix_needs_the_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--notification", CLEAN, "--bounce-sender", "b@example.com"]
    status, _, err = run([*argv, "--object-key-prefix", "inbound/"], capsys)
    assert status == 2
    assert "--object-key-prefix needs --mail-bucket" in err


@pytest.mark.parametrize(
    ("guards", "error"),
    [
        (
            {"sender_authentication": ["spf", "arc"]},
            "guards.sender_authentication[1]: 'arc' is not one of spf, dkim, dmarc",
        ),
        (
            {"sender_authentication": []},
            "guards.sender_authentication: [] is not a non-empty list of spf, dkim, dmarc",
        ),
        (
            {"unauthenticated_sender": "off"},
            "guards.unauthenticated_sender: 'off' is not true or false",
        ),
    ],
)
def test_validate_policy_names_a_bad_sender_authentication(
    guards: dict[str, Any], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, "bad.json", {"guards": guards})
    status, out, err = run(["validate-policy", bad], capsys)
    assert (status, out) == (1, "")
    assert err == f"python -m bounce_runtime: error: invalid policy {bad!r}: {error}\n"
    relaxed = write(tmp_path, "ok.json", {"guards": {"sender_authentication": ["dkim", "spf"]}})
    assert "sender authentication: dkim/spf" in run(["validate-policy", relaxed], capsys)[1]


@pytest.mark.parametrize("enveloped", [False, True])
@pytest.mark.parametrize(
    "body",
    [
        {"notificationType": "Received", "mail": {"messageId": "AMAZON_SES_SETUP_NOTIFICATION"}},
        notification(message_id="AMAZON_SES_SETUP_NOTIFICATION"),  # forged: bounce-worthy
    ],
)
def test_plan_shows_the_setup_notification_as_not_mail(
    body: dict[str, Any], enveloped: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support.events import sns_envelope

    path = write(tmp_path, "setup.json", sns_envelope(body) if enveloped else body)
    argv = ["plan", "--notification", path, "--bounce-sender", "b@example.com", "--now", SOON]
    status, out, err = run(argv, capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert document["outcome"] == "setup-notification"
    assert document["ses_message_id"] == "AMAZON_SES_SETUP_NOTIFICATION"
    assert document["detail"].startswith("SES's setup notification")
    assert (document["decisions"], document["request"]) == ([], None)


@pytest.mark.parametrize(
    "recipient",
    ["recipient@example.com\r\nBcc: victim@example.org", "a b@example.com",
     "user Bcc: x@evil.example@example.com"],
)  # fmt: skip
def test_plan_refuses_a_recipient_it_would_have_to_rewrite(
    recipient: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "n.json", notification(recipients=[recipient]))
    argv = ["plan", "--notification", path, "--bounce-sender", "b@example.com", "--now", SOON]
    status, out, err = run(argv, capsys)
    assert (status, out) == (1, "")  # no request is printed
    assert err.startswith("python -m bounce_runtime: error: BouncedRecipientInfoList[0].Recipient")
    assert "one bare address local@domain is required" in err
    assert "\r" not in err and err.count("\n") == 1
