"""MX lookups through the resolver this machine uses: a tiny DNS client over UDP (RFC 1035).

The standard library resolves addresses but not MX records, so ``lookup_mx`` sends one MX query
to each ``nameserver`` of /etc/resolv.conf in turn (recursion desired) and reads the answer
section. It never raises: an unreachable or unusable resolver is ``MxLookup`` with status
``unreachable``, which preflight reports as ``unknown``.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ANSWERED: Final = "answered"  # the name exists; ``hosts`` may be empty (no MX record)
NO_SUCH_DOMAIN: Final = "no-such-domain"  # NXDOMAIN
UNREACHABLE: Final = "unreachable"  # no resolver answered usably

RESOLV_CONF: Final = Path("/etc/resolv.conf")
DNS_PORT: Final = 53
TYPE_MX: Final = 15
CLASS_IN: Final = 1
RCODE_NXDOMAIN: Final = 3
MAX_POINTERS: Final = 64  # a name with more compression pointers than this is a loop
DEFAULT_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True)
class MxLookup:
    """The MX answer for one domain: the exchange hosts (lower case, no trailing dot)."""

    status: str
    hosts: tuple[str, ...] = ()
    detail: str = ""


MxResolver = Callable[[str], MxLookup]


def system_nameservers(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """The ``nameserver`` addresses of resolv.conf (none when it cannot be read)."""
    try:
        lines = resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [
        fields[1]
        for fields in (line.split() for line in lines)
        if len(fields) >= 2 and fields[0] == "nameserver"
    ]


def encode_query(query_id: int, domain: str) -> bytes:
    """An MX query for ``domain`` (recursion desired); ``ValueError`` for a bad name."""
    labels = domain.rstrip(".").split(".")
    encoded = b""
    for label in labels:
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"{domain!r} is not a domain name")
        encoded += bytes([len(raw)]) + raw
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    return header + encoded + b"\x00" + struct.pack("!HH", TYPE_MX, CLASS_IN)


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """The (possibly compressed) name at ``offset`` and the offset after it in place."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(MAX_POINTERS):
        length = message[offset]
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", message, offset)[0] & 0x3FFF
            end = offset + 2 if end is None else end
            offset = pointer
            continue
        if length == 0:
            return ".".join(labels).lower(), (offset + 1 if end is None else end)
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise ValueError("a compression loop")


def decode_mx_answer(message: bytes, query_id: int) -> MxLookup:
    """The MX hosts of a response; ``ValueError`` when it is not an answer to our query."""
    try:
        ident, flags, qdcount, ancount, _, _ = struct.unpack_from("!HHHHHH", message, 0)
        if ident != query_id or not flags & 0x8000:
            raise ValueError("not the answer to this query")
        rcode = flags & 0x000F
        if rcode == RCODE_NXDOMAIN:
            return MxLookup(NO_SUCH_DOMAIN, detail="NXDOMAIN")
        if rcode != 0:
            raise ValueError(f"the resolver answered with error code {rcode}")
        offset = 12
        for _ in range(qdcount):
            _, offset = _read_name(message, offset)
            offset += 4
        hosts: list[tuple[int, str]] = []
        for _ in range(ancount):
            _, offset = _read_name(message, offset)
            rtype, _, _, length = struct.unpack_from("!HHIH", message, offset)
            offset += 10
            if rtype == TYPE_MX:
                (preference,) = struct.unpack_from("!H", message, offset)
                host, _ = _read_name(message, offset + 2)
                hosts.append((preference, host))
            offset += length
    except (struct.error, IndexError) as error:
        raise ValueError(f"a truncated or malformed answer ({error})") from None
    if flags & 0x0200 and not hosts:
        raise ValueError("the answer was truncated")
    return MxLookup(ANSWERED, tuple(host for _, host in sorted(hosts)))


def lookup_mx(
    domain: str,
    *,
    nameservers: Sequence[str] | None = None,
    port: int = DNS_PORT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> MxLookup:
    """Ask each nameserver (default: resolv.conf's) for ``domain``'s MX records; never raises."""
    servers = list(nameservers) if nameservers is not None else system_nameservers()
    if not servers:
        return MxLookup(UNREACHABLE, detail=f"no nameserver in {RESOLV_CONF}")
    problems: list[str] = []
    for server in servers:
        query_id = secrets.randbelow(0x10000)
        try:
            query = encode_query(query_id, domain)
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout_s)
                sock.sendto(query, (server, port))
                while True:  # skip stray datagrams; the timeout ends the wait
                    answer, _ = sock.recvfrom(4096)
                    try:
                        return decode_mx_answer(answer, query_id)
                    except ValueError as error:
                        if "not the answer" not in str(error):
                            raise
        except (OSError, ValueError) as error:
            problems.append(f"{server}: {error or type(error).__name__}")
    return MxLookup(UNREACHABLE, detail="; ".join(problems))
