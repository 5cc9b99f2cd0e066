"""Reads the header block of a stored RFC 5322 message (when ``mail.headersTruncated`` is true)."""

from __future__ import annotations

import re
from email.parser import HeaderParser
from typing import NamedTuple

from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES
from bounce_runtime.core.notification import Header

# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
_BLOCK_END = rb"\r?\n\r?\n"
_FOLD = r"\r?\n(?=[ \t])"
_LINE_BREAK = r"[\r\n]+"
# The longest separator of the header block and the body (CR LF CR LF) less one byte: a search
# that resumes this far before newly read bytes finds a separator split across two reads.
_SEPARATOR_OVERLAP = 3


class HeaderBlock(NamedTuple):
    """The header fields of a stored message, and whether they are all of them.

    ``complete`` is False when the block does not end within ``HEADER_BLOCK_MAX_BYTES``: the
    fields after the cap were never read (``fields`` holds those before it).
    """

    fields: tuple[Header, ...]
    complete: bool


def header_block_ends(raw: bytes | bytearray, start: int = 0) -> bool:
    """Whether ``raw`` holds the empty line that ends a header block, looking from ``start`` back
    to the first separator that could overlap it (so a CR LF split between reads is found)."""
    return re.compile(_BLOCK_END).search(raw, max(0, start - _SEPARATOR_OVERLAP)) is not None


def parse_raw_headers(raw: bytes, *, whole_message: bool = True) -> HeaderBlock:
    """Header fields of ``raw`` (up to the first empty line), in order, unfolded.

    Only the first ``HEADER_BLOCK_MAX_BYTES`` count, as in the Lambda, which reads no more. The
    block is complete when an empty line ends it within them, or when the message does:
    ``whole_message`` says that ``raw`` is the entire message (False: only its first bytes).

    Bytes that are not UTF-8 become U+FFFD; a line that is not a header field ends the block,
    as in the stdlib ``email`` parser. Values keep their raw form (no RFC 2047 decoding).
    """
    seen = raw[:HEADER_BLOCK_MAX_BYTES]
    end = re.search(_BLOCK_END, seen)
    complete = end is not None or (whole_message and len(raw) <= HEADER_BLOCK_MAX_BYTES)
    block = seen[: end.start()] if end else seen
    text = block.decode("utf-8", errors="replace")
    message = HeaderParser().parsestr(text + "\n\n")  # the default policy: compat32
    fields = tuple(
        Header(name=name, value=re.sub(_LINE_BREAK, " ", re.sub(_FOLD, "", str(value))).strip())
        for name, value in message.items()
    )
    return HeaderBlock(fields, complete)
