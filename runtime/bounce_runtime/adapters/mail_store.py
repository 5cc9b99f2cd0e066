"""The stored mail object in S3: its size, its header block, the idempotency tag and the send
claim (a conditional write that lets one delivery of a message send its bounce)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from bounce_runtime.adapters.s3_dates import answer_date
from bounce_runtime.contract import (
    BOUNCE_TAG_KEY,
    CLAIM_SUFFIX,
    HEADER_BLOCK_MAX_BYTES,
    HEADER_READ_CHUNK_BYTES,
)
from bounce_runtime.errors import MailObjectMissing

if TYPE_CHECKING:
    from bounce_runtime.adapters.protocols import MailObjectClient
    from bounce_runtime.core.headers import HeaderBlock

_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
# A conditional write lost to an existing object (412) or to a concurrent write of it (409).
_CLAIM_TAKEN_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def bounce_tag_in(tags: list[dict[str, str]]) -> str | None:
    """The bounce MessageId in a tag set, or None when it has no such tag."""
    for tag in tags:
        if tag["Key"] == BOUNCE_TAG_KEY:
            return tag["Value"]
    return None


class ClaimAge(NamedTuple):
    """When a send claim was written (S3's ``LastModified``) and its age in seconds."""

    claimed_at: datetime
    age_s: float


def _object_size(response: Mapping[str, Any]) -> int | None:
    """The whole object's size from a ranged GetObject's ``ContentRange`` (``bytes 0-9/10``), or
    None when it is absent or unreadable."""
    text = response.get("ContentRange")
    size = text.rpartition("/")[2] if isinstance(text, str) else ""
    return int(size) if size.isascii() and size.isdigit() else None


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class MailStore:
    """Reads and tags the objects that the receipt rule's S3 action stored."""

    def __init__(self, client: MailObjectClient) -> None:
        self._client = client

    def object_size(self, bucket: str, key: str) -> int:
        """The object's size in bytes (HeadObject)."""
        try:
            response = self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            raise self._classify(error, bucket, key) from error
        return int(response["ContentLength"])

    def read_headers(self, bucket: str, key: str) -> HeaderBlock:
        """The header fields of the stored message, and whether its header block ended within
        ``HEADER_BLOCK_MAX_BYTES`` and could be read line by line to its end (read only when SES
        truncated the notification's headers: the header parser is imported then).

        One ranged GetObject of the first ``HEADER_BLOCK_MAX_BYTES``, read in pieces of
        ``HEADER_READ_CHUNK_BYTES`` until the empty line that ends the block, or the end of the
        object; the rest of the answer is not read (closing it drops the connection).
        """
        from bounce_runtime.core.headers import header_block_ends, parse_raw_headers

        try:
            response = self._client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BLOCK_MAX_BYTES - 1}"
            )
        except ClientError as error:
            if _error_code(error) == "InvalidRange":  # an empty object has no byte 0
                return parse_raw_headers(b"")
            raise self._classify(error, bucket, key) from error
        body = response["Body"]
        data = bytearray()
        try:
            while len(data) < HEADER_BLOCK_MAX_BYTES:
                piece = body.read(min(HEADER_READ_CHUNK_BYTES, HEADER_BLOCK_MAX_BYTES - len(data)))
                if not piece:  # the object ended (botocore checks the answer's length)
                    break
                data += piece
                if header_block_ends(data, len(data) - len(piece)):
                    break
        finally:
            body.close()
        # Fewer bytes than asked for: the object ended. Exactly the cap: S3's Content-Range
        # (``bytes 0-1048575/<size>``) says whether it goes on; without one, assume it does.
        whole = len(data) < HEADER_BLOCK_MAX_BYTES or _object_size(response) == len(data)
        return parse_raw_headers(bytes(data), whole_message=whole)

    def bounce_tag(self, bucket: str, key: str) -> str | None:
        """The bounce MessageId the object was tagged with, or None when it has no such tag."""
        return bounce_tag_in(self.tags(bucket, key))

    def tags(self, bucket: str, key: str) -> list[dict[str, str]]:
        """The object's tag set (GetObjectTagging)."""
        try:
            response = self._client.get_object_tagging(Bucket=bucket, Key=key)
        except ClientError as error:
            raise self._classify(error, bucket, key) from error
        return [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in response["TagSet"]]

    def tag_bounced(
        self,
        bucket: str,
        key: str,
        bounce_message_id: str,
        tags: list[dict[str, str]] | None = None,
    ) -> None:
        """Tag the object with the bounce's MessageId, keeping its other tags.

        ``tags`` is the object's tag set when the caller has already read it (else it is read).
        """
        current = self.tags(bucket, key) if tags is None else tags
        tags = [tag for tag in current if tag["Key"] != BOUNCE_TAG_KEY]
        tags.append({"Key": BOUNCE_TAG_KEY, "Value": bounce_message_id})
        try:
            self._client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tags})
        except ClientError as error:
            raise self._classify(error, bucket, key) from error

    def claim_send(self, bucket: str, key: str, *, sqs_message_id: str, now: datetime) -> bool:
        """Create ``<key>`` + ``CLAIM_SUFFIX`` unless it exists; True when this call created it."""
        body = json.dumps({"sqsMessageId": sqs_message_id, "claimedAt": now.isoformat()})
        try:
            self._client.put_object(
                Bucket=bucket,
                Key=key + CLAIM_SUFFIX,
                Body=body.encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if _error_code(error) in _CLAIM_TAKEN_CODES:
                return False
            raise self._classify(error, bucket, key) from error
        return True

    def claim_age(self, bucket: str, key: str, *, now: datetime) -> ClaimAge | None:
        """How long ago the object's send claim was written, or None when it has none.

        Measured on S3's clock alone when it can be: the HeadObject answer's ``Date`` header
        minus the claim's ``LastModified`` (both written by S3), so a skew between the function's
        clock and S3's cannot make a live claim look stale. Without a ``Date`` header, ``now``
        (the function's clock) stands in for it.
        """
        try:
            response = self._client.head_object(Bucket=bucket, Key=key + CLAIM_SUFFIX)
        except ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                return None
            raise
        last_modified: datetime = response["LastModified"]
        s3_now = answer_date(response) or now
        return ClaimAge(last_modified, (s3_now - last_modified).total_seconds())

    def release_claim(self, bucket: str, key: str) -> None:
        """Delete the send claim so that a later delivery may claim the message again."""
        self._client.delete_object(Bucket=bucket, Key=key + CLAIM_SUFFIX)

    @staticmethod
    def _classify(error: ClientError, bucket: str, key: str) -> Exception:
        """A missing object is permanent; anything else is left for a later delivery."""
        code = _error_code(error)
        if code in _MISSING_CODES:
            return MailObjectMissing(f"s3://{bucket}/{key} does not exist (S3 {code})")
        return error
