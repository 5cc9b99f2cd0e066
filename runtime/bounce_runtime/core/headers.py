"""Reads the header block of a stored RFC 5322 message (when ``mail.headersTruncated`` is true)."""

from __future__ import annotations

import re
from email.parser import HeaderParser

from bounce_runtime.core.notification import Header

# Regular expressions are kept as pattern strings: the re module compiles each on first use
# and caches it, so importing this module compiles none.
_BLOCK_END = rb"\r?\n\r?\n"
_FOLD = r"\r?\n(?=[ \t])"
_LINE_BREAK = r"[\r\n]+"


def parse_raw_headers(raw: bytes) -> tuple[Header, ...]:
    """Header fields of ``raw`` (up to the first empty line), in order, unfolded.

    Bytes that are not UTF-8 become U+FFFD; a line that is not a header field ends the block,
    as in the stdlib ``email`` parser. Values keep their raw form (no RFC 2047 decoding).
    """
    end = re.search(_BLOCK_END, raw)
    block = raw[: end.start()] if end else raw
    text = block.decode("utf-8", errors="replace")
    message = HeaderParser().parsestr(text + "\n\n")  # the default policy: compat32
    return tuple(
        Header(name=name, value=re.sub(_LINE_BREAK, " ", re.sub(_FOLD, "", str(value))).strip())
        for name, value in message.items()
    )
