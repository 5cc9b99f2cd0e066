"""The send budget's DynamoDB item as the runtime reads and writes it: the client it needs,
a granted slot, the spacing of a schedule, and the item's numbers as a failed write returns them
(``send_budget`` takes the slots; docs/design.md says how)."""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import math
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from botocore.exceptions import ClientError

from bounce_runtime.contract import (
    MAX_SEND_RATE_PER_SECOND,
    SEND_BUDGET_CONNECT_TIMEOUT_S,
    SEND_BUDGET_KEY_ATTRIBUTE,
    SEND_BUDGET_MARGIN_ATTRIBUTE,
    SEND_BUDGET_MAX_MARGIN_S,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    SEND_BUDGET_RATE_ATTRIBUTE,
    SEND_BUDGET_READ_TIMEOUT_S,
)

CONDITION_FAILED = "ConditionalCheckFailedException"
# Seconds are written with microsecond precision (DynamoDB numbers are exact decimals).
DECIMALS = 6


def send_budget_client_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``boto3.client("dynamodb", ...)``: no botocore retries (the budget
    retries itself, within its attempt bound), short timeouts."""
    from botocore.config import Config

    return {
        "config": Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=SEND_BUDGET_CONNECT_TIMEOUT_S,
            read_timeout=SEND_BUDGET_READ_TIMEOUT_S,
        )
    }


class DynamoDbClient(Protocol):
    """What the budget needs of a boto3 DynamoDB client."""

    def update_item(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...


class Slot(NamedTuple):
    """A granted slot: the call may start at ``start_s`` (wall clock, seconds since the epoch)
    and no later than ``start_s`` plus the budget's late tolerance."""

    start_s: float
    # Wall-clock time the slot was granted, seconds the take spent talking to DynamoDB, and how
    # many conditional writes it made.
    taken_at_s: float
    take_seconds: float
    attempts: int


class Spacing(NamedTuple):
    """The rate (calls per second) and margin (seconds) a schedule is spaced by."""

    rate_per_second: float
    margin_s: float

    @property
    def seconds(self) -> float:
        """Seconds between two slots: ``1/rate + margin``."""
        return 1.0 / self.rate_per_second + self.margin_s


class SeenItem(NamedTuple):
    """A budget item as a failed write returned it: its raw numbers (for an exact condition) and
    their values (None: absent, or not a valid number)."""

    raw: dict[str, Mapping[str, Any] | None]
    next_free: float | None
    spacing: Spacing | None


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def format_seconds(seconds: float) -> str:
    return f"{seconds:.{DECIMALS}f}"


def number_of(attribute: Mapping[str, Any] | None) -> float | None:
    """A finite number attribute's value (None: absent, or not a finite number)."""
    raw = (attribute or {}).get("N")
    if not isinstance(raw, str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def seen_item(item: Mapping[str, Any] | None) -> SeenItem:
    """A budget item's raw numbers and their values; a rate outside (0, MAX] or a margin outside
    [0, SEND_BUDGET_MAX_MARGIN_S] is no valid spacing (None)."""
    item = item or {}
    attributes = (
        SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
        SEND_BUDGET_RATE_ATTRIBUTE,
        SEND_BUDGET_MARGIN_ATTRIBUTE,
    )
    raw: dict[str, Mapping[str, Any] | None] = {}
    for attribute in attributes:
        value = item.get(attribute)
        raw[attribute] = value if isinstance(value, Mapping) else None
    rate = number_of(item.get(SEND_BUDGET_RATE_ATTRIBUTE))
    margin = number_of(item.get(SEND_BUDGET_MARGIN_ATTRIBUTE))
    spacing = None
    if (
        rate is not None
        and margin is not None
        and 0 < rate <= MAX_SEND_RATE_PER_SECOND
        and 0 <= margin <= SEND_BUDGET_MAX_MARGIN_S
    ):
        spacing = Spacing(rate, margin)
    return SeenItem(raw, number_of(item.get(SEND_BUDGET_NEXT_FREE_ATTRIBUTE)), spacing)


# The item's attributes as update expressions name them.
ATTRIBUTE_NAMES: Mapping[str, str] = {
    "#next": SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    "#rate": SEND_BUDGET_RATE_ATTRIBUTE,
    "#margin": SEND_BUDGET_MARGIN_ATTRIBUTE,
}


def item_key(budget_id: str) -> dict[str, Any]:
    return {SEND_BUDGET_KEY_ATTRIBUTE: {"S": budget_id}}


def spacing_values(spacing: Spacing) -> dict[str, Any]:
    return {
        ":rate": {"N": repr(spacing.rate_per_second)},
        ":margin": {"N": repr(spacing.margin_s)},
    }


def increment_request(
    table_name: str, budget_id: str, spacing: Spacing, earliest: float, latest: float
) -> dict[str, Any]:
    """The one write of a normal take: the next slot, if the schedule's next free slot lies
    between ``earliest`` and ``latest`` and the item is spaced as ``spacing``."""
    return {
        "TableName": table_name,
        "Key": item_key(budget_id),
        "UpdateExpression": "SET #next = #next + :spacing",
        "ConditionExpression": (
            "attribute_type(#next, :number) AND #next BETWEEN :earliest AND :latest"
            " AND #rate = :rate AND #margin = :margin"
        ),
        "ExpressionAttributeNames": dict(ATTRIBUTE_NAMES),
        "ExpressionAttributeValues": {
            ":number": {"S": "N"},
            ":spacing": {"N": format_seconds(spacing.seconds)},
            ":earliest": {"N": format_seconds(earliest)},
            ":latest": {"N": format_seconds(latest)},
            **spacing_values(spacing),
        },
        "ReturnValues": "UPDATED_OLD",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def returned_or_read(
    client: DynamoDbClient, table_name: str, budget_id: str, response: Mapping[str, Any]
) -> SeenItem:
    """The item a failed condition returned; without it (no item, or an endpoint that does not
    return it), a consistent read."""
    item = response.get("Item")
    if item is None:
        item = client.get_item(
            TableName=table_name, Key=item_key(budget_id), ConsistentRead=True
        ).get("Item")
    return seen_item(item)
