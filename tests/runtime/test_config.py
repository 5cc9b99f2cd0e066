"""RuntimeConfig.from_environ: the environment contract and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bounce_runtime.config import RuntimeConfig
from bounce_runtime.core.policy import BouncePolicy, default_policy
from bounce_runtime.core.policy_json import compile_policy
from bounce_runtime.errors import ConfigError

SENDER_ARN = "arn:aws:ses:us-east-1:123456789012:identity/example.com"
BARE = (
    "one bare address local@domain is required (ASCII, an IDN domain as xn--; no display name, "
    "spaces or angle brackets)"
)
BASE = {
    "BOUNCE_SENDER": "mailer-daemon@example.com",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}


def config_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        RuntimeConfig.from_environ(environ)
    assert raised.value.reason == "invalid-config"
    return str(raised.value)


def test_minimal_environment_uses_the_defaults() -> None:
    config = RuntimeConfig.from_environ(BASE)
    assert config.bounce_sender == "mailer-daemon@example.com"
    assert config.dead_letter_queue_url == BASE["DEAD_LETTER_QUEUE_URL"]
    assert config.policy == default_policy()
    assert config.bounce_sender_arn is None
    assert dict(config.recipient_identity_arns) == {}
    assert config.send_rate_per_second == 1.0
    assert config.send_claim_ttl_seconds == 900.0
    assert config.metrics_namespace == "CdkSesBounce"
    assert config.function_name == "unknown"
    assert config.log_level == "INFO"


def test_every_variable_is_read(tmp_path: Path) -> None:
    policy = {"default": {"type": "accept"}}
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(policy), encoding="utf-8")
    config = RuntimeConfig.from_environ(
        {
            **BASE,
            "BOUNCE_SENDER_ARN": SENDER_ARN,
            "RECIPIENT_IDENTITY_ARNS": json.dumps({"Example.COM": SENDER_ARN}),
            "BOUNCE_POLICY_FILE": str(policy_file),
            "SEND_RATE_PER_SECOND": "0.5",
            "SEND_CLAIM_TTL_SECONDS": "120",
            "METRICS_NAMESPACE": "Mail/Bounces",
            "AWS_LAMBDA_FUNCTION_NAME": "bounce-fn",
            "LOG_LEVEL": "debug",
        }
    )
    assert config.log_level == "DEBUG"
    assert config.bounce_sender_arn == SENDER_ARN
    assert dict(config.recipient_identity_arns) == {"example.com": SENDER_ARN}
    assert config.policy == BouncePolicy.from_dict(policy)
    assert config.send_rate_per_second == 0.5
    assert config.send_claim_ttl_seconds == 120.0
    assert (config.metrics_namespace, config.function_name) == ("Mail/Bounces", "bounce-fn")
    identity = config.sender_identity()
    assert identity.bounce_sender == "mailer-daemon@example.com"
    assert identity.bounce_sender_arn == SENDER_ARN
    assert dict(identity.recipient_arns) == {"example.com": SENDER_ARN}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOUNCE_SENDER", "", f"BOUNCE_SENDER is '': {BARE}"),
        ("BOUNCE_SENDER", "Bounces <b@example.com>", "BOUNCE_SENDER 'Bounces <b@example.com>' "
         f"has a display name, a space, a control character or angle brackets: {BARE}"),
        ("BOUNCE_SENDER", "a@b@example.com", f"BOUNCE_SENDER 'a@b@example.com' has 2 '@': {BARE}"),
        ("BOUNCE_SENDER", "b@\u212aelvin.example", "BOUNCE_SENDER 'b@\u212aelvin.example' has "
         f"U+212A at position 2: {BARE}"),
        ("BOUNCE_SENDER", "b@ex\udcffample.com", "BOUNCE_SENDER 'b@ex\\udcffample.com' has U+DCFF "
         f"at position 4: {BARE}"),
        ("BOUNCE_SENDER", "b@localhost", "BOUNCE_SENDER 'b@localhost' has the domain 'localhost': "
         "a host name is required (two or more dot-separated labels of A-Z, a-z, 0-9 and -, "
         "each 1 to 63 characters, not starting or ending with -; an IDN as xn--)"),
        ("SEND_RATE_PER_SECOND", "\u0661", "SEND_RATE_PER_SECOND is '\u0661': a number of calls "
         "per second > 0 is required"),
        ("RECIPIENT_IDENTITY_ARNS", json.dumps({"\u212aelvin.example": SENDER_ARN}),
         "RECIPIENT_IDENTITY_ARNS has the key '\u212aelvin.example', which is neither a domain "
         "nor a bare address: a JSON object mapping recipient domains or addresses to SES "
         "identity ARNs is required"),
        ("DEAD_LETTER_QUEUE_URL", "dlq", "DEAD_LETTER_QUEUE_URL is 'dlq': an SQS queue URL "
         "(https://...) is required"),
        ("SEND_RATE_PER_SECOND", "0", "SEND_RATE_PER_SECOND is '0': a number of calls per "
         "second > 0 is required"),
        ("SEND_RATE_PER_SECOND", "fast", "SEND_RATE_PER_SECOND is 'fast': a number of calls per "
         "second > 0 is required"),
        ("SEND_RATE_PER_SECOND", "inf", "SEND_RATE_PER_SECOND is 'inf': a number of calls per "
         "second > 0 is required"),
        ("SEND_CLAIM_TTL_SECONDS", "-5", "SEND_CLAIM_TTL_SECONDS is '-5': a number of seconds "
         "> 0 is required"),
        ("SEND_CLAIM_TTL_SECONDS", "2m", "SEND_CLAIM_TTL_SECONDS is '2m': a number of seconds "
         "> 0 is required"),
        ("BOUNCE_SENDER_ARN", "arn:aws:sns:us-east-1:1:topic", "BOUNCE_SENDER_ARN has "
         "'arn:aws:sns:us-east-1:1:topic': an SES identity ARN "
         "arn:<partition>:ses:<region>:<account>:identity/<address or domain> is required"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL is 'verbose': one of DEBUG, INFO, WARNING, ERROR "
         "is required"),
        ("RECIPIENT_IDENTITY_ARNS", "[]", "RECIPIENT_IDENTITY_ARNS is '[]': a JSON object mapping "
         "recipient domains or addresses to SES identity ARNs is required"),
        ("RECIPIENT_IDENTITY_ARNS", '{"example.com": "nope"}', "RECIPIENT_IDENTITY_ARNS has "
         "'nope': an SES identity ARN "
         "arn:<partition>:ses:<region>:<account>:identity/<address or domain> is required"),
    ],
)  # fmt: skip
def test_a_bad_variable_is_named_with_its_value_and_what_is_allowed(
    name: str, value: str, message: str
) -> None:
    assert config_error({**BASE, name: value}) == message


def test_a_missing_required_variable_is_named() -> None:
    environ = dict(BASE)
    del environ["DEAD_LETTER_QUEUE_URL"]
    assert config_error(environ) == (
        "DEAD_LETTER_QUEUE_URL is None: an SQS queue URL (https://...) is required"
    )


def test_invalid_json_in_recipient_arns_is_a_config_error() -> None:
    message = config_error({**BASE, "RECIPIENT_IDENTITY_ARNS": "{oops"})
    assert message.startswith(
        "RECIPIENT_IDENTITY_ARNS is '{oops': a JSON object mapping recipient domains or "
        "addresses to SES identity ARNs is required (Expecting property name"
    )


def test_a_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    message = config_error({**BASE, "BOUNCE_POLICY_FILE": str(path)})
    assert message == (
        f"BOUNCE_POLICY_FILE {str(path)!r} cannot be read: "
        f"[Errno 2] No such file or directory: {str(path)!r}"
    )


def test_a_broken_policy_is_a_config_error_that_keeps_the_policy_message(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": {"type": "explode"}}), encoding="utf-8")
    with pytest.raises(Exception) as policy_error:
        BouncePolicy.from_dict({"default": {"type": "explode"}})
    message = config_error({**BASE, "BOUNCE_POLICY_FILE": str(path)})
    assert (
        message == f"BOUNCE_POLICY_FILE {str(path)!r} is not a valid policy: {policy_error.value}"
    )


def test_a_policy_file_that_is_not_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{not json", encoding="utf-8")
    message = config_error({**BASE, "BOUNCE_POLICY_FILE": str(path)})
    assert message.startswith(
        f"BOUNCE_POLICY_FILE {str(path)!r} is not a valid policy: policy: not valid JSON"
    )


def test_a_compiled_policy_file_loads_to_the_policy_it_was_compiled_from(tmp_path: Path) -> None:
    policy = BouncePolicy.from_dict({"rules": [{"match": {"recipients": ["*.old.example"]},
                                                "action": {"type": "bounce"}}],
                                     "default": {"type": "accept"}})  # fmt: skip
    path = tmp_path / "policy.json"
    path.write_text(compile_policy(policy), encoding="utf-8")
    assert RuntimeConfig.from_environ({**BASE, "BOUNCE_POLICY_FILE": str(path)}).policy == policy
    path.write_text(compile_policy(policy)[:300], encoding="utf-8")
    message = config_error({**BASE, "BOUNCE_POLICY_FILE": str(path)})
    assert message == (
        f"BOUNCE_POLICY_FILE {str(path)!r} is not a valid policy: compiled policy: cut short "
        "(no closing brace)"
    )


def test_what_the_processor_owns_is_read() -> None:
    config = RuntimeConfig.from_environ(
        {
            **BASE,
            "OWNED_RECIPIENTS": '["Example.com", "Sales@Other.example"]',
            "MAIL_BUCKET": "inbound-mail-bucket",
            "OBJECT_KEY_PREFIX": "inbound/",
        }
    )
    assert config.owned_recipients is not None
    assert config.owned_recipients.owns("a@EXAMPLE.com")
    assert not config.owned_recipients.owns("victim@third-party.example")
    assert (config.mail_bucket, config.object_key_prefix) == ("inbound-mail-bucket", "inbound/")
    unset = RuntimeConfig.from_environ(BASE)  # local use only: the construct always sets them
    assert (unset.owned_recipients, unset.mail_bucket, unset.object_key_prefix) == (None, None, "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "example.com",
            "OWNED_RECIPIENTS is 'example.com': a non-empty JSON list of recipients, each a domain "
            "(example.com) or an address (user@example.com) is required (Expecting value: line 1 "
            "column 1 (char 0))",
        ),
        (
            "[]",
            "OWNED_RECIPIENTS is '[]': a non-empty JSON list of recipients, each a domain "
            "(example.com) or an address (user@example.com) is required",
        ),
        (
            '{"example.com": 1}',
            "OWNED_RECIPIENTS is '{\"example.com\": 1}': a non-empty JSON list of recipients",
        ),
        (
            '["example.com", "a b@example.com"]',
            "OWNED_RECIPIENTS has [1] 'a b@example.com' is not a domain (example.com) or an "
            "address (user@example.com): a non-empty JSON list of recipients",
        ),
        ("[" * 100_000, "OWNED_RECIPIENTS is '[[[["),
    ],
)
def test_a_bad_owned_recipients_value_is_named(value: str, message: str) -> None:
    assert config_error({**BASE, "OWNED_RECIPIENTS": value}).startswith(message)


def test_the_queues_max_receive_count_is_read() -> None:
    def read(value: str) -> int | None:
        return RuntimeConfig.from_environ({**BASE, "MAX_RECEIVE_COUNT": value}).max_receive_count

    assert (read(""), read("10"), read(" 1000 ")) == (None, 10, 1000)


@pytest.mark.parametrize("value", ["0", "1001", "-1", "2.5", "ten", "\u0661\u0660", "1e3"])
def test_a_bad_max_receive_count_is_named(value: str) -> None:
    assert config_error({**BASE, "MAX_RECEIVE_COUNT": value}) == (
        f"MAX_RECEIVE_COUNT is {value!r}: a whole number from 1 to 1000 (the queue's "
        "maxReceiveCount) is required"
    )


@pytest.mark.parametrize(
    "entry", ["\u212aelvin.example", "j\u00f6rg@example.com", "b\udcff.example", "a b.example"]
)
def test_an_owned_recipient_that_is_not_ascii_stops_the_configuration(entry: str) -> None:
    message = config_error({**BASE, "OWNED_RECIPIENTS": json.dumps([entry])})
    assert message.startswith(f"OWNED_RECIPIENTS has [0] {entry!r} is not a domain (example.com)")


def test_a_policy_file_with_a_lone_surrogate_is_a_config_error_naming_the_field(
    tmp_path: Path,
) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text('{"message": {"explanation": "gone \\ud800"}}', encoding="utf-8")
    message = config_error({**BASE, "BOUNCE_POLICY_FILE": str(policy_file)})
    assert message == (
        f"BOUNCE_POLICY_FILE {str(policy_file)!r} is not a valid policy: message.explanation: "
        "'gone \\ud800' contains a lone surrogate (U+D800), not valid Unicode"
    )
