"""End to end: moto S3 and SQS, the local SES over HTTP, the real Lambda handler."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

import bounce_runtime.handler as handler_module
from bounce_runtime.contract import (
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    SEND_BUDGET_KEY_ATTRIBUTE,
    SEND_BUDGET_MARGIN_S,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
)
from bounce_runtime.errors import ConfigError
from bounce_runtime.handler import handler
from support.events import (
    BUCKET,
    OBJECT_KEY_PREFIX,
    notification,
    sns_envelope,
    sqs_event,
    sqs_record,
)
from support.handler_world import REGION, Context, World, handler_world


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with handler_world(monkeypatch) as created:
        yield created


def test_batch_bounces_tags_dead_letters_and_never_bounces_twice(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    first, rejected, last = world.store("mail-1"), world.store("mail-2"), world.store("mail-4")
    malformed = sqs_record("this is not a notification", message_id="sqs-mail-3")
    missing = world.record("mail-5")  # no object stored
    world.ses.inject_errors(("Throttling", 400))  # first attempt of mail-1 is throttled
    # mail-1 then succeeds on its retry; mail-2's attempt is rejected permanently.
    original_handle = world.ses.handle

    def reject_mail_2(pairs: Any, now: float) -> str:
        if ("OriginalMessageId", "mail-2") in list(pairs):
            world.ses.inject_errors(("MessageRejected", 400))
        return original_handle(pairs, now)

    world.ses.handle = reject_mail_2  # type: ignore[method-assign]

    response = handler(sqs_event([first, rejected, malformed, last, missing]), Context())

    assert response == {"batchItemFailures": []}
    assert world.bounced_ids() == ["mail-1", "mail-4"]
    assert world.ses.throttled == 1
    assert world.tags("mail-1") == {
        "retention": "30d",
        BOUNCE_TAG_KEY: world.ses.calls[0].message_id,
    }
    assert world.tags("mail-2") == {"retention": "30d"}
    # The sent bounces keep their send claims; the refused one gave its claim back.
    stored = world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(o["Key"] for o in stored if o["Key"].endswith(CLAIM_SUFFIX)) == [
        f"{OBJECT_KEY_PREFIX}mail-1{CLAIM_SUFFIX}",
        f"{OBJECT_KEY_PREFIX}mail-4{CLAIM_SUFFIX}",
    ]
    letters = {
        attributes["sqs-message-id"]: (body, attributes)
        for body, attributes in world.dead_letters()
    }
    assert sorted(letters) == ["sqs-mail-2", "sqs-mail-3", "sqs-mail-5"]
    assert letters["sqs-mail-2"][0] == rejected["body"]
    assert letters["sqs-mail-2"][1]["reason"] == "ses-rejected:MessageRejected"
    assert letters["sqs-mail-2"][1]["ses-message-id"] == "mail-2"
    assert letters["sqs-mail-3"] == (
        "this is not a notification",
        {"reason": "malformed-notification", "sqs-message-id": "sqs-mail-3",
         "detail": letters["sqs-mail-3"][1]["detail"]},
    )  # fmt: skip
    assert letters["sqs-mail-3"][1]["detail"].startswith("body: not JSON")
    assert letters["sqs-mail-5"][1]["reason"] == "mail-object-missing"

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    emf = next(line for line in lines if "_aws" in line and "Reason" not in line)
    assert (emf["BouncesSent"], emf["SendBounceThrottled"], emf["PermanentFailures"]) == (2, 1, 3)

    # SQS delivers mail-1 again (e.g. the batch response was lost): no second bounce.
    again = handler(sqs_event([first]), Context())
    assert again == {"batchItemFailures": []}
    assert world.bounced_ids() == ["mail-1", "mail-4"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    emf = next(line for line in lines if "_aws" in line and "Reason" not in line)
    assert (emf["BouncesSent"], emf["DuplicatesSkipped"]) == (0, 1)


def test_clients_are_created_once_per_container(world: World) -> None:
    handler(sqs_event([world.store("mail-a")]), Context())
    container = handler_module._container
    handler(sqs_event([world.store("mail-b")]), Context())
    assert container is not None and handler_module._container is container
    assert world.bounced_ids() == ["mail-a", "mail-b"]


def test_invalid_configuration_fails_the_invocation_and_is_logged(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "-1")
    with pytest.raises(ConfigError) as raised:
        handler(sqs_event([world.store("mail-c")]), Context())
    message = "SEND_RATE_PER_SECOND is '-1': a number of calls per second > 0 is required"
    assert str(raised.value) == message
    logged = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (logged["level"], logged["reason"], logged["detail"]) == (
        "ERROR",
        "invalid-config",
        message,
    )
    # The log says what happens to the batch: nothing is dead-lettered by the runtime.
    assert "the invocation fails" in logged["message"]
    assert "SQS redelivers" in logged["message"]
    assert (logged["request_id"], logged["function_name"]) == ("req-1", "bounce-fn")
    assert world.dead_letters() == []
    assert handler_module._container is None
    assert world.bounced_ids() == []


def test_importing_the_handler_leaves_off_what_the_first_invocation_or_some_paths_need() -> None:
    # boto3, the config reader and policy loader: the first invocation; the SendBounce request
    # builder and DSN vocabulary: messages with a bounce to send; the header parser: truncated
    # headers; the CLI and the Protocols: never on Lambda.
    deferred = [
        "boto3",
        "bounce_runtime.config",
        "bounce_runtime.adapters.clients",
        "bounce_runtime.core.policy_json",
        "bounce_runtime.core.dsn",
        "bounce_runtime.core.vocabulary",
        "bounce_runtime.core.headers",
        "bounce_runtime.cli",
        "bounce_runtime.adapters.protocols",
        "bounce_runtime.adapters.send_budget",
    ]
    code = (
        "import sys, bounce_runtime.handler; "
        f"print([name for name in {deferred!r} if name in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if "_aws" not in line]


def test_every_log_line_carries_the_request_id_and_function_name(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    handler(sqs_event([world.store("mail-r"), world.record("mail-missing")]), Context())
    handler(sqs_event([world.store("mail-s")]), Context(request_id="req-2"))
    lines = log_lines(capsys)
    assert len(lines) >= 5
    assert [line["request_id"] for line in lines].count("req-2") == 2  # message + batch done
    assert {line["request_id"] for line in lines} == {"req-1", "req-2"}
    assert {line["function_name"] for line in lines} == {"bounce-fn"}


def test_log_level_comes_from_the_environment(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    handler(sqs_event([world.store("mail-w"), world.record("mail-gone")]), Context())
    lines = log_lines(capsys)
    assert [(line["level"], line["message"]) for line in lines] == [("WARNING", "dead-lettered")]
    assert world.bounced_ids() == ["mail-w"]


def test_an_invalid_log_level_is_a_config_error_naming_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError) as raised:
        handler(sqs_event([world.store("mail-l")]), Context())
    assert (
        str(raised.value) == "LOG_LEVEL is 'LOUD': one of DEBUG, INFO, WARNING, ERROR is required"
    )


def test_an_unexpected_error_is_logged_with_its_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = world.store("mail-bug")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in planning")

    monkeypatch.setattr("bounce_runtime.workflow.plan_message", broken)
    response = handler(sqs_event([record]), Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "sqs-mail-bug"}]}
    (failed,) = [line for line in log_lines(capsys) if line["level"] == "ERROR"]
    assert (failed["reason"], failed["detail"]) == ("ZeroDivisionError", "a bug in planning")
    assert failed["traceback"].startswith("Traceback (most recent call last):")
    assert "in broken" in failed["traceback"]
    assert failed["request_id"] == "req-1"


def test_a_classified_failure_is_logged_without_a_traceback(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = world.store("mail-t")  # another delivery has just claimed its send
    world.s3.put_object(Bucket=BUCKET, Key=f"{OBJECT_KEY_PREFIX}mail-t{CLAIM_SUFFIX}", Body=b"{}")
    response = handler(sqs_event([record]), Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "sqs-mail-t"}]}
    (failed,) = [line for line in log_lines(capsys) if line["level"] == "ERROR"]
    assert failed["reason"] == "send-claim-held"
    assert "traceback" not in failed


def test_an_event_that_is_not_sqs_fails_the_invocation_with_a_traceback(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="not SQS"):
        handler({"detail-type": "Scheduled Event"}, Context())
    (failed,) = log_lines(capsys)
    assert failed["message"].startswith("invocation failed")
    assert failed["reason"] == "ValueError"
    assert "Traceback (most recent call last):" in failed["traceback"]


def test_the_handler_acts_only_on_what_the_construct_says_the_processor_owns(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variables the construct sets (constructs/cdk_ses_bounce/function.py).
    monkeypatch.setenv("OWNED_RECIPIENTS", '["example.com"]')
    monkeypatch.setenv("MAIL_BUCKET", BUCKET)
    monkeypatch.setenv("OBJECT_KEY_PREFIX", OBJECT_KEY_PREFIX)
    world.store("mail-o")
    received = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    stamp = received.replace("+00:00", "Z")
    mixed = sqs_record(
        notification(
            message_id="mail-o",
            timestamp=stamp,
            recipients=["victim@third-party.example", "recipient@example.com"],
        ),
        message_id="sqs-mail-o",
    )
    # An object of this bucket outside the prefix: named by a forged notification.
    world.s3.put_object(Bucket=BUCKET, Key="payroll/mail-f", Body=b"secret")
    foreign = sqs_record(
        notification(message_id="mail-f", timestamp=stamp, object_key="payroll/mail-f"),
        message_id="sqs-mail-f",
    )

    assert handler(sqs_event([mixed, foreign]), Context()) == {"batchItemFailures": []}

    [call] = world.ses.calls
    assert call.params["OriginalMessageId"] == "mail-o"
    assert [info["Recipient"] for info in call.params["BouncedRecipientInfoList"]] == [
        "recipient@example.com"
    ]
    [(body, attributes)] = world.dead_letters()
    assert (attributes["reason"], attributes["ses-message-id"]) == ("foreign-mail-object", "mail-f")
    assert json.loads(body)["mail"]["messageId"] == "mail-f"
    # Never claimed or tagged: the foreign object was not touched.
    keys = {item["Key"] for item in world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "payroll/mail-f" + CLAIM_SUFFIX not in keys
    assert world.s3.get_object_tagging(Bucket=BUCKET, Key="payroll/mail-f")["TagSet"] == []


# The shared send budget through the environment the construct sets (SEND_BUDGET_TABLE,
# SEND_BUDGET_ID): the container builds it; DynamoDB is moto's, in process.


def budget_table(monkeypatch: pytest.MonkeyPatch, next_free_s: float | None = None) -> Any:
    """Create the budget table (with the budget's item at ``next_free_s``) and name it in the
    environment; returns the DynamoDB client."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="send-budget",
        AttributeDefinitions=[{"AttributeName": SEND_BUDGET_KEY_ATTRIBUTE, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": SEND_BUDGET_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if next_free_s is not None:
        dynamodb.put_item(
            TableName="send-budget",
            Item={
                SEND_BUDGET_KEY_ATTRIBUTE: {"S": "account-budget"},
                SEND_BUDGET_NEXT_FREE_ATTRIBUTE: {"N": f"{next_free_s:.6f}"},
            },
        )
    monkeypatch.setenv("SEND_BUDGET_TABLE", "send-budget")
    monkeypatch.setenv("SEND_BUDGET_ID", "account-budget")
    return dynamodb


def next_free(dynamodb: Any) -> float:
    item = dynamodb.get_item(
        TableName="send-budget", Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": "account-budget"}}
    )["Item"]
    return float(item[SEND_BUDGET_NEXT_FREE_ATTRIBUTE]["N"])


def test_a_new_container_waits_for_the_budget_schedule_of_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other containers hold the account's schedule until 0.8 s from now.
    busy_until = time.time() + 0.8
    dynamodb = budget_table(monkeypatch, busy_until)
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "5")

    response = handler(sqs_event([world.store("mail-b1"), world.store("mail-b2")]), Context())

    assert response == {"batchItemFailures": []}
    first, second = (attempt.wall_time for attempt in world.ses.attempts)
    assert first >= busy_until
    assert second - first >= 0.2  # 1/rate, and the margin on top
    assert next_free(dynamodb) >= second + 0.2 + SEND_BUDGET_MARGIN_S - 0.05


def test_an_unreachable_budget_means_no_send_and_the_record_back_to_the_queue(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEND_BUDGET_TABLE", "no-such-table")

    response = handler(sqs_event([world.store("mail-u")]), Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "sqs-mail-u"}]}
    assert world.ses.attempts == []
    assert world.dead_letters() == []
    stored = world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in stored if o["Key"].endswith(CLAIM_SUFFIX)] == []  # released
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    emf = next(line for line in lines if "_aws" in line and "Reason" not in line)
    assert emf["SendBudgetUnavailable"] == 1
    failed = next(line for line in lines if line.get("level") == "ERROR")
    assert failed["reason"] == "send-budget-unavailable"
    assert "ResourceNotFoundException" in failed["detail"]


