"""Header blocks of exact sizes, for the tests of the header block's cap and piecewise reading,
and generated header blocks (hypothesis strategies) for the tests of the header guards."""

from __future__ import annotations

from typing import Any

RECEIVED = b"Received: from relay.example.net by mx.example.com; Fri, 11 Sep 2015\r\n"


def fields_of(size: int) -> bytes:
    """Header fields of exactly ``size`` bytes (at least 64): ``Received`` lines, then one
    ``X-Pad`` line, each ending in CR LF, with no empty line."""
    if size < 64:
        raise ValueError(f"size must be at least 64 bytes, got {size}")
    count = (size - 64) // len(RECEIVED)
    pad = size - count * len(RECEIVED)
    return RECEIVED * count + b"X-Pad: " + b"p" * (pad - 9) + b"\r\n"


# Generated header blocks (hypothesis strategies) for testing the parser as an outsider would:
# obsolete forms (white space before the colon), folding, every line end, odd bytes.
def _strategies() -> Any:
    from hypothesis import strategies as st

    return st


# The guard headers, each with values that make its guard fire (RFC 3834, list traffic, MS-OXCMAIL).
GUARD_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Auto-Submitted", ("auto-replied", "auto-generated", "auto-notified", "yes")),
    ("Precedence", ("bulk", "list", "junk", "auto_reply")),
    ("List-Id", ("<news.example.net>", "")),
    ("List-Unsubscribe", ("<mailto:u@example.net>",)),
    ("X-Auto-Response-Suppress", ("All", "NDR", "DR, OOF, AutoReply")),
    ("X-Autoreply", ("yes",)),
    ("X-Autorespond", ("Out of office",)),
)
GUARD_NAMES = frozenset(name.lower() for name, _ in GUARD_FIELDS)
LINE_ENDS = (b"\r\n", b"\n", b"\r")
# RFC 5322 3.6.8 ftext: printable ASCII but the colon.
FTEXT = bytes(range(33, 127)).replace(b":", b"")


def guard_lines() -> Any:
    """One guard header line (no line end): any case, obsolete white space before the colon, the
    value possibly on a continuation line or followed by a folded comment."""
    st = _strategies()

    @st.composite
    def build(draw: Any) -> bytes:
        name, values = draw(st.sampled_from(GUARD_FIELDS))
        name = "".join(
            char.upper() if draw(st.booleans()) else char.lower() for char in name
        ).encode()
        before_colon = draw(st.sampled_from([b"", b" ", b"\t", b" \t "]))
        value = draw(st.sampled_from(values)).encode()
        lead = draw(st.sampled_from([b" ", b"", b"\t", b"\r\n ", b"\n\t"]))
        tail = draw(st.sampled_from([b"", b" (comment)", b"\r\n (folded comment)"]))
        return name + before_colon + b":" + lead + value + tail

    return build()


def filler_lines() -> Any:
    """A line that is no guard header (no line end): a field (maybe obsolete, maybe folded), a
    continuation, an empty line of a bare CR, or bytes of any kind but CR and LF."""
    st = _strategies()
    no_break = st.binary(max_size=30).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
    name = st.binary(min_size=1, max_size=12).map(
        lambda raw: bytes(FTEXT[byte % len(FTEXT)] for byte in raw)
    )
    field = st.tuples(name, st.sampled_from([b"", b" ", b"\t"]), no_break).map(
        lambda parts: parts[0] + parts[1] + b":" + parts[2]
    )
    continuation = st.tuples(st.sampled_from([b" ", b"\t"]), no_break).map(b"".join)
    garbage = no_break.filter(bool)
    return st.one_of(field, continuation, garbage, st.just(b"\r")).filter(
        lambda line: (
            line.split(b":", 1)[0].strip(b" \t").lower().decode("latin-1") not in GUARD_NAMES
        )
    )


def valid_field_lines() -> Any:
    """A header field that every reader takes for one (maybe obsolete, maybe folded), no guard."""
    st = _strategies()
    printable = st.binary(max_size=30).map(lambda raw: bytes(32 + byte % 95 for byte in raw))
    name = st.binary(min_size=1, max_size=12).map(
        lambda raw: b"X-" + bytes(FTEXT[byte % len(FTEXT)] for byte in raw)
    )
    fold = st.sampled_from([b"", b"\r\n ", b"\n\t"])
    return (
        st.tuples(name, st.sampled_from([b"", b" ", b"\t"]), printable, fold, printable)
        .filter(lambda p: p[0].lower().decode() not in GUARD_NAMES)
        .map(lambda p: p[0] + p[1] + b":" + p[2] + (p[3] + p[4] if p[3] else b""))
    )


def join_lines(lines: list[bytes], ends: list[bytes]) -> bytes:
    """``lines`` each followed by a line end from ``ends`` (cycled); a bare-CR empty line
    (``b"\\r"``) is its own line end."""
    out = bytearray()
    for index, line in enumerate(lines):
        out += line if line == b"\r" else line + ends[index % len(ends)]
    return bytes(out)


def blocks_with_a_guard() -> Any:
    """A message whose header block holds a guard header line among filler lines (any line ends),
    ended by an empty line and followed by a body."""
    import re

    st = _strategies()

    @st.composite
    def build(draw: Any) -> bytes:
        before = draw(st.lists(filler_lines(), max_size=12))
        after = draw(st.lists(filler_lines(), max_size=4))
        guard = draw(guard_lines())
        ends = draw(st.lists(st.sampled_from(LINE_ENDS), min_size=1, max_size=5))
        # The guard must be inside the block: no empty line ends it before (filler lines are
        # never empty, so this holds by construction; checked all the same).
        head = join_lines(before, ends)
        if re.search(rb"\r?\n\r?\n", head + guard):
            raise AssertionError(f"an empty line ends the block before the guard: {head!r}")
        block = join_lines([*before, guard, *after], ends)
        return block.rstrip(b"\r\n") + b"\r\n\r\nbody\r\n"

    return build()
