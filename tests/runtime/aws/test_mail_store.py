"""MailStore on a real S3 client with Stubber: size, header block, idempotency tag."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from bounce_runtime.errors import PermanentError
from bounce_runtime.mail_store import BOUNCE_TAG_KEY, MailStore
from bounce_runtime.notification import Header

BUCKET = "inbound-mail"
KEY = "inbound/o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"
OBJECT = {"Bucket": BUCKET, "Key": KEY}


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_object_size_comes_from_head_object(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_response("head_object", {"ContentLength": 48213}, expected_params=OBJECT)
        assert MailStore(s3_client).object_size(BUCKET, KEY) == 48213


def test_headers_come_from_a_ranged_get_of_the_first_64_kib(s3_client: Any) -> None:
    raw = (
        b"Return-Path: <sender@example.net>\r\nSubject: a folded\r\n subject\r\n"
        b"Auto-Submitted: auto-replied\r\n\r\nBody: not a header\r\n"
    )
    with Stubber(s3_client) as stub:
        stub.add_response(
            "get_object",
            {"Body": body(raw), "ContentLength": len(raw)},
            expected_params={**OBJECT, "Range": "bytes=0-65535"},
        )
        headers = MailStore(s3_client).read_headers(BUCKET, KEY)
    assert headers == (
        Header("Return-Path", "<sender@example.net>"),
        Header("Subject", "a folded subject"),
        Header("Auto-Submitted", "auto-replied"),
    )


def test_an_empty_object_has_no_headers(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_client_error("get_object", "InvalidRange", http_status_code=416)
        assert MailStore(s3_client).read_headers(BUCKET, KEY) == ()


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
