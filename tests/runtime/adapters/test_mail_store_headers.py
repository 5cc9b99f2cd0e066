"""MailStore.read_headers: one ranged GetObject of the first HEADER_BLOCK_MAX_BYTES, read in
HEADER_READ_CHUNK_BYTES pieces up to the empty line that ends the header block (Stubber on a
real S3 client, then moto's S3 for the service's own range answers)."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES, HEADER_READ_CHUNK_BYTES
from bounce_runtime.core.headers import HeaderBlock
from bounce_runtime.core.notification import Header
from support.header_blocks import fields_of

BUCKET = "inbound-mail"
KEY = "inbound/o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"
OBJECT = {"Bucket": BUCKET, "Key": KEY}
CAP = HEADER_BLOCK_MAX_BYTES
CHUNK = HEADER_READ_CHUNK_BYTES
RANGE = f"bytes=0-{CAP - 1}"
BODY = b"List-Id: <this is the body, not a header>\r\n" * 50_000  # about 2 MiB


class Answer(io.BytesIO):
    """The bytes S3 sends for the range; records the size of each read."""

    def __init__(self, data: bytes, fail_at_read: int | None = None) -> None:
        super().__init__(data)
        self.reads: list[int] = []
        self._fail_at_read = fail_at_read

    def read(self, size: int | None = -1) -> bytes:
        if len(self.reads) == self._fail_at_read:
            raise ConnectionResetError("connection reset by peer")
        piece = super().read(size)
        self.reads.append(len(piece))
        return piece


def expect_get(
    stub: Stubber, stored: bytes, *, content_range: bool = True, fail_at_read: int | None = None
) -> Answer:
    """The ranged GetObject of ``stored`` as S3 answers it: its first CAP bytes."""
    sent = stored[:CAP]
    answer = Answer(sent, fail_at_read)
    response: dict[str, Any] = {
        "Body": StreamingBody(answer, len(sent)),
        "ContentLength": len(sent),
    }
    if content_range:
        response["ContentRange"] = f"bytes 0-{len(sent) - 1}/{len(stored)}"
    stub.add_response("get_object", response, expected_params={**OBJECT, "Range": RANGE})
    return answer


def read(s3_client: Any, stored: bytes, **options: Any) -> tuple[HeaderBlock, Answer]:
    with Stubber(s3_client) as stub:
        answer = expect_get(stub, stored, **options)
        block = MailStore(s3_client).read_headers(BUCKET, KEY)
        stub.assert_no_pending_responses()
    return block, answer


def test_a_message_shorter_than_a_piece_is_read_once(s3_client: Any) -> None:
    stored = (
        b"Return-Path: <sender@example.net>\r\nSubject: a folded\r\n subject\r\n"
        b"Auto-Submitted: auto-replied\r\n\r\nBody: not a header\r\n"
    )
    block, answer = read(s3_client, stored)
    assert block == HeaderBlock(
        (
            Header("Return-Path", "<sender@example.net>"),
            Header("Subject", "a folded subject"),
            Header("Auto-Submitted", "auto-replied"),
        ),
        complete=True,
    )
    assert answer.reads == [len(stored)]
    assert answer.closed


def test_header_fields_without_a_body_end_with_the_object(s3_client: Any) -> None:
    block, answer = read(s3_client, b"Subject: hi\r\nList-Id: <x.example.net>\r\n")
    assert block == HeaderBlock(
        (Header("Subject", "hi"), Header("List-Id", "<x.example.net>")), complete=True
    )
    assert answer.reads == [39, 0]


def test_an_empty_object_has_no_headers(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        stub.add_client_error("get_object", "InvalidRange", http_status_code=416)
        assert MailStore(s3_client).read_headers(BUCKET, KEY) == HeaderBlock((), complete=True)


def test_a_block_ending_at_a_piece_boundary_stops_there(s3_client: Any) -> None:
    block, answer = read(s3_client, fields_of(CHUNK - 2) + b"\r\n" + BODY)
    assert block.complete is True
    assert block.fields[-1].name == "X-Pad"
    assert all(field.name != "List-Id" for field in block.fields)
    assert answer.reads == [CHUNK]
    assert answer.closed  # the rest of the answer is never read


@pytest.mark.parametrize("before_boundary", [1, 2, 3])
def test_an_empty_line_split_across_two_pieces_is_found(
    s3_client: Any, before_boundary: int
) -> None:
    """The empty line's CR LF CR LF has ``before_boundary`` bytes in the first piece."""
    fields = fields_of(CHUNK - before_boundary + 2)  # its last CR LF begins the empty line
    block, answer = read(s3_client, fields + b"\r\n" + BODY)
    assert block.complete is True
    assert block.fields[-1].name == "X-Pad"
    assert "\r" not in block.fields[-1].value
    assert answer.reads == [CHUNK, CHUNK]


