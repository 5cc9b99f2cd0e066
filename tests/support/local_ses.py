"""A local SES endpoint for `SendBounce` on 127.0.0.1, reached by botocore over HTTP.

moto does not implement SendBounce and botocore does not check SES's rules, so tests and benchmarks
point a real `ses` client (``endpoint_url=`` or ``AWS_ENDPOINT_URL_SES``) at this server. It is a
standard-library ``ThreadingHTTPServer`` rather than moto's server with a handler added: it needs no
moto internals, holds no global state between tests, and answers fast enough for timing.

Rate limit, two models:
- default: a token bucket of ``burst`` tokens (default 1) refilled at ``rate_per_second``. A call
  is accepted when a token is available and takes it; otherwise it is answered ``Throttling`` and
  changes nothing. :func:`count_rate_violations` applies the same rule to a list of arrival times.
- ``strict=True``: SES's documented rule taken literally (one call per second, no burst): a call
  arriving less than ``1/rate`` seconds after the previous ACCEPTED call is answered
  ``Throttling`` (HTTP 400), whatever happened before (:class:`MinimumSpacing`). For ``burst=1``
  the token bucket decides the same; the strict model states the rule directly and refuses a
  burst setting. :func:`count_close_calls` counts arrivals closer than ``1/rate`` to the one
  before.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

SES_NAMESPACE = "http://ses.amazonaws.com/doc/2010-12-01/"
BOUNCE_TYPES = (
    "DoesNotExist",
    "MessageTooLarge",
    "ExceededQuota",
    "ContentRejected",
    "Undefined",
    "TemporaryFailure",
)
DSN_ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")
EXTENSION_NAME_PATTERN = re.compile(r"[A-Za-z0-9-]{1,50}")
EXTENSION_VALUE_MAX = 2048
# Tolerance for float rounding when comparing a gap with 1/rate.
_EPSILON = 1e-9


class SesError(Exception):
    """An error answer: HTTP status, SES error code and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class AcceptedCall:
    """One accepted SendBounce: arrival time (time.monotonic()), parsed params, answer id."""

    time: float
    params: dict[str, Any]
    message_id: str


@dataclass(frozen=True)
class Attempt:
    """Any request that reached the server, with the error code it got ("" when accepted)."""

    time: float
    error_code: str
    # Arrival on the wall clock (time.time()), to compare with send-budget slots.
    wall_time: float = 0.0


