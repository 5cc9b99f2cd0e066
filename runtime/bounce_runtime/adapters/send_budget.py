"""The shared SendBounce budget: strictly spaced slots taken from one DynamoDB item.

SES allows one SendBounce call per second per account and region, with no burst. Every container
of every processor in the account and region takes a slot from the same item before each call:

    slot      = max(now + lead, next_free)     (lead: ~2 write round trips, so the answer
                                                 normally arrives before the slot)
    next_free = slot + 1/rate + margin

written with a conditional UpdateItem (``next_free <= slot``), so the granted slots form one
sequence, each at least ``1/rate + margin`` after the one before, whoever took them. DynamoDB
applies a conditional write only if its condition holds on the item as it is when the write is
applied, so two racing writers cannot both succeed from the same ``next_free``; the loser gets the
item back (``ReturnValuesOnConditionCheckFailure``) and tries the later slot.

Rules that keep a slot safe to use:
- Nothing is written for a slot later than ``latest_start_s``: ``take`` returns None instead, so a
  caller never holds a slot it cannot use (the record goes back to the queue unsent).
- A call starts within ``late_tolerance_s`` of its slot or not at all: ``acquire`` never uses a
  slot it reaches late (a slow write, a paused host); it moves it to now when no one has taken
  the slot after it (one conditional write), else takes the next one. The margin covers
  that lateness plus the clock difference between hosts (see ``contract.SEND_BUDGET_MARGIN_S``).
- When the budget cannot be reached (an error, throttling, or too many lost races), the take
  raises ``SendBudgetUnavailable``: the caller must not send. There is no unpaced fallback.

The slot clock is the wall clock (``time.time``), the one clock hosts share. Clock, sleep and
random source are injectable for tests.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from bounce_runtime.contract import (
    SEND_BUDGET_CONNECT_TIMEOUT_S,
    SEND_BUDGET_KEY_ATTRIBUTE,
    SEND_BUDGET_LATE_TOLERANCE_S,
    SEND_BUDGET_LEAD_S,
    SEND_BUDGET_MARGIN_S,
    SEND_BUDGET_MAX_ATTEMPTS,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    SEND_BUDGET_READ_TIMEOUT_S,
    SEND_BUDGET_RETRY_MAX_DELAY_S,
)
from bounce_runtime.errors import SendBudgetUnavailable

CONDITION_FAILED = "ConditionalCheckFailedException"
# Errors no retry can fix: the budget is misconfigured (missing table, no permission).
_NOT_RETRYABLE = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ValidationException",
        "UnrecognizedClientException",
    }
)
# First delay after a lost race; it doubles per retry up to SEND_BUDGET_RETRY_MAX_DELAY_S.
_RETRY_BASE_DELAY_S = 0.002
# Seconds are written with microsecond precision (DynamoDB numbers are exact decimals).
_DECIMALS = 6


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


class SendBudget:
    """Slots from one budget item (``budget_id``) in the DynamoDB table ``table_name``.

    One instance per container; it is not shared between threads (a Lambda container handles one
    batch at a time). ``rate_per_second`` must be the budget's rate, the same for every taker.
    """

    def __init__(
        self,
        client: DynamoDbClient,
        *,
        table_name: str,
        budget_id: str,
        rate_per_second: float,
        margin_s: float = SEND_BUDGET_MARGIN_S,
        late_tolerance_s: float = SEND_BUDGET_LATE_TOLERANCE_S,
        lead_s: float = SEND_BUDGET_LEAD_S,
        max_attempts: int = SEND_BUDGET_MAX_ATTEMPTS,
        retry_max_delay_s: float = SEND_BUDGET_RETRY_MAX_DELAY_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not (math.isfinite(rate_per_second) and rate_per_second > 0):
            raise ValueError(
                f"rate_per_second must be a finite number > 0, got {rate_per_second!r}"
            )
        if not (0 <= late_tolerance_s <= margin_s):
            raise ValueError(
                f"late_tolerance_s must be between 0 and margin_s ({margin_s!r}), "
                f"got {late_tolerance_s!r}"
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts!r}")
        self.table_name = table_name
        self.budget_id = budget_id
        self.rate_per_second = rate_per_second
        self.spacing_s = 1.0 / rate_per_second + margin_s
        self.late_tolerance_s = late_tolerance_s
        self.lead_s = lead_s
        self.max_attempts = max_attempts
        self.retry_max_delay_s = retry_max_delay_s
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        # The last next_free this container saw (None: nothing seen yet, e.g. a new container).
        self._known_next_free: float | None = None
        # Slots reached too late (never used), and how many of them were moved to a later time
        # instead of waiting for the next free slot.
        self.missed_slots = 0
        self.rebooked_slots = 0
        # Seconds the last successful conditional write took (its answer's round trip).
        self._last_write_s = 0.0

    def now(self) -> float:
        """The budget's clock: wall-clock seconds since the epoch."""
        return self._clock()

    def delay(self) -> float:
        """Seconds until the next slot as this container last saw it (0.0 when unknown or past);
        a guess without I/O that takes nothing. Other takers may have moved it since."""
        if self._known_next_free is None:
            return 0.0
        return max(0.0, self._known_next_free - self._clock())

    def take(self, *, latest_start_s: float) -> Slot | None:
        """Take the next free slot, or return None (writing nothing) when it starts after
        ``latest_start_s`` (wall clock). Raises ``SendBudgetUnavailable`` when DynamoDB fails
        or every attempt loses a race."""
        started = self._clock()
        expected = self._known_next_free
        problem = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            now = self._clock()
            lead = self._lead()
            slot = now + lead if expected is None else max(now + lead, expected)
            if slot > latest_start_s:
                return None
            next_free = slot + self.spacing_s
            try:
                self._client.update_item(**self._update_request(slot, next_free))
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code == CONDITION_FAILED:
                    problem = f"lost {attempt} races for a slot"
                    try:
                        expected = self._next_free_from(error.response)
                    except (ClientError, BotoCoreError) as read_error:
                        problem = f"reading the budget after a lost race: {read_error}"
                        expected = None
                    self._known_next_free = expected
                    if expected is not None and max(self._clock() + lead, expected) > (
                        latest_start_s
                    ):
                        return None  # the schedule is already past latest_start: no wait
                elif code in _NOT_RETRYABLE:
                    raise SendBudgetUnavailable(self._describe(f"{code}: {error}")) from error
                else:  # throttling, server errors: retried within the attempt bound
                    problem = f"{code or 'error'}: {error}"
            except BotoCoreError as error:  # no connection, timeout: the write may have applied
                problem = f"{type(error).__name__}: {error}"
            else:
                self._known_next_free = next_free
                taken_at = self._clock()
                self._last_write_s = taken_at - now
                return Slot(slot, taken_at, taken_at - started, attempt)
            if attempt < self.max_attempts:
                self._sleep(self._retry_delay(attempt))
        raise SendBudgetUnavailable(self._describe(f"{self.max_attempts} attempts: {problem}"))

    def wait(self, slot: Slot) -> float:
        """Sleep until the slot starts; return the seconds slept (0.0 when it already has)."""
        wait_s = slot.start_s - self._clock()
        if wait_s > 0:
            self._sleep(wait_s)
            return wait_s
        return 0.0

    def is_late(self, slot: Slot) -> bool:
        """Whether it is too late now to start the slot's call (past its late tolerance)."""
        return self._clock() - slot.start_s > self.late_tolerance_s

    def acquire(self, *, latest_start_s: float) -> Slot | None:
        """Take a slot and sleep until it; the call must start at once. None: no slot starts by
        ``latest_start_s`` (nothing taken). Raises ``SendBudgetUnavailable`` as ``take`` does,
        and when ``max_attempts`` slots in a row are reached late.

        A slot reached late is never used. While no one has taken the slot after it, it is
        moved to now (``_rebook``: one conditional write), so a late wake-up costs a write, not
        a whole interval of the account's budget; otherwise the next free slot is taken."""
        slot = self.take(latest_start_s=latest_start_s)
        for attempt in range(1, self.max_attempts + 1):
            if slot is None:
                return None
            self.wait(slot)
            if not self.is_late(slot):
                return slot
            self.missed_slots += 1
            if attempt < self.max_attempts:
                rebooked = self._rebook(slot, latest_start_s)
                slot = rebooked or self.take(latest_start_s=latest_start_s)
        raise SendBudgetUnavailable(
            self._describe(f"{self.max_attempts} slots in a row were reached too late")
        )

    def _rebook(self, late: Slot, latest_start_s: float) -> Slot | None:
        """Move the late slot to ``now + lead`` if the item still ends with it (no one took a
        slot after it): ``SET next = new_slot + spacing IF next = late.start + spacing``. The
        slot before the late one stays at least a spacing earlier, and the taker after us sees
        the new next_free, so the spacing holds. None: someone took the next slot, the budget
        did not answer, or the new slot would start after ``latest_start_s`` (nothing moved)."""
        if self._known_next_free is None:
            return None
        ours = self._known_next_free
        started = self._clock()
        slot = started + self._lead()
        if slot > latest_start_s:
            return None
        next_free = slot + self.spacing_s
        request = self._update_request(slot, next_free)
        request["ConditionExpression"] = "#next = :ours"
        values = request["ExpressionAttributeValues"]
        values[":ours"] = {"N": f"{ours:.{_DECIMALS}f}"}
        del values[":slot"]
        try:
            self._client.update_item(**request)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) == CONDITION_FAILED:
                answer: Mapping[str, Any] = error.response
                item_next_free = _next_free_of(answer.get("Item"))
                if item_next_free is not None:
                    self._known_next_free = item_next_free
            return None
        except BotoCoreError:  # the write may have applied: that slot is wasted, never shared
            return None
        self.rebooked_slots += 1
        self._known_next_free = next_free
        taken_at = self._clock()
        self._last_write_s = taken_at - started
        return Slot(slot, taken_at, taken_at - started, 1)

    def _update_request(self, slot: float, next_free: float) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": {SEND_BUDGET_KEY_ATTRIBUTE: {"S": self.budget_id}},
            "UpdateExpression": "SET #next = :next",
            "ConditionExpression": "attribute_not_exists(#next) OR #next <= :slot",
            "ExpressionAttributeNames": {"#next": SEND_BUDGET_NEXT_FREE_ATTRIBUTE},
            "ExpressionAttributeValues": {
                ":next": {"N": f"{next_free:.{_DECIMALS}f}"},
                ":slot": {"N": f"{slot:.{_DECIMALS}f}"},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _next_free_from(self, response: Mapping[str, Any]) -> float | None:
        """The item's next_free from a failed condition's answer, else from a consistent read."""
        item = response.get("Item")
        if item is None:
            item = self._client.get_item(
                TableName=self.table_name,
                Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": self.budget_id}},
                ConsistentRead=True,
            ).get("Item")
        return _next_free_of(item)

    def _lead(self) -> float:
        """How far after now an idle budget's slot starts: ``lead_s``, or twice the last write's
        round trip when that is longer (capped at 1 s), so the answer comes before the slot."""
        return max(self.lead_s, min(1.0, 2.0 * self._last_write_s))

    def _retry_delay(self, attempt: int) -> float:
        ceiling = min(self.retry_max_delay_s, _RETRY_BASE_DELAY_S * 2.0 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    def _describe(self, problem: str) -> str:
        return (
            f"send budget {self.budget_id!r} in table {self.table_name!r} unavailable, "
            f"nothing sent: {problem}"
        )


def _next_free_of(item: Mapping[str, Any] | None) -> float | None:
    """The next_free attribute of a budget item (None: no item, or no schedule yet)."""
    value = (item or {}).get(SEND_BUDGET_NEXT_FREE_ATTRIBUTE, {}).get("N")
    return None if value is None else float(value)
