"""The shared send budget on local endpoints: moto's server on 127.0.0.1 as DynamoDB, reached by
the real botocore client (the runtime finds it through ``AWS_ENDPOINT_URL_DYNAMODB``)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.queues
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3

from bounce_runtime.adapters.send_budget import SendBudget
from bounce_runtime.adapters.send_budget_item import send_budget_client_kwargs
from bounce_runtime.contract import SEND_BUDGET_KEY_ATTRIBUTE
from bounce_runtime.errors import SendBudgetUnavailable

REGION = "eu-west-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class SerializedDynamoDb:
    """WSGI middleware: one DynamoDB request at a time.

    DynamoDB applies a conditional write atomically against the item's latest state; moto's
    server does not (its threads check the condition and write without a lock, so two racing
    conditional UpdateItems can both succeed: the concurrency tests caught exactly that). This
    lock gives the local endpoint the guarantee the service documents. S3 and SQS pass freely.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


def _start_server() -> Any:
    """moto's threaded server on 127.0.0.1 (a free port), DynamoDB requests serialized."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = SerializedDynamoDb(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = Server(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def _serve_in_process(ports: multiprocessing.queues.Queue[int]) -> None:
    """Process target: serve until terminated; report the port first."""
    server = _start_server()
    ports.put(server.get_host_and_port()[1])
    threading.Event().wait()


@contextlib.contextmanager
def moto_server(*, own_process: bool = False) -> Iterator[str]:
    """moto's server on 127.0.0.1 (a free port), DynamoDB requests serialized as the service
    serializes writes to one item; yields its endpoint URL. ``own_process``: serve from a
    separate process (its own interpreter lock), as a benchmark under load needs."""
    if not own_process:
        server = _start_server()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
        return
    context = multiprocessing.get_context("spawn")
    ports: Any = context.Queue()
    process = context.Process(target=_serve_in_process, args=(ports,), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=60)}"
    finally:
        process.terminate()
        process.join(timeout=10)


def dynamodb_client(endpoint_url: str) -> Any:
    """A real botocore DynamoDB client for the budget, pointed at ``endpoint_url``."""
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint_url,
        **CREDENTIALS,
        **send_budget_client_kwargs(),
    )


def create_budget_table(endpoint_url: str, prefix: str = "send-budget") -> str:
    """A new budget table (a unique name: moto's state outlives one server in this process), as
    the construct defines it: one string partition key, on demand. Made with botocore's default
    timeouts (moto loads its DynamoDB backend on the first call). Returns its name."""
    table_name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url, **CREDENTIALS)
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": SEND_BUDGET_KEY_ATTRIBUTE, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": SEND_BUDGET_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table_name


def take_slots(
    endpoint_url: str,
    table_name: str,
    budget_id: str,
    rate_per_second: float,
    count: int,
    results: multiprocessing.queues.Queue[Any],
    max_attempts: int = 32,
) -> None:
    """Take ``count`` slots in a fresh container (its own client and empty state), without
    waiting for them; put ``("slot", start_s, take_seconds)`` or ``("unavailable", message)``
    on ``results`` for each. A process target for the concurrency tests."""
    budget = SendBudget(
        dynamodb_client(endpoint_url),
        table_name=table_name,
        budget_id=budget_id,
        rate_per_second=rate_per_second,
        max_attempts=max_attempts,
    )
    for _ in range(count):
        try:
            slot = budget.take(latest_start_s=time.time() + 3600.0)
        except SendBudgetUnavailable as error:
            results.put(("unavailable", error.message))
            continue
        assert slot is not None
        results.put(("slot", slot.start_s, slot.take_seconds))
