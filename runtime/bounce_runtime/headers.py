"""Reads the header block of a stored RFC 5322 message (when ``mail.headersTruncated`` is true)."""

from __future__ import annotations

import email.parser
import email.policy
import re

from bounce_runtime.notification import Header

_BLOCK_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAK = re.compile(r"[\r\n]+")


def parse_raw_headers(raw: bytes) -> tuple[Header, ...]:
    """Header fields of ``raw`` (up to the first empty line), in order, unfolded.

    Bytes that are not UTF-8 become U+FFFD; a line that is not a header field ends the block,
    as in the stdlib ``email`` parser. Values keep their raw form (no RFC 2047 decoding).
    """
    end = _BLOCK_END.search(raw)
    block = raw[: end.start()] if end else raw
    text = block.decode("utf-8", errors="replace")
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(
        text + "\n\n", headersonly=True
    )
    return tuple(
        Header(name=name, value=_LINE_BREAK.sub(" ", _FOLD.sub("", str(value))).strip())
        for name, value in message.items()
    )
