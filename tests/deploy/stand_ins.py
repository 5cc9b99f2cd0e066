"""What a custom resource handler meets on deploy day, on 127.0.0.1: the pre-signed response URL
(an HTTP server recording every PUT), a proxy in front of moto's SES that can fail, apply and
then fail, or hang, CloudFormation's request events and the Lambda context."""

from __future__ import annotations

import importlib.util
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

from cdk_ses_bounce.activation import HANDLER_SOURCE

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/Bounces/0a1b2c3d"
LOGICAL_ID = "BouncesRuleSetActivation3F1A2B4C"
SERVICE_TOKEN = "arn:aws:lambda:eu-west-1:123456789012:function:Bounces-Activation"


def load_handler() -> ModuleType:
    """The handler as Lambda loads it: the file the template inlines, as module `index`."""
    spec = importlib.util.spec_from_file_location("index", HANDLER_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Put:
    """One request the response endpoint received."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler_class: type[BaseHTTPRequestHandler]) -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"


@dataclass
class ResponseEndpoint:
    """Stands in for the S3 pre-signed URL: records each request; answers 200, or the statuses
    queued in `failures` first (0 = drop the connection without an answer)."""

    received: list[Put] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    url: str = ""

    def start(self) -> _Server:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                headers = {name: value for name, value in self.headers.items()}
                endpoint.received.append(Put("PUT", self.path, headers, raw))
                status = endpoint.failures.pop(0) if endpoint.failures else 200
                if status == 0:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server, self.url = _serve(Handler)
        return server

    def answers_for(self, request_id: str) -> list[dict[str, Any]]:
        return [put.body for put in self.received if put.path.startswith(f"/{request_id}?")]

    def only_answer(self, request_id: str) -> dict[str, Any]:
        (answer,) = self.answers_for(request_id)
        return answer


@dataclass
class SesProxy:
    """Forwards SES requests to moto; `faults` maps an API action to what happens instead:
    ("fail", code, message) answers that error without forwarding; ("apply-then-fail",) forwards,
    then answers HTTP 500 (the change took effect, the caller cannot know); ("hang",) waits
    until `release` is set."""

    target: str
    faults: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def start(self) -> _Server:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                action = parse_qs(raw.decode()).get("Action", [""])[0]
                proxy.actions.append(action)
                fault = proxy.faults.get(action)
                if fault and fault[0] == "hang":
                    proxy.release.wait(30)
                    self.close_connection = True
                    return
                if fault and fault[0] == "fail":
                    self._answer(400, error_xml(fault[1], fault[2]))
                    return
                status, body = proxy.forward(raw, dict(self.headers.items()))
                if fault and fault[0] == "apply-then-fail":
                    self._answer(500, error_xml("InternalFailure", "answer lost"))
                    return
                self._answer(status, body)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server, self.url = _serve(Handler)
        return server

    def forward(self, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization")}
        request = urllib.request.Request(self.target + "/", data=raw, headers=keep, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, bytes(response.read())
        except urllib.error.HTTPError as error:
            return error.code, bytes(error.read())


def error_xml(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()


class LambdaContext:
    """The parts of Lambda's context object the handler reads."""

    def __init__(self, remaining_seconds: float = 120.0) -> None:
        self._deadline = time.monotonic() + remaining_seconds
        self.log_stream_name = "2026/12/06/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


_request_ids: Iterator[int] = itertools.count(1)


@dataclass
class CloudFormation:
    """Builds the request events CloudFormation sends for one custom resource."""

    response_url: str

    def event(
        self,
        request_type: str,
        rule_set_name: str | None = None,
        *,
        physical_id: str | None = None,
        old_rule_set_name: str | None = None,
    ) -> dict[str, Any]:
        request_id = f"request-{next(_request_ids)}"
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": SERVICE_TOKEN,
            "ResponseURL": f"{self.response_url}/{request_id}?X-Amz-Signature=abc&Expires=1",
            "StackId": STACK_ID,
            "RequestId": request_id,
            "LogicalResourceId": LOGICAL_ID,
            "ResourceType": "Custom::SesActiveReceiptRuleSet",
            "ResourceProperties": {"ServiceToken": SERVICE_TOKEN, "ServiceTimeout": "300"},
        }
        if rule_set_name is not None:
            event["ResourceProperties"]["RuleSetName"] = rule_set_name
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_rule_set_name is not None:
            event["OldResourceProperties"] = {
                "ServiceToken": SERVICE_TOKEN,
                "RuleSetName": old_rule_set_name,
            }
        return event
