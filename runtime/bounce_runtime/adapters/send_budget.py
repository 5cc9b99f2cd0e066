"""The shared SendBounce budget: strictly spaced slots taken from one DynamoDB item.

SES allows one SendBounce call per second per account and region, with no burst. Every container
of every processor in the account and region takes a slot from the same item before each call.
The item holds the next free slot (``next_free``, wall clock) and the rate and margin its schedule
is spaced by (``spacing = 1/rate + margin``). A take is normally ONE write that never conflicts:

    SET next_free = next_free + spacing
    IF  now + lead <= next_free <= latest_start  AND rate, margin are the taker's

and the slot is the old ``next_free`` (``ReturnValues=UPDATED_OLD``): DynamoDB applies writes to
one item one after the other, so N simultaneous takers get N consecutive slots with no lost race.
Only a failed condition makes the taker look at the item (an idle or missing item, no slot in
time, another rate or margin: the slower spacing wins, a far-ahead or invalid item: repaired and
counted); docs/design.md ("How the runtime sends") has the table of what each case does.

A slot is safe to use because: nothing is written for a slot later than ``latest_start_s``
(``take`` returns None: the record goes back unsent); a call starts within ``late_tolerance_s`` of
its slot or not at all (``acquire`` moves a late slot to now or takes the next one; the margin
covers that lateness and the clock difference between hosts); every take starts with a write, so
what the container last saw of the item serves only ``delay()``; an unreachable DynamoDB raises
``SendBudgetUnavailable`` (no unpaced fallback), and contention never does.

The slot clock is the wall clock (``time.time``), the one clock hosts share. Clock, sleep and
random source are injectable for tests.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bounce_runtime.adapters.send_budget_item import (
    ATTRIBUTE_NAMES,
    CONDITION_FAILED,
    DynamoDbClient,
    SeenItem,
    Slot,
    Spacing,
    error_code,
    format_seconds,
    increment_request,
    item_key,
    number_of,
    returned_or_read,
    spacing_values,
)
from bounce_runtime.contract import (
    SEND_BUDGET_LATE_TOLERANCE_S,
    SEND_BUDGET_LEAD_S,
    SEND_BUDGET_MARGIN_ATTRIBUTE,
    SEND_BUDGET_MARGIN_S,
    SEND_BUDGET_MAX_AHEAD_S,
    SEND_BUDGET_MAX_ATTEMPTS,
    SEND_BUDGET_MAX_WRITES,
    SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
    SEND_BUDGET_RATE_ATTRIBUTE,
    SEND_BUDGET_RETRY_MAX_DELAY_S,
)
from bounce_runtime.errors import SendBudgetUnavailable

__all__ = ["CONDITION_FAILED", "DynamoDbClient", "SendBudget", "Slot", "Spacing"]  # re-exported

# Errors no retry can fix: the budget is misconfigured (missing table, no permission).
_NOT_RETRYABLE = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ValidationException",
        "UnrecognizedClientException",
    }
)
# First delay after a failed write; it doubles per retry up to SEND_BUDGET_RETRY_MAX_DELAY_S.
_RETRY_BASE_DELAY_S = 0.002
# Allowance for clock differences when telling a far-ahead schedule from a legitimate one: no
# taker writes a next_free later than its own now + max_ahead_s + one spacing.
_HORIZON_SLACK_S = 60.0


class SendBudget:
    """Slots from one budget item (``budget_id``) in the DynamoDB table ``table_name``.

    One instance per container; it is not shared between threads (a Lambda container handles one
    batch at a time). ``rate_per_second`` should be the budget's rate, the same for every taker;
    a taker meeting an item spaced more widely adopts that spacing (``spacing``), one meeting an
    item spaced more narrowly rewrites it with its own.
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
        max_writes: int = SEND_BUDGET_MAX_WRITES,
        max_ahead_s: float = SEND_BUDGET_MAX_AHEAD_S,
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
        self.configured = Spacing(float(rate_per_second), float(margin_s))
        # The spacing this container takes slots with: its own, or an item's wider one.
        self.spacing = self.configured
        self.late_tolerance_s = late_tolerance_s
        self.lead_s = lead_s
        self.max_attempts = max_attempts
        self.max_writes = max(max_writes, max_attempts)
        self.max_ahead_s = max_ahead_s
        self.retry_max_delay_s = retry_max_delay_s
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        # The last next_free this container wrote or read (None: nothing yet); only a guess for
        # delay() and the condition of a rebook, never the basis of a decision.
        self._known_next_free: float | None = None
        # Slots reached too late (never used), and how many of them were moved to a later time
        # instead of waiting for the next free slot.
        self.missed_slots = 0
        self.rebooked_slots = 0
        # Items rewritten because their schedule was too far ahead or their numbers invalid; and
        # times this container adopted an item's wider spacing or widened an item's spacing.
        self.repairs = 0
        self.spacing_adoptions = 0
        self.spacing_widenings = 0
        # Seconds the last successful conditional write took (its answer's round trip).
        self._last_write_s = 0.0

    @property
    def rate_per_second(self) -> float:
        """The rate this container takes slots at (its own, or an item's slower one)."""
        return self.spacing.rate_per_second

    @property
    def spacing_s(self) -> float:
        """Seconds between two slots this container takes."""
        return self.spacing.seconds

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
        ``latest_start_s`` (wall clock; at most ``max_ahead_s`` from now). Raises
        ``SendBudgetUnavailable`` when DynamoDB fails ``max_attempts`` times, or when
        ``max_writes`` writes bring no slot."""
        started = self._clock()
        failures = 0
        problem = "no attempt made"
        for write in range(1, self.max_writes + 1):
            now = self._clock()
            earliest = now + self._lead()
            latest = min(latest_start_s, now + self.max_ahead_s)
            if latest < earliest:
                return None
            try:
                answer = self._client.update_item(**self._increment_request(earliest, latest))
            except ClientError as error:
                code = error_code(error)
                if code == "ValidationException":
                    # An item whose next_free is no number may fail the increment's validation
                    # rather than its condition: read it, and repair it if so.
                    code = CONDITION_FAILED if self._next_free_invalid() else code
                if code != CONDITION_FAILED:
                    failures, problem = self._failed(error, code, failures)
                    if failures >= self.max_attempts:
                        break
                    continue
                try:
                    seen = self._seen(error.response)
                except (ClientError, BotoCoreError) as read_error:
                    failures, problem = self._failed(read_error, error_code(read_error), failures)
                    if failures >= self.max_attempts:
                        break
                    continue
                outcome = self._after_condition_failed(seen, earliest, latest)
                if outcome is None:
                    return None
                if isinstance(outcome, float):  # the item was rewritten: this is our slot
                    return self._granted(outcome, started, now, write)
                if outcome:  # the rewrite failed on an error
                    failures, problem = failures + 1, str(outcome)
                    if failures < self.max_attempts:
                        self._sleep(self._retry_delay(failures))
            except BotoCoreError as error:  # no connection, timeout: the write may have applied
                failures, problem = self._failed(error, "", failures)
            else:
                slot = number_of(answer.get("Attributes", {}).get(SEND_BUDGET_NEXT_FREE_ATTRIBUTE))
                if slot is None:  # cannot happen: the condition required the attribute
                    raise SendBudgetUnavailable(self._describe("the write returned no slot"))
                return self._granted(slot, started, now, write)
            if failures >= self.max_attempts:
                break
        if failures >= self.max_attempts:
            problem = f"{failures} attempts: {problem}"
        else:
            problem = f"{self.max_writes} writes brought no slot: the item changed before each"
        raise SendBudgetUnavailable(self._describe(problem))

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
                rebooked = self._rebook(latest_start_s)
                slot = rebooked or self.take(latest_start_s=latest_start_s)
        raise SendBudgetUnavailable(
            self._describe(f"{self.max_attempts} slots in a row were reached too late")
        )

    # What a failed condition means ---------------------------------------------------------

    def _after_condition_failed(
        self, seen: SeenItem, earliest: float, latest: float
    ) -> float | bool | str | None:
        """Act on the item a failed increment returned. Returns the slot (a float) when the
        item was rewritten for it; None when no slot starts by ``latest``; False to try again
        (someone else moved the item; or this container adopted its spacing); or a problem
        (a str) when the rewrite failed on an error."""
        item_spacing = seen.spacing
        if item_spacing is not None and item_spacing.seconds > max(
            self.max_ahead_s, self.configured.seconds
        ):
            item_spacing = None  # slots further apart than any taker books: not a valid item
        if all(value is None for value in seen.raw.values()):  # no item: a new schedule
            return self._rewrite(seen, earliest, latest, earliest, self.configured)
        legacy = (
            seen.raw[SEND_BUDGET_RATE_ATTRIBUTE] is None
            and seen.raw[SEND_BUDGET_MARGIN_ATTRIBUTE] is None
        )
        if seen.next_free is None or (item_spacing is None and not legacy):
            # numbers that are not valid: repair
            return self._rewrite(seen, earliest, latest, earliest, self.spacing, repair=True)
        horizon = (
            self._clock()
            + self.max_ahead_s
            + max(self.spacing.seconds, item_spacing.seconds if item_spacing else 0.0)
            + _HORIZON_SLACK_S
        )
        if seen.next_free > horizon:  # further ahead than any taker books: repair
            spacing = self.spacing
            if item_spacing is not None and item_spacing.seconds > spacing.seconds:
                spacing = item_spacing
            return self._rewrite(seen, earliest, latest, earliest, spacing, repair=True)
        if item_spacing is None:  # an item of a version that stored no spacing: add ours
            slot = max(earliest, seen.next_free)
            return self._rewrite(seen, earliest, latest, slot, self.spacing)
        if item_spacing != self.spacing:
            if item_spacing.seconds >= self.configured.seconds:  # as wide or wider: adopt it
                self.spacing = item_spacing
                self.spacing_adoptions += 1
                return False
            # Narrower than ours: widen the item; our slot is one of our spacings after its last.
            wider = Spacing(*max(self.configured, self.spacing, key=lambda s: s.seconds))
            self.spacing = wider
            slot = max(earliest, seen.next_free - item_spacing.seconds + wider.seconds)
            self.spacing_widenings += 1
            return self._rewrite(seen, earliest, latest, slot, wider)
        self._known_next_free = seen.next_free
        if seen.next_free > latest:
            return None
        if seen.next_free < earliest:  # idle: a new schedule from now, after the last slot
            return self._rewrite(seen, earliest, latest, earliest, self.spacing)
        return False  # the item moved between our write and its answer: try again

    def _rewrite(
        self,
        seen: SeenItem,
        earliest: float,
        latest: float,
        slot: float,
        spacing: Spacing,
        *,
        repair: bool = False,
    ) -> float | bool | str | None:
        """Write ``next_free = slot + spacing`` with ``spacing`` onto the item if it still holds
        exactly what was ``seen``. Returns the slot, None when ``slot`` is after ``latest``, False
        when someone changed the item first, or a problem (a str) on an error."""
        # Not before now + lead as of this write (the failed write before it took time).
        slot = max(slot, earliest, self._clock() + self._lead())
        if slot > latest:
            return None
        next_free = slot + spacing.seconds
        conditions: list[str] = []
        values: dict[str, Any] = {
            ":next": {"N": format_seconds(next_free)},
            ":rate": {"N": repr(spacing.rate_per_second)},
            ":margin": {"N": repr(spacing.margin_s)},
        }
        names = {
            "#next": SEND_BUDGET_NEXT_FREE_ATTRIBUTE,
            "#rate": SEND_BUDGET_RATE_ATTRIBUTE,
            "#margin": SEND_BUDGET_MARGIN_ATTRIBUTE,
        }
        for placeholder, attribute in names.items():
            raw = seen.raw[attribute]
            if raw is None:
                conditions.append(f"attribute_not_exists({placeholder})")
            else:
                conditions.append(f"{placeholder} = :seen{placeholder[1:]}")
                values[f":seen{placeholder[1:]}"] = dict(raw)
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(),
                UpdateExpression="SET #next = :next, #rate = :rate, #margin = :margin",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            code = error_code(error)
            if code == CONDITION_FAILED:
                return False
            if code in _NOT_RETRYABLE:
                raise SendBudgetUnavailable(self._describe(f"{code}: {error}")) from error
            return f"{code or 'error'}: {error}"
        except BotoCoreError as error:  # the write may have applied: its slot is wasted
            return f"{type(error).__name__}: {error}"
        if repair:
            self.repairs += 1
        self.spacing = spacing
        self._known_next_free = next_free
        return slot

    def _rebook(self, latest_start_s: float) -> Slot | None:
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
        next_free = slot + self.spacing.seconds
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(),
                UpdateExpression="SET #next = :next",
                ConditionExpression="#next = :ours AND #rate = :rate AND #margin = :margin",
                ExpressionAttributeNames=dict(ATTRIBUTE_NAMES),
                ExpressionAttributeValues={
                    ":next": {"N": format_seconds(next_free)},
                    ":ours": {"N": format_seconds(ours)},
                    **spacing_values(self.spacing),
                },
            )
        except (ClientError, BotoCoreError):  # taken after us, or no answer: take anew
            return None
        self.rebooked_slots += 1
        self._known_next_free = next_free
        taken_at = self._clock()
        self._last_write_s = taken_at - started
        return Slot(slot, taken_at, taken_at - started, 1)

    # Requests and answers ------------------------------------------------------------------

    def _increment_request(self, earliest: float, latest: float) -> dict[str, Any]:
        return increment_request(self.table_name, self.budget_id, self.spacing, earliest, latest)

    def _key(self) -> dict[str, Any]:
        return item_key(self.budget_id)

    def _seen(self, response: Mapping[str, Any]) -> SeenItem:
        return returned_or_read(self._client, self.table_name, self.budget_id, response)

    def _next_free_invalid(self) -> bool:
        """Whether the item holds a next_free that is not a finite number (one read)."""
        try:
            seen = self._seen({})
        except (ClientError, BotoCoreError):
            return False
        return seen.raw[SEND_BUDGET_NEXT_FREE_ATTRIBUTE] is not None and seen.next_free is None

    def _granted(self, slot: float, started: float, now: float, writes: int) -> Slot:
        self._known_next_free = slot + self.spacing.seconds
        taken_at = self._clock()
        self._last_write_s = taken_at - now
        return Slot(slot, taken_at, taken_at - started, writes)

    def _failed(self, error: Exception, code: str, failures: int) -> tuple[int, str]:
        """Count a failed write (raise at once when no retry can help); pause before the next."""
        if code in _NOT_RETRYABLE:
            raise SendBudgetUnavailable(self._describe(f"{code}: {error}")) from error
        failures += 1
        if failures < self.max_attempts:
            self._sleep(self._retry_delay(failures))
        name = code or type(error).__name__
        return failures, f"{name}: {error}"

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
