"""MailStore on a real S3 client with Stubber: size, idempotency tag, send claim (the header block:
test_mail_store_headers.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.contract import BOUNCE_TAG_KEY
from bounce_runtime.errors import PermanentError

BUCKET = "inbound-mail"
KEY = "inbound/o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"
OBJECT = {"Bucket": BUCKET, "Key": KEY}


def test_object_size_comes_from_head_object(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_response("head_object", {"ContentLength": 48213}, expected_params=OBJECT)
        assert MailStore(s3_client).object_size(BUCKET, KEY) == 48213


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [("head_object", "404", 404), ("get_object", "NoSuchKey", 404),
     ("get_object_tagging", "NoSuchKey", 404)],
)  # fmt: skip
def test_a_missing_object_is_permanent(
    s3_client: Any, operation: str, code: str, status: int
) -> None:
    store = MailStore(s3_client)
    call: Callable[[], object] = {
        "head_object": lambda: store.object_size(BUCKET, KEY),
        "get_object": lambda: store.read_headers(BUCKET, KEY),
        "get_object_tagging": lambda: store.bounce_tag(BUCKET, KEY),
    }[operation]
    with Stubber(s3_client) as stub:
        stub.add_client_error(operation, code, http_status_code=status)
        with pytest.raises(PermanentError) as raised:
            call()
    assert raised.value.reason == "mail-object-missing"
    assert str(raised.value) == f"s3://{BUCKET}/{KEY} does not exist (S3 {code})"


def test_other_s3_errors_are_left_for_a_retry(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_client_error("head_object", "SlowDown", http_status_code=503)
        with pytest.raises(ClientError) as raised:
            MailStore(s3_client).object_size(BUCKET, KEY)
    assert raised.value.response["Error"]["Code"] == "SlowDown"


def test_bounce_tag_reads_the_idempotency_tag(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_response("get_object_tagging", {"TagSet": []}, expected_params=OBJECT)
        stub.add_response(
            "get_object_tagging",
            {"TagSet": [{"Key": "team", "Value": "mail"}, {"Key": BOUNCE_TAG_KEY, "Value": "b-1"}]},
            expected_params=OBJECT,
        )
        store = MailStore(s3_client)
        assert store.bounce_tag(BUCKET, KEY) is None
        assert store.bounce_tag(BUCKET, KEY) == "b-1"


def test_tagging_merges_with_existing_tags(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_response(
            "get_object_tagging",
            {"TagSet": [{"Key": "team", "Value": "mail"}, {"Key": "retention", "Value": "30d"}]},
            expected_params=OBJECT,
        )
        stub.add_response(
            "put_object_tagging",
            {},
            expected_params={
                **OBJECT,
                "Tagging": {
                    "TagSet": [
                        {"Key": "team", "Value": "mail"},
                        {"Key": "retention", "Value": "30d"},
                        {"Key": BOUNCE_TAG_KEY, "Value": "0100018f-bounce"},
                    ]
                },
            },
        )
        MailStore(s3_client).tag_bounced(BUCKET, KEY, "0100018f-bounce")
        stub.assert_no_pending_responses()


def test_tagging_replaces_an_older_bounce_tag_instead_of_adding_a_second(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_response(
            "get_object_tagging", {"TagSet": [{"Key": BOUNCE_TAG_KEY, "Value": "old"}]}
        )
        stub.add_response(
            "put_object_tagging",
            {},
            expected_params={
                **OBJECT,
                "Tagging": {"TagSet": [{"Key": BOUNCE_TAG_KEY, "Value": "new"}]},
            },
        )
        MailStore(s3_client).tag_bounced(BUCKET, KEY, "new")
        stub.assert_no_pending_responses()


CLAIM = {"Bucket": BUCKET, "Key": KEY + ".bounce-claim"}
CLAIMED_AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def test_claim_send_writes_the_claim_only_if_none_exists(s3_client: Any) -> None:
    claim_body = b'{"sqsMessageId": "sqs-1", "claimedAt": "2024-05-01T12:30:00+00:00"}'
    with Stubber(s3_client) as stub:
        stub.add_response(
            "put_object",
            {"ETag": '"e"'},
            expected_params={**CLAIM, "Body": claim_body, "ContentType": "application/json",
                             "IfNoneMatch": "*"},
        )  # fmt: skip
        assert MailStore(s3_client).claim_send(BUCKET, KEY, sqs_message_id="sqs-1", now=CLAIMED_AT)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(("code", "status"), [("PreconditionFailed", 412),
                                              ("ConditionalRequestConflict", 409)])  # fmt: skip
def test_claim_send_is_lost_to_an_existing_or_concurrent_claim(
    s3_client: Any, code: str, status: int
) -> None:
    with Stubber(s3_client) as stub:
        stub.add_client_error("put_object", code, http_status_code=status)
        store = MailStore(s3_client)
        assert not store.claim_send(BUCKET, KEY, sqs_message_id="sqs-2", now=CLAIMED_AT)


def test_claim_send_leaves_other_errors_for_a_retry(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_client_error("put_object", "SlowDown", http_status_code=503)
        with pytest.raises(ClientError) as raised:
            MailStore(s3_client).claim_send(BUCKET, KEY, sqs_message_id="s", now=CLAIMED_AT)
    assert raised.value.response["Error"]["Code"] == "SlowDown"


def test_claim_age_is_measured_on_s3s_clock_when_it_answers_with_a_date(s3_client: Any) -> None:
    s3_now = CLAIMED_AT + timedelta(seconds=42)
    dated = {
        "LastModified": CLAIMED_AT,
        "ResponseMetadata": {"HTTPHeaders": {"date": format_datetime(s3_now, usegmt=True)}},
    }
    function_clock = CLAIMED_AT - timedelta(minutes=10)  # far behind S3: must not matter
    with Stubber(s3_client) as stub:
        stub.add_response("head_object", dated, expected_params=CLAIM)
        stub.add_response("head_object", {"LastModified": CLAIMED_AT}, expected_params=CLAIM)
        stub.add_client_error("head_object", "404", http_status_code=404)
        store = MailStore(s3_client)
        assert store.claim_age(BUCKET, KEY, now=function_clock) == (CLAIMED_AT, 42.0)
        # No Date header: the function's clock stands in for S3's.
        undated = store.claim_age(BUCKET, KEY, now=CLAIMED_AT + timedelta(seconds=7))
        assert undated == (CLAIMED_AT, 7.0)
        assert store.claim_age(BUCKET, KEY, now=function_clock) is None


def test_release_claim_deletes_the_claim(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_response("delete_object", {}, expected_params=CLAIM)
        MailStore(s3_client).release_claim(BUCKET, KEY)
        stub.assert_no_pending_responses()


def test_the_claim_protocol_on_moto_s3_with_versioning() -> None:
    """moto honours If-None-Match: one claim wins, a released claim (a delete marker in a
    versioned bucket, as the construct makes it) can be claimed again."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"Subject: hi\r\n\r\n")
        first, second = MailStore(s3), MailStore(s3)
        before = datetime.now(UTC).replace(microsecond=0)
        assert first.claim_send(BUCKET, KEY, sqs_message_id="sqs-a", now=before)
        assert not second.claim_send(BUCKET, KEY, sqs_message_id="sqs-b", now=before)
        claim = second.claim_age(BUCKET, KEY, now=datetime.now(UTC))
        assert claim is not None and claim.claimed_at >= before - timedelta(seconds=1)
        stored = json.loads(s3.get_object(**CLAIM)["Body"].read())
        assert stored == {"sqsMessageId": "sqs-a", "claimedAt": before.isoformat()}
        first.release_claim(BUCKET, KEY)
        assert second.claim_age(BUCKET, KEY, now=datetime.now(UTC)) is None
        assert second.claim_send(BUCKET, KEY, sqs_message_id="sqs-b", now=before)
        assert first.object_size(BUCKET, KEY) == 15  # the mail object itself is untouched