SETUP_ID = "AMAZON_SES_SETUP_NOTIFICATION"


def setup_notifications() -> list[dict[str, Any]]:
    """SES's setup notification in the forms it may take (its shape is not documented): bare,
    with empty recipients and no verdicts or headers, raw and in an SNS envelope; and a forged
    one that carries an owned recipient and every field a bounce needs."""
    bare = {"notificationType": "Received", "mail": {"messageId": SETUP_ID}}
    empty = {
        "notificationType": "Received",
        "receipt": {"recipients": [], "action": {"type": "S3", "bucketName": BUCKET}},
        "mail": {"messageId": SETUP_ID, "source": "", "destination": [], "headers": []},
    }
    received = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    forged = notification(message_id=SETUP_ID, timestamp=received.replace("+00:00", "Z"))
    return [
        sqs_record(bare, message_id="sqs-setup-1"),
        sqs_record(empty, message_id="sqs-setup-2"),
        sqs_record(sns_envelope(empty), message_id="sqs-setup-3"),
        sqs_record(forged, message_id="sqs-setup-4"),
        sqs_record(sns_envelope(forged), message_id="sqs-setup-5"),
    ]


def test_the_setup_notification_is_acknowledged_counted_and_logged_never_bounced(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # SES writes a setup object when the rule is saved: it must stay untouched.
    world.s3.put_object(
        Bucket=BUCKET, Key=OBJECT_KEY_PREFIX + SETUP_ID, Body=b"setup", Tagging="retention=30d"
    )
    mail = world.store("mail-1")  # real mail in the same batch is still bounced
    records = [*setup_notifications(), mail]

    response = handler(sqs_event(records), Context())

    assert response == {"batchItemFailures": []}
    assert world.bounced_ids() == ["mail-1"]  # the forged one's recipients are never bounced
    assert world.dead_letters() == []
    assert world.tags(SETUP_ID) == {"retention": "30d"}  # never tagged
    keys = [o["Key"] for o in world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert f"{OBJECT_KEY_PREFIX}{SETUP_ID}{CLAIM_SUFFIX}" not in keys  # never claimed
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    acknowledged = [line for line in lines if line.get("message", "").startswith("SES setup")]
    assert [line["sqs_message_id"] for line in acknowledged] == [
        f"sqs-setup-{n}" for n in range(1, 6)
    ]  # one line each
    assert {line["level"] for line in acknowledged} == {"INFO"}
    emf = next(line for line in lines if "_aws" in line and "Reason" not in line)
    assert (emf["SetupNotifications"], emf["BouncesSent"], emf["PermanentFailures"]) == (5, 1, 0)


def test_the_setup_notification_object_is_never_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[str] = []
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if SETUP_ID in json.dumps(params, default=str):
            touched.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    assert handler(sqs_event(setup_notifications()), Context()) == {"batchItemFailures": []}
    assert touched == []  # no S3, SES or SQS call names it