def test_a_block_of_several_pieces_is_read_to_its_end(s3_client: Any) -> None:
    stored = fields_of(3 * CHUNK + 100) + b"Auto-Submitted: auto-replied\r\n\r\n" + BODY
    block, answer = read(s3_client, stored)
    assert block.complete is True
    assert block.fields[-1] == Header("Auto-Submitted", "auto-replied")
    assert answer.reads == [CHUNK] * 4


def test_a_block_past_the_cap_is_incomplete(s3_client: Any) -> None:
    stored = fields_of(CAP) + b"List-Id: <after.the.cap>\r\n\r\n" + BODY
    block, answer = read(s3_client, stored)
    assert block.complete is False
    assert block.fields[-1].name == "X-Pad"
    assert all(field.name != "List-Id" for field in block.fields)
    assert answer.reads == [CHUNK] * (CAP // CHUNK)


def test_header_fields_alone_filling_the_cap_end_with_the_object(s3_client: Any) -> None:
    block, answer = read(s3_client, fields_of(CAP))
    assert block.complete is True  # Content-Range: bytes 0-1048575/1048576
    assert answer.reads == [CHUNK] * (CAP // CHUNK)


def test_without_a_content_range_a_full_cap_is_taken_as_incomplete(s3_client: Any) -> None:
    block, _ = read(s3_client, fields_of(CAP), content_range=False)
    assert block.complete is False
    shorter, _ = read(s3_client, fields_of(CAP - 1), content_range=False)
    assert shorter.complete is True  # fewer bytes than asked for: the object ended


def test_a_failed_read_closes_the_answer_and_is_left_for_a_retry(s3_client: Any) -> None:
    with Stubber(s3_client) as stub:
        answer = expect_get(stub, fields_of(CAP) + b"\r\n", fail_at_read=2)
        with pytest.raises(ConnectionResetError):
            MailStore(s3_client).read_headers(BUCKET, KEY)
    assert answer.reads == [CHUNK, CHUNK]
    assert answer.closed


# moto's S3: the service's own range answers (Content-Range, 416 for an empty object) --------------


@pytest.mark.parametrize(
    ("stored", "complete", "last"),
    [
        (b"", True, None),
        (fields_of(2 * CHUNK + 7) + b"X-Autorespond: yes\r\n\r\n" + BODY, True, "X-Autorespond"),
        (fields_of(CAP), True, "X-Pad"),
        (fields_of(CAP) + b"\r\n" + BODY, False, "X-Pad"),
    ],
    ids=["empty", "three-pieces", "headers-only-at-the-cap", "past-the-cap"],
)
def test_against_moto_s3(stored: bytes, complete: bool, last: str | None) -> None:
    from moto import mock_aws  # here: on CPython 3.14 (Pyodide) only this test is skipped

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=stored)
        block = MailStore(s3).read_headers(BUCKET, KEY)
    assert block.complete is complete
    assert (block.fields[-1].name if block.fields else None) == last


@pytest.mark.parametrize(
    ("odd_line", "complete"),
    [(b"X-Mailer : x", True), (b"X-Mailer\t: x", True), (b"X\x00Mailer: x", False)],
    ids=["space-before-colon", "tab-before-colon", "nul-in-name"],
)
def test_a_guard_header_two_pieces_after_an_odd_line_is_read(
    odd_line: bytes, complete: bool
) -> None:
    """Issue 17 (3): the odd line in the first piece, the guard header in the third."""
    from moto import mock_aws

    stored = (
        fields_of(1000) + odd_line + b"\r\n" + fields_of(2 * CHUNK)
        + b"Auto-Submitted: auto-replied\r\n\r\n" + BODY
    )  # fmt: skip
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=stored)
        block = MailStore(s3).read_headers(BUCKET, KEY)
    assert block.fields[-1] == Header("Auto-Submitted", "auto-replied")
    assert (block.complete, block.unreadable_at) == (complete, None if complete else 1000)