class TokenBucket:
    """The rate rule: ``burst`` tokens refilled at ``rate_per_second``; one token per call."""

    def __init__(self, rate_per_second: float, burst: int = 1) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be > 0, got {rate_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def try_take(self, now: float) -> bool:
        """Take a token at time `now` if one is available; say whether it was."""
        if self._last is not None:
            refill = (now - self._last) * self.rate_per_second
            self._tokens = min(float(self.burst), self._tokens + refill)
        self._last = now
        if self._tokens + _EPSILON * self.rate_per_second >= 1.0:
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False


class MinimumSpacing:
    """The strict rule: a call closer than ``1/rate_per_second`` to the previous accepted call is
    refused (and changes nothing); no burst, no credit for idle time."""

    def __init__(self, rate_per_second: float) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be > 0, got {rate_per_second!r}")
        self.rate_per_second = rate_per_second
        self.interval = 1.0 / rate_per_second
        self._last_accepted: float | None = None

    def try_take(self, now: float) -> bool:
        """Accept a call arriving at `now` if it is at least one interval after the previous
        accepted call; say whether it was accepted."""
        if self._last_accepted is not None and now - self._last_accepted < self.interval * (
            1 - _EPSILON
        ):
            return False
        self._last_accepted = now
        return True


def count_close_calls(times: Iterable[float], rate_per_second: float) -> int:
    """How many of `times` (any order) arrive less than ``1/rate`` after the time before them."""
    ordered = sorted(times)
    interval = 1.0 / rate_per_second
    return sum(1 for a, b in pairwise(ordered) if b - a < interval * (1 - _EPSILON))


def count_rate_violations(times: Iterable[float], rate_per_second: float, burst: int = 1) -> int:
    """How many of `times` (arrival times, any order) the server's token-bucket rule would refuse.

    Refused calls take no token, exactly as in the server.
    """
    bucket = TokenBucket(rate_per_second, burst)
    return sum(1 for t in sorted(times) if not bucket.try_take(t))


LIST_PARAMETERS = frozenset({"BouncedRecipientInfoList", "ExtensionFields"})


def parse_query_params(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Turn flattened query-protocol parameters (``A.member.1.B=x``) into nested dicts and lists.

    botocore serializes an empty list as an empty value (``BouncedRecipientInfoList=``): for the
    list parameters of SendBounce that becomes ``[]``.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        node = root
        index = 0
        while index < len(parts) - 1:
            name = parts[index]
            if parts[index + 1] == "member" and index + 2 < len(parts):
                members = node.setdefault(name, _Members())
                if not isinstance(members, _Members) or not parts[index + 2].isdigit():
                    raise SesError("InvalidParameterValue", f"Parameter {key} is malformed")
                node = members.setdefault(int(parts[index + 2]), {})
                index += 3
            else:
                node = node.setdefault(name, {})
                index += 1
        if index < len(parts):
            last = parts[index]
            node[last] = _Members() if value == "" and last in LIST_PARAMETERS else value
    result: dict[str, Any] = _as_lists(root)
    return result


class _Members(dict[int, Any]):
    """The members of a list parameter by position, before they become a list."""


def _as_lists(node: Any) -> Any:
    if isinstance(node, _Members):
        return [_as_lists(node[position]) for position in sorted(node)]
    if isinstance(node, dict):
        return {key: _as_lists(value) for key, value in node.items()}
    return node


def _require(data: dict[str, Any], name: str, where: str) -> Any:
    value = data.get(name)
    if value is None or value == "":
        raise SesError("MissingParameter", f"The request must contain the parameter {where}{name}")
    return value


def _check_extension_fields(fields: list[dict[str, Any]], where: str) -> None:
    for position, extension in enumerate(fields, start=1):
        path = f"{where}ExtensionFields.member.{position}."
        name = _require(extension, "Name", path)
        value = _require(extension, "Value", path)
        if not EXTENSION_NAME_PATTERN.fullmatch(name):
            raise SesError(
                "InvalidParameterValue",
                f"Extension field name {name!r} at {path}Name is invalid: 1 to 50 characters,"
                " letters, digits and dashes only",
            )
        if len(value) > EXTENSION_VALUE_MAX or "\r" in value or "\n" in value:
            raise SesError(
                "InvalidParameterValue",
                f"Extension field value at {path}Value is invalid ({len(value)} characters):"
                f" at most {EXTENSION_VALUE_MAX} characters and no CR or LF",
            )


def validate_send_bounce(params: dict[str, Any]) -> None:
    """Raise SesError for a SendBounce request that breaks the documented rules."""
    _require(params, "OriginalMessageId", "")
    _require(params, "BounceSender", "")
    recipients = params.get("BouncedRecipientInfoList")
    if recipients is None:
        raise SesError(
            "MissingParameter", "The request must contain the parameter BouncedRecipientInfoList"
        )
    if not recipients:
        raise SesError("InvalidParameterValue", "BouncedRecipientInfoList must not be empty")
    dsn = params.get("MessageDsn")
    if dsn is not None:
        _require(dsn, "ReportingMta", "MessageDsn.")
        _check_extension_fields(dsn.get("ExtensionFields", []), "MessageDsn.")
    for position, info in enumerate(recipients, start=1):
        where = f"BouncedRecipientInfoList.member.{position}."
        _require(info, "Recipient", where)
        bounce_type = info.get("BounceType")
        fields = info.get("RecipientDsnFields")
        if bounce_type is None and fields is None:
            raise SesError(
                "InvalidParameterValue",
                f"{where[:-1]} needs BounceType or RecipientDsnFields; it has neither",
            )
        if bounce_type is not None and bounce_type not in BOUNCE_TYPES:
            raise SesError(
                "ValidationError",
                f"Value {bounce_type!r} at {where}BounceType failed to satisfy constraint:"
                f" Member must satisfy enum value set: [{', '.join(BOUNCE_TYPES)}]",
            )
        if fields is not None:
            dsn_where = f"{where}RecipientDsnFields."
            action = _require(fields, "Action", dsn_where)
            _require(fields, "Status", dsn_where)
            if action not in DSN_ACTIONS:
                raise SesError(
                    "ValidationError",
                    f"Value {action!r} at {dsn_where}Action failed to satisfy constraint:"
                    f" Member must satisfy enum value set: [{', '.join(DSN_ACTIONS)}]",
                )
            _check_extension_fields(fields.get("ExtensionFields", []), dsn_where)


def sender_is_verified(params: dict[str, Any], verified: frozenset[str]) -> bool:
    """Whether the request's sender may send: its address or domain is verified, or, with
    BounceSenderArn, the ARN's identity is verified and the sender address belongs to it."""
    address = parseaddr(params["BounceSender"])[1].lower()
    domain = address.rpartition("@")[2]
    arn = params.get("BounceSenderArn")
    if not arn:
        return address in verified or domain in verified
    identity = arn.partition(":identity/")[2].lower()
    return identity in verified and identity in (address, domain)


class LocalSes:
    """A SendBounce endpoint on 127.0.0.1 with a random free port; use it as a context manager.

    ``verified`` holds verified identities (addresses and domains, case-insensitive). With
    ``BounceSenderArn`` the named identity must be verified and the sender must belong to it.
    ``strict=True`` enforces the one-call-per-interval rule (:class:`MinimumSpacing`) instead of
    the token bucket.
    """

    def __init__(
        self,
        *,
        rate_per_second: float = 1.0,
        burst: int = 1,
        strict: bool = False,
        verified: Iterable[str] = ("example.com",),
        region: str = "eu-west-1",
    ) -> None:
        if strict and burst != 1:
            raise ValueError(f"strict=True allows no burst: burst must be 1, got {burst!r}")
        self.strict = strict
        self.rule: TokenBucket | MinimumSpacing = (
            MinimumSpacing(rate_per_second) if strict else TokenBucket(rate_per_second, burst)
        )
        self.verified = frozenset(identity.lower() for identity in verified)
        self.region = region
        self.calls: list[AcceptedCall] = []
        self.attempts: list[Attempt] = []
        self._injected: list[SesError] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def rate_per_second(self) -> float:
        """The configured limit."""
        return self.rule.rate_per_second

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError("LocalSes is not running: use it in a `with` block or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def throttled(self) -> int:
        """How many requests were answered Throttling."""
        with self._lock:
            return sum(1 for attempt in self.attempts if attempt.error_code == "Throttling")

    def inject_errors(self, *errors: tuple[str, int]) -> None:
        """Answer the next requests, in order, with these (code, HTTP status) errors."""
        with self._lock:
            self._injected.extend(
                SesError(code, f"Injected {code} ({status})", status) for code, status in errors
            )

    def start(self) -> Self:
        """Start serving in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="local-ses",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open client connection."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def handle(self, pairs: Sequence[tuple[str, str]], now: float) -> str:
        """Answer one request arriving at `now`: the MessageId, or raise SesError."""
        wall_time = time.time() - (time.monotonic() - now)
        try:
            message_id = self._answer(pairs, now, wall_time)
        except SesError as error:
            with self._lock:
                self.attempts.append(Attempt(now, error.code, wall_time))
            raise
        return message_id

    def _answer(self, pairs: Sequence[tuple[str, str]], now: float, wall_time: float) -> str:
        params = parse_query_params(pairs)
        action = params.pop("Action", None)
        params.pop("Version", None)
        if action != "SendBounce":
            raise SesError("InvalidAction", f"Action {action!r} is not supported: only SendBounce")
        validate_send_bounce(params)
        if not sender_is_verified(params, self.verified):
            raise SesError(
                "MessageRejected",
                "Email address is not verified. The following identities failed the check in"
                f" region {self.region.upper()}: {params['BounceSender']}",
            )
        with self._lock:
            if self._injected:
                raise self._injected.pop(0)
            if not self.rule.try_take(now):
                raise SesError("Throttling", "Maximum SendBounce rate exceeded.")
            message_id = f"0102{uuid.uuid4().hex}-000000"
            self.calls.append(AcceptedCall(now, params, message_id))
            self.attempts.append(Attempt(now, "", wall_time))
        return message_id


def _xml_ok(message_id: str) -> bytes:
    return (
        f'<SendBounceResponse xmlns="{SES_NAMESPACE}"><SendBounceResult>'
        f"<MessageId>{escape(message_id)}</MessageId></SendBounceResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SendBounceResponse>"
    ).encode()


def _xml_error(error: SesError) -> bytes:
    kind = "Sender" if error.status < 500 else "Receiver"
    return (
        f'<ErrorResponse xmlns="{SES_NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def _handler_class(ses: LocalSes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with ses._lock:
                ses._connections.add(self.connection)

        def finish(self) -> None:
            with ses._lock:
                ses._connections.discard(self.connection)
            super().finish()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            now = time.monotonic()
            try:
                status, payload = 200, _xml_ok(ses.handle(parse_qsl(body, True), now))
            except SesError as error:
                status, payload = error.status, _xml_error(error)
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests and benchmarks print their own figures."""

    return Handler
