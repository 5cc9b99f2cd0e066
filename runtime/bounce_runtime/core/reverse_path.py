"""Reads the envelope sender (``mail.source``, SMTP MAIL FROM) as RFC 5321 writes a reverse path.

RFC 5321 4.1.2: ``Reverse-path = Path / "<>"``, ``Path = "<" [ A-d-l ":" ] Mailbox ">"``, where
the optional source route (``A-d-l``, ``@relay1,@relay2:``) is to be ignored (4.1.1.2, C) and the
local part is a dot-string or a quoted string (``"mailer-daemon"``, with ``\\`` quoting one
character). 4.5.5: a null reverse path (``<>``) marks a notification that must not be answered.
The parser is lenient on purpose: white space around or inside the brackets and missing brackets
are read as the sender meant them, so that a guard cannot be stepped around by spelling.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import re
from typing import NamedTuple

# Local parts of senders that are mail systems, not people (RFC 3834 section 2, RFC 5321 4.5.5).
DAEMON_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"}
)
# A quoted-pair (RFC 5321 4.1.2 quoted-pairSMTP): a backslash and the character it quotes.
_QUOTED_PAIR = r"\\(.)"


class ReversePath(NamedTuple):
    """An envelope sender: ``null`` for ``<>``; else the local part (unquoted) and the domain."""

    null: bool
    local_part: str = ""
    domain: str = ""


def _unquote(local_part: str) -> str:
    """A quoted local part's content (``"a\\"b"`` -> ``a"b``); others as they are."""
    if len(local_part) >= 2 and local_part[0] == local_part[-1] == '"':
        return re.sub(_QUOTED_PAIR, r"\1", local_part[1:-1], flags=re.DOTALL)
    return local_part


def parse_reverse_path(source: str) -> ReversePath:
    """The reverse path ``source`` names: null for ``""``, ``<>`` or ``< >``; otherwise its
    mailbox without brackets and source route, the local part unquoted.

    >>> parse_reverse_path('<@relay.example:"Mailer-Daemon"@example.com>')
    ReversePath(null=False, local_part='Mailer-Daemon', domain='example.com')
    """
    text = source.strip()
    if text.startswith("<"):
        text = text[1:]
    if text.endswith(">"):
        text = text[:-1]
    text = text.strip()
    if not text:
        return ReversePath(null=True)
    if text.startswith("@") and ":" in text:  # a source route: @relay1,@relay2:mailbox
        text = text.partition(":")[2].strip()
    local_part, at, domain = text.rpartition("@")  # a domain holds no "@"; a quoted local part may
    if not at:
        return ReversePath(null=False, local_part=_unquote(text))
    return ReversePath(null=False, local_part=_unquote(local_part), domain=domain)
