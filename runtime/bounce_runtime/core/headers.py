"""Reads the header block of a stored RFC 5322 message (when ``mail.headersTruncated`` is true).

Line by line, with the grammar RFC 5322 writes and the obsolete forms it tells readers to accept:
a field name is printable ASCII but the colon (3.6.8), white space may come before the colon
(4.5, obs-optional), a line beginning with white space continues the field above it (2.2.3), and
a line ends in CR LF, LF or a bare CR. A line that is none of these (no colon, a space, control,
NUL or 8-bit byte in the name, white space before any field) cannot be read: the block is then
incomplete (``unreadable_at``), and the fields after it are still read, so that a guard header
behind it is seen. The stdlib ``email`` parser instead stops at such a line and calls the block
whole, which hid every guard header after it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES
from bounce_runtime.core.notification import Header

# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
# The empty line that ends the block: two LF-terminated line ends in a row (CR LF or LF). Empty
# lines made with bare CRs do not end it (a reader that would end the block there would see less,
# not more, than this parser): they are skipped.
_BLOCK_END = rb"\r?\n\r?\n"
# One line (with the continuation lines folded into it): either a header field, name and value,
# or anything else, which cannot be read (the third group; an empty line's is empty).
_LINE = (
    rb"([!-9;-~]+)[ \t]*:([^\r\n]*(?:(?:\r\n?|\n)[ \t][^\r\n]*)*)(?:\r\n?|\n|\Z)"
    rb"|([^\r\n]*)(?:\r\n?|\n)"
    rb"|([^\r\n]+)\Z"
)
_FOLD = rb"\r?\n(?=[ \t])"
_LINE_BREAK = rb"[\r\n]+"
# The longest separator of the header block and the body (CR LF CR LF) less one byte: a search
# that resumes this far before newly read bytes finds a separator split across two reads.
_SEPARATOR_OVERLAP = 3


class HeaderBlock(NamedTuple):
    """The header fields of a stored message, and whether they are all of them.

    ``complete`` is False when the block does not end within ``HEADER_BLOCK_MAX_BYTES`` (the
    fields after the cap were never read) or when a line of it cannot be read as a header field
    or a continuation (``unreadable_at``: the byte offset of the first such line).
    """

    fields: tuple[Header, ...]
    complete: bool
    unreadable_at: int | None = None


def header_block_ends(raw: bytes | bytearray, start: int = 0) -> bool:
    """Whether ``raw`` holds the empty line that ends a header block, looking from ``start`` back
    to the first separator that could overlap it (so a CR LF split between reads is found)."""
    return re.compile(_BLOCK_END).search(raw, max(0, start - _SEPARATOR_OVERLAP)) is not None


def _value(raw: bytes) -> str:
    """A field's value unfolded (CR LF / LF before white space removed, a bare CR made a space),
    decoded (bytes that are not UTF-8 become U+FFFD) and stripped."""
    if b"\r" in raw or b"\n" in raw:
        raw = re.sub(_LINE_BREAK, b" ", re.sub(_FOLD, b"", raw))
    return raw.decode("utf-8", errors="replace").strip()


def read_fields(block: bytes, *, cut: bool = False) -> tuple[tuple[Header, ...], int | None]:
    """The header fields of ``block`` (the header block without the empty line that ends it), in
    order, unfolded, and the byte offset of its first unreadable line (None when there is none).

    Empty lines inside the block (only bare CRs make them) are skipped. ``cut``: the block was cut
    at the cap, so a last line without a line end is a piece of a line, not an unreadable one.
    """
    fields = []
    unreadable_at = None
    for line in re.compile(_LINE).finditer(block):
        name, value, other, last = line.groups()
        if name is not None:
            fields.append(Header(name.decode("ascii"), _value(value)))
        elif (other or (last and not cut)) and unreadable_at is None:
            unreadable_at = line.start()
    return tuple(fields), unreadable_at


def parse_raw_headers(raw: bytes, *, whole_message: bool = True) -> HeaderBlock:
    """Header fields of ``raw`` (up to the first empty line), in order, unfolded.

    Only the first ``HEADER_BLOCK_MAX_BYTES`` count, as in the Lambda, which reads no more. The
    block is complete when an empty line ends it within them, or when the message does
    (``whole_message`` says that ``raw`` is the entire message; False: only its first bytes), and
    every line of it is a header field or a continuation. Values keep their raw form (no RFC 2047
    decoding).
    """
    seen = raw[:HEADER_BLOCK_MAX_BYTES]
    end = re.search(_BLOCK_END, seen)
    ended = end is not None or (whole_message and len(raw) <= HEADER_BLOCK_MAX_BYTES)
    fields, unreadable_at = read_fields(seen[: end.start()] if end else seen, cut=not ended)
    return HeaderBlock(fields, ended and unreadable_at is None, unreadable_at)
