"""An in-memory budget table with DynamoDB's conditional-write semantics, and a fake wall clock:
the send budget's logic step by step in time, without an endpoint (the harness tests run the real
conditional expression against moto's DynamoDB server)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError

from bounce_runtime.contract import SEND_BUDGET_KEY_ATTRIBUTE, SEND_BUDGET_NEXT_FREE_ATTRIBUTE

TABLE = "budgets"
BUDGET = "ses-send-bounce"
START = 1_800_000_000.0  # wall clock, seconds since the epoch


class MovableClock(Protocol):
    """A fake clock whose ``now`` a write may move."""

    now: float


class FakeClock:
    """Wall-clock seconds that move only when something sleeps or the test advances them."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_error(code: str, operation: str = "UpdateItem", **extra: Any) -> ClientError:
    status = 400 if code != "InternalServerError" else 500
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} (fake)"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, operation)


class FakeBudgetTable:
    """One DynamoDB table of budget items: UpdateItem applies ``SET next = :next`` only when the
    item has no next_free or next_free <= :slot, as the real condition says (or, moving a late
    slot, when next_free = :ours; recorded in ``moved``, not ``granted``); a failed condition
    returns the item (ALL_OLD) unless ``return_item`` is off. ``errors`` are raised first, in
    order; ``write_seconds`` moves the clock per write (network and service time)."""

    def __init__(self, clock: MovableClock | None = None) -> None:
        self.items: dict[str, Decimal] = {}
        self.granted: list[tuple[str, Decimal]] = []
        # Late slots moved to a later time: (budget id, the new next_free).
        self.moved: list[tuple[str, Decimal]] = []
        self.update_calls = 0
        self.get_calls = 0
        self.errors: list[Exception] = []
        self.return_item = True
        self.write_seconds = 0.0
        self._clock = clock

    def update_item(self, **request: Any) -> Mapping[str, Any]:
        self.update_calls += 1
        if self._clock is not None:
            self._clock.now += self.write_seconds
        if self.errors:
            raise self.errors.pop(0)
        assert request["TableName"] == TABLE
        assert request["ExpressionAttributeNames"] == {"#next": SEND_BUDGET_NEXT_FREE_ATTRIBUTE}
        key = request["Key"][SEND_BUDGET_KEY_ATTRIBUTE]["S"]
        values = request["ExpressionAttributeValues"]
        next_free = Decimal(values[":next"]["N"])
        current = self.items.get(key)
        if request["ConditionExpression"] == "#next = :ours":  # moving a late slot
            holds = current == Decimal(values[":ours"]["N"])
        else:
            assert request["ConditionExpression"] == (
                "attribute_not_exists(#next) OR #next <= :slot"
            )
            holds = current is None or current <= Decimal(values[":slot"]["N"])
        if not holds:
            extra = {"Item": self._item(key)} if self.return_item and current is not None else {}
            raise client_error("ConditionalCheckFailedException", **extra)
        if ":slot" in values:
            self.granted.append((key, Decimal(values[":slot"]["N"])))
        else:
            self.moved.append((key, next_free))
        self.items[key] = next_free
        return {}

    def get_item(self, **request: Any) -> Mapping[str, Any]:
        self.get_calls += 1
        assert request["ConsistentRead"] is True
        key = request["Key"][SEND_BUDGET_KEY_ATTRIBUTE]["S"]
        return {"Item": self._item(key)} if key in self.items else {}

    def _item(self, key: str) -> dict[str, Any]:
        return {
            SEND_BUDGET_KEY_ATTRIBUTE: {"S": key},
            SEND_BUDGET_NEXT_FREE_ATTRIBUTE: {"N": str(self.items[key])},
        }
