"""An outsider's attack on the header guards: generated header blocks (obsolete forms, folding,
every line end, odd bytes, unreadable lines) with a guard header somewhere in them. Whatever
comes before it, the message is never bounced: read through the parser and the decision, and
through MailStore.read_headers reading the object in pieces of any size."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.adapters.mail_store import MailStore
from bounce_runtime.core.decision import plan_message
from bounce_runtime.core.headers import HeaderBlock, parse_raw_headers
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.policy import default_policy
from support.events import notification
from support.header_blocks import LINE_ENDS, blocks_with_a_guard, join_lines, valid_field_lines

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
TRUNCATED = parse_notification_body(
    json.dumps(notification(headers_truncated=True, headers=[("Received", "from a")]))
)
BODY = b"\r\n\r\nbody\r\n"


def decided(block: HeaderBlock) -> str:
    return plan_message(TRUNCATED, default_policy(), now=NOW, headers=block).outcome


class PieceByPiece(io.BytesIO):
    """S3's answer, handing out at most ``size`` bytes a read (as a slow connection may)."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self._size = size

    def read(self, size: int | None = -1) -> bytes:
        limit = self._size if size is None or size < 0 else min(size, self._size)
        return super().read(limit)


class Store:
    """A MailObjectClient holding one object: the ranged GetObject answers it in pieces."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data, self._piece = data, piece

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {
            "Body": PieceByPiece(self._data, self._piece),
            "ContentRange": f"bytes 0-{len(self._data) - 1}/{len(self._data)}",
        }


@settings(max_examples=300, deadline=None)
@given(blocks_with_a_guard())
def test_a_guard_header_anywhere_in_the_block_means_no_bounce(raw: bytes) -> None:
    assert decided(parse_raw_headers(raw)) != "bounce"


@settings(max_examples=150, deadline=None)
@given(blocks_with_a_guard(), st.integers(1, 40))
def test_read_from_s3_in_pieces_of_any_size_the_guard_is_still_seen(raw: bytes, piece: int) -> None:
    block = MailStore(Store(raw, piece)).read_headers("bucket", "key")  # type: ignore[arg-type]
    assert block == parse_raw_headers(raw)
    assert decided(block) != "bounce"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(valid_field_lines(), min_size=1, max_size=12),
    st.lists(st.sampled_from(LINE_ENDS), min_size=1, max_size=5),
)
def test_a_block_of_fields_in_any_form_without_a_guard_is_read_whole_and_bounced(
    lines: list[bytes], ends: list[bytes]
) -> None:
    """The control: the parser does not just give up on odd forms."""
    raw = join_lines(lines, ends).rstrip(b"\r\n") + BODY
    block = parse_raw_headers(raw)
    assert (block.complete, len(block.fields)) == (True, len(lines))
    assert decided(block) == "bounce"
