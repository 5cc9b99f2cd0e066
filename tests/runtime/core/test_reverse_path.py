"""The envelope sender read as RFC 5321 writes a reverse path (4.1.2; null path 4.5.5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounce_runtime.core.reverse_path import ReversePath, parse_reverse_path


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ReversePath(null=True)),
        ("<>", ReversePath(null=True)),
        ("< >", ReversePath(null=True)),
        (" <\t> ", ReversePath(null=True)),
        ("a@example.net", ReversePath(False, "a", "example.net")),
        ("<a@example.net>", ReversePath(False, "a", "example.net")),
        ("< a@example.net >", ReversePath(False, "a", "example.net")),
        ('"mailer-daemon"@example.net', ReversePath(False, "mailer-daemon", "example.net")),
        ('"mailer\\-daemon"@example.net', ReversePath(False, "mailer-daemon", "example.net")),
        ('"a@b"@example.net', ReversePath(False, "a@b", "example.net")),
        ('"a\\"b"@example.net', ReversePath(False, 'a"b', "example.net")),
        ("@relay:mailer-daemon@example.net", ReversePath(False, "mailer-daemon", "example.net")),
        (
            "<@r1.example,@r2.example:postmaster@example.net>",
            ReversePath(False, "postmaster", "example.net"),
        ),
        ("postmaster", ReversePath(False, "postmaster", "")),  # RFC 5321 4.5.1: no domain
        ("a@[192.0.2.1]", ReversePath(False, "a", "[192.0.2.1]")),
    ],
)
def test_reverse_path_forms(source: str, expected: ReversePath) -> None:
    assert parse_reverse_path(source) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_read_without_error(source: str) -> None:
    path = parse_reverse_path(source)
    assert path.null is (source.strip().removeprefix("<").removesuffix(">").strip() == "")
