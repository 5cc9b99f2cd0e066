"""Evenly spaced pacing of SendBounce calls against a per-instance budget."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class Pacer:
    """Lets at most ``rate_per_second`` calls through per second, evenly spaced.

    Call k after a start at time t0 is released no earlier than ``t0 + k / rate``; after an idle
    period the schedule restarts from the current time, so idling never builds up a burst.
    Time is measured with ``clock`` (monotonic seconds); ``sleep`` waits.
    """

    def __init__(
        self,
        rate_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(rate_per_second) and rate_per_second > 0):
            raise ValueError(
                f"rate_per_second must be a finite number > 0, got {rate_per_second!r}"
            )
        self.rate_per_second = rate_per_second
        self.interval = 1.0 / rate_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None
        self._lock = threading.Lock()

    def delay(self) -> float:
        """Seconds the next call would wait now (0.0 when it may go at once); takes no slot."""
        with self._lock:
            if self._next_slot is None:
                return 0.0
            return max(0.0, self._next_slot - self._clock())

    def wait(self) -> float:
        """Take the next slot, sleeping until it arrives; return the seconds slept."""
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval
        waited = slot - now
        if waited > 0:
            self._sleep(waited)
        return waited
