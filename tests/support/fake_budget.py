"""An in-memory budget table with DynamoDB's conditional-write semantics, and a fake wall clock:
the send budget's logic step by step in time, without an endpoint (the harness tests run the real
conditional expression against moto's DynamoDB server)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError

from bounce_runtime.contract import (
    SEND_BUDGET_KEY_ATTRIBUTE,
    SEND_BUDGET_MARGIN_ATTRIBUTE,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    SEND_BUDGET_RATE_ATTRIBUTE,
)

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


INCREMENT = "SET #next = #next + :spacing"
INCREMENT_CONDITION = (
    "attribute_type(#next, :number) AND #next BETWEEN :earliest AND :latest"
    " AND #rate = :rate AND #margin = :margin"
)
REWRITE = "SET #next = :next, #rate = :rate, #margin = :margin"
REBOOK = "SET #next = :next"
REBOOK_CONDITION = "#next = :ours AND #rate = :rate AND #margin = :margin"
NAMES = {
    "#next": SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    "#rate": SEND_BUDGET_RATE_ATTRIBUTE,
    "#margin": SEND_BUDGET_MARGIN_ATTRIBUTE,
}


class FakeBudgetTable:
    """One DynamoDB table of budget items, applying the three writes the budget makes as
    DynamoDB would, each against the item as it is:

    - the increment ``SET next = next + :spacing`` when ``:earliest <= next <= :latest`` and the
      item's rate and margin are ``:rate`` and ``:margin`` (the old next is the slot, returned as
      ``UPDATED_OLD``; recorded in ``granted``);
    - the rewrite ``SET next, rate, margin`` when every attribute is exactly as seen (or absent,
      ``attribute_not_exists``); its slot is ``next - spacing`` (recorded in ``granted``);
    - the move of a late slot, ``SET next = :next`` when ``next = :ours`` (recorded in
      ``moved``).

    ``items`` holds each item's next_free and ``spacings`` its (rate, margin) as stored numbers
    (set them to model a manipulated item or one of an older version, which has no spacing). A
    failed condition returns the item (ALL_OLD) unless ``return_item`` is off. ``errors`` are
    raised first, in order; ``write_seconds`` moves the clock per write."""

    def __init__(self, clock: MovableClock | None = None) -> None:
        self.items: dict[str, Decimal] = {}
        self.spacings: dict[str, tuple[str, str]] = {}
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
        assert request["ExpressionAttributeNames"] == NAMES
        key = request["Key"][SEND_BUDGET_KEY_ATTRIBUTE]["S"]
        values = request["ExpressionAttributeValues"]
        update, condition = request["UpdateExpression"], request["ConditionExpression"]
        current = self.items.get(key)
        rate, margin = self.spacings.get(key, (None, None))
        same_spacing = (
            rate is not None
            and margin is not None
            and Decimal(rate) == Decimal(values[":rate"]["N"])
            and Decimal(margin) == Decimal(values[":margin"]["N"])
        )
        if update == INCREMENT:
            assert condition == INCREMENT_CONDITION
            assert request["ReturnValues"] == "UPDATED_OLD"
            holds = (
                current is not None
                and Decimal(values[":earliest"]["N"]) <= current <= Decimal(values[":latest"]["N"])
                and same_spacing
            )
            if holds:
                assert current is not None
                self.granted.append((key, current))
                self.items[key] = current + Decimal(values[":spacing"]["N"])
                return {"Attributes": {SEND_BUDGET_NEXT_FREE_ATTRIBUTE: {"N": str(current)}}}
        elif update == REWRITE:
            stored = {
                "#next": None if current is None else current,
                "#rate": rate,
                "#margin": margin,
            }
            holds = all(self._matches(part, stored, values) for part in condition.split(" AND "))
            if holds:
                next_free = Decimal(values[":next"]["N"])
                new_rate, new_margin = values[":rate"]["N"], values[":margin"]["N"]
                spacing = Decimal(1) / Decimal(new_rate) + Decimal(new_margin)
                self.granted.append((key, (next_free - spacing).quantize(Decimal("0.000001"))))
                self.items[key] = next_free
                self.spacings[key] = (new_rate, new_margin)
                return {}
        else:
            assert (update, condition) == (REBOOK, REBOOK_CONDITION)
            holds = current == Decimal(values[":ours"]["N"]) and same_spacing
            if holds:
                self.moved.append((key, Decimal(values[":next"]["N"])))
                self.items[key] = Decimal(values[":next"]["N"])
                return {}
        exists = current is not None or key in self.spacings
        extra = {"Item": self._item(key)} if self.return_item and exists else {}
        raise client_error("ConditionalCheckFailedException", **extra)

    @staticmethod
    def _matches(part: str, stored: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
        if part.startswith("attribute_not_exists("):
            return stored[part[len("attribute_not_exists(") : -1]] is None
        name, placeholder = part.split(" = ")
        return stored[name] is not None and Decimal(stored[name]) == Decimal(
            values[placeholder]["N"]
        )

    def get_item(self, **request: Any) -> Mapping[str, Any]:
        self.get_calls += 1
        assert request["ConsistentRead"] is True
        key = request["Key"][SEND_BUDGET_KEY_ATTRIBUTE]["S"]
        exists = key in self.items or key in self.spacings
        return {"Item": self._item(key)} if exists else {}

    def _item(self, key: str) -> dict[str, Any]:
        item: dict[str, Any] = {SEND_BUDGET_KEY_ATTRIBUTE: {"S": key}}
        if key in self.items:
            item[SEND_BUDGET_NEXT_FREE_ATTRIBUTE] = {"N": str(self.items[key])}
        if key in self.spacings:
            rate, margin = self.spacings[key]
            item[SEND_BUDGET_RATE_ATTRIBUTE] = {"N": rate}
            item[SEND_BUDGET_MARGIN_ATTRIBUTE] = {"N": margin}
        return item
