"""Sizes and grammar at run time: a record past a bound is dead-lettered with a reason naming the
field and the bound, before the send claim is taken (no claim, no SendBounce)."""

from __future__ import annotations

from typing import Any

from runtime.test_processor import MESSAGE_ID, Rig, record_for


def dead_letter_detail(rig: Rig) -> str:
    (dead,) = [line for line in rig.log_lines() if line["message"] == "dead-lettered"]
    detail: str = dead["detail"]
    return detail


def test_more_bounced_recipients_than_one_request_carries_are_dead_lettered_unclaimed(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for(recipients=[f"r{i}@example.com" for i in range(101)])
    rig.expect_untagged()  # and no put_object (claim), no send_bounce
    rig.expect_dead_letter(record, "invalid-request", MESSAGE_ID)
    assert rig.run(record) == []
    assert rig.by_reason() == {"invalid-request": {"PermanentFailures": 1}}
    assert dead_letter_detail(rig).startswith(
        "BouncedRecipientInfoList: 101 recipients, more than the 100 one SendBounce request "
        "may carry"
    )


def test_a_message_id_longer_than_ses_writes_is_dead_lettered_before_any_s3_call(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    record = record_for("m" * 101)
    rig.expect_dead_letter(record, "malformed-notification", None)
    assert rig.run(record) == []
    assert dead_letter_detail(rig).startswith(
        "mail.messageId: expected an SES message id of at most 100 characters, got 101"
    )


def test_a_display_name_bounce_sender_is_blamed_on_the_bounce_sender(
    s3_client: Any, ses_client: Any, sqs_client: Any, fake_time: Any
) -> None:
    # RuntimeConfig.from_environ refuses it; built directly, the request validator still names it.
    rig = Rig(s3_client, ses_client, sqs_client, fake_time)
    rig.processor.deps.config = rig.processor.deps.config._replace(
        bounce_sender="Bounces <b@example.com>"
    )
    record = record_for()
    rig.expect_untagged()
    rig.expect_dead_letter(record, "invalid-request", MESSAGE_ID)
    assert rig.run(record) == []
    assert dead_letter_detail(rig).startswith(
        "BounceSender: 'Bounces <b@example.com>' has a display name, a space, a control "
        "character or angle brackets: one bare address local@domain is required"
    )
