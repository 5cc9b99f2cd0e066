"""MX records come from the resolver this machine uses, read by a small stdlib DNS client: tested
against a DNS server on 127.0.0.1 that answers as resolvers do (compressed names, NXDOMAIN,
silence, garbage, a stray answer first); the MX check says ok, problem or unknown from it."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bounce_runtime.operations.dns_mx import (
    ANSWERED,
    NO_SUCH_DOMAIN,
    UNREACHABLE,
    MxLookup,
    lookup_mx,
    system_nameservers,
)
from bounce_runtime.operations.preflight_checks import OK, PROBLEM, UNKNOWN, check_mx

REGION = "eu-west-1"
INBOUND = f"inbound-smtp.{REGION}.amazonaws.com"
Answer = Callable[[bytes], list[bytes]]


def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def mx_answer(*hosts: tuple[int, str], rcode: int = 0, stray: bool = False) -> Answer:
    """Answers ``query`` with MX records; the owner name is a pointer to the question (offset
    12), and a host under the queried domain ends in a pointer too, as real servers compress."""

    def answer(query: bytes) -> list[bytes]:
        (ident,) = struct.unpack_from("!H", query)
        question = query[12:]
        domain_end = question.index(b"\x00") + 1
        domain = question[:domain_end]
        records = b""
        for preference, host in hosts:
            if host.endswith("." + ".".join(_labels(domain))):
                head = host[: -len(".".join(_labels(domain))) - 1]
                rdata = struct.pack("!H", preference) + _name(head)[:-1] + b"\xc0\x0c"
            else:
                rdata = struct.pack("!H", preference) + _name(host)
            records += b"\xc0\x0c" + struct.pack("!HHIH", 15, 1, 300, len(rdata)) + rdata
        header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(hosts), 0, 0)
        replies = [header + question + records]
        if stray:
            replies.insert(0, struct.pack("!HHHHHH", ident ^ 1, 0x8180, 0, 0, 0, 0))
        return replies

    return answer


def _labels(encoded: bytes) -> list[str]:
    labels, offset = [], 0
    while encoded[offset]:
        labels.append(encoded[offset + 1 : offset + 1 + encoded[offset]].decode())
        offset += 1 + encoded[offset]
    return labels


@pytest.fixture
def dns_server() -> Iterator[Callable[[Answer], int]]:
    """``serve(answer)``: a UDP DNS server on 127.0.0.1 replying with ``answer(query)``."""
    sockets: list[socket.socket] = []

    def serve(answer: Answer) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)

        def loop() -> None:
            try:
                while True:
                    query, peer = sock.recvfrom(512)
                    for reply in answer(query):
                        sock.sendto(reply, peer)
            except OSError:
                return

        threading.Thread(target=loop, daemon=True).start()
        return int(sock.getsockname()[1])

    yield serve
    for sock in sockets:
        sock.close()


def _lookup(port: int, domain: str = "example.com") -> MxLookup:
    return lookup_mx(domain, nameservers=["127.0.0.1"], port=port, timeout_s=0.5)


def test_mx_hosts_come_back_by_preference_with_compressed_names(
    dns_server: Callable[[Answer], int],
) -> None:
    port = dns_server(mx_answer((20, "backup.mx.example.com"), (10, INBOUND)))
    assert _lookup(port) == MxLookup(ANSWERED, (INBOUND, "backup.mx.example.com"))


def test_a_stray_answer_is_skipped(dns_server: Callable[[Answer], int]) -> None:
    port = dns_server(mx_answer((10, INBOUND), stray=True))
    assert _lookup(port).hosts == (INBOUND,)


def test_no_such_domain(dns_server: Callable[[Answer], int]) -> None:
    assert _lookup(dns_server(mx_answer(rcode=3))).status == NO_SUCH_DOMAIN


def test_a_domain_without_mx_records_is_answered_empty(dns_server: Callable[[Answer], int]) -> None:
    assert _lookup(dns_server(mx_answer())) == MxLookup(ANSWERED, ())


@pytest.mark.parametrize(
    "answer",
    [
        lambda query: [],  # silence: the timeout
        lambda query: [query[:2] + b"\x81\x80\x00"],  # truncated garbage with our id
        lambda query: [query[:2] + b"\x81\x82" + query[4:]],  # SERVFAIL
    ],
    ids=["silent", "garbage", "servfail"],
)
def test_an_unusable_resolver_is_unreachable_never_an_exception(
    dns_server: Callable[[Answer], int], answer: Answer
) -> None:
    result = _lookup(dns_server(answer))
    assert result.status == UNREACHABLE
    assert result.detail.startswith("127.0.0.1:")


def test_no_nameserver_is_unreachable(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# nothing\nsearch example.com\n")
    assert system_nameservers(conf) == []
    assert system_nameservers(tmp_path / "missing") == []
    conf.write_text("nameserver 10.0.0.2\nnameserver ::1\n")
    assert system_nameservers(conf) == ["10.0.0.2", "::1"]
    assert lookup_mx("example.com", nameservers=[]).status == UNREACHABLE


def test_the_check_reads_the_lookups() -> None:
    ok = check_mx(REGION, {"example.com": MxLookup(ANSWERED, (INBOUND,))})
    assert ok.status == OK
    elsewhere = check_mx(
        REGION,
        {
            "example.com": MxLookup(ANSWERED, ("mx.google.com",)),
            "example.org": MxLookup(NO_SUCH_DOMAIN),
            "example.net": MxLookup(ANSWERED, ()),
        },
    )
    assert elsewhere.status == PROBLEM
    assert "example.com -> mx.google.com" in elsewhere.meaning
    assert "example.org does not exist in DNS" in elsewhere.meaning
    assert "example.net -> no MX record" in elsewhere.meaning
    assert f"10 {INBOUND}" in elsewhere.fix
    other_region = check_mx("us-east-1", {"example.com": MxLookup(ANSWERED, (INBOUND,))})
    assert other_region.status == PROBLEM
    unreachable = check_mx(REGION, {"example.com": MxLookup(UNREACHABLE, detail="timed out")})
    assert unreachable.status == UNKNOWN
