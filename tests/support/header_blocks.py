"""Header blocks of exact sizes, for the tests of the header block's cap and piecewise reading."""

from __future__ import annotations

RECEIVED = b"Received: from relay.example.net by mx.example.com; Fri, 11 Sep 2015\r\n"


def fields_of(size: int) -> bytes:
    """Header fields of exactly ``size`` bytes (at least 64): ``Received`` lines, then one
    ``X-Pad`` line, each ending in CR LF, with no empty line."""
    if size < 64:
        raise ValueError(f"size must be at least 64 bytes, got {size}")
    count = (size - 64) // len(RECEIVED)
    pad = size - count * len(RECEIVED)
    return RECEIVED * count + b"X-Pad: " + b"p" * (pad - 9) + b"\r\n"
