"""SendBounce with pacing, retries with backoff and jitter, a deadline and the 24-hour window.

botocore's own retries are turned off on the SES client (``clients.ses_client_kwargs()``) so that
this module decides every attempt: each one takes a pacing slot (the container's ``Pacer``, then,
when one is set, a slot of the account's shared ``SendBudget``), and none starts unless the Lambda
has time left to finish it and to tag the object afterwards (``after_send_reserve_s``), nor once
SES's SendBounce window is about to close. The S3 and SQS clients
(``clients.aws_client_kwargs()``) retry once with short timeouts, so one call has a known bound.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.contract import (
    AFTER_SEND_RESERVE_S,
    SEND_ATTEMPT_TIMEOUT_S,
    SEND_WINDOW_MARGIN_S,
)
from bounce_runtime.errors import (
    InvalidBounceRequest,
    MailExpired,
    SendDeadlineExceeded,
    SendOutcomeUnknown,
    SendSlotUnavailable,
    SesConnectionFailed,
    SesRejected,
    SesThrottled,
    TransientSendError,
)

if TYPE_CHECKING:
    from bounce_runtime.adapters.protocols import SendBounceClient
    from bounce_runtime.adapters.send_budget import SendBudget

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestThrottled"}
)
SERVER_ERROR_CODES = frozenset(
    {"ServiceUnavailable", "InternalFailure", "InternalError", "ServiceUnavailableException"}
)
# Raised before any request is made (no credentials, no region): SES cannot have sent anything.
_NOT_SENT_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
)


class RetryPolicy(NamedTuple):
    """Attempt limit and exponential backoff with equal jitter, in seconds."""

    max_attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    attempt_timeout_s: float = SEND_ATTEMPT_TIMEOUT_S

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Delay before retry ``retry_number`` (1-based): half the ceiling plus a random half."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry_number - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class SendResult(NamedTuple):
    """A successful SendBounce: the bounce's MessageId, how many attempts it took, and the
    seconds its attempts waited for pacing slots (the container's pacer and the budget)."""

    message_id: str
    attempts: int
    throttles: int
    waited_s: float = 0.0


def _ignore() -> None:
    return None


class BounceSender:
    """Sends SendBounce requests through one SES client, paced and retried.

    ``budget``: the account's shared send budget. With one, every attempt (retries included)
    first takes a slot from it and starts within the slot's late tolerance, or is not made; if the
    budget cannot be reached, ``SendBudgetUnavailable`` (a ``TransientSendError``) is raised and
    nothing is sent. Without one, only the container's ``pacer`` spaces the calls (local use).
    """

    def __init__(
        self,
        client: "SendBounceClient",
        pacer: Pacer,
        *,
        budget: "SendBudget | None" = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        after_send_reserve_s: float = AFTER_SEND_RESERVE_S,
    ) -> None:
        self._client = client
        self._pacer = pacer
        self.budget = budget
        self.retry = retry or RetryPolicy()
        self.after_send_reserve_s = after_send_reserve_s
        self._sleep = sleep
        self._rng = rng or random.Random()

    def send(
        self,
        request: Mapping[str, Any],
        *,
        remaining_seconds: Callable[[], float],
        window_seconds: Callable[[], float] | None = None,
        on_throttle: Callable[[], None] = _ignore,
        on_budget_repair: Callable[[], None] = _ignore,
    ) -> SendResult:
        """Send one bounce; return its MessageId.

        ``remaining_seconds`` is the Lambda time left; ``window_seconds`` the time left until
        SES's 24-hour SendBounce window closes (None: not checked).

        Retried: throttling, and a connection that never carried the request (SES certainly did
        not act). Raises ``PermanentError`` when SES refuses the request (``ses-rejected:...``),
        when the outcome is unknown (``ses-outcome-unknown``: a 5xx answer, or no answer after
        the request went out) or when the next attempt would start less than
        ``SEND_WINDOW_MARGIN_S`` before the window closes (``expired``);
        ``SendDeadlineExceeded`` when no time is left for another attempt; ``TransientSendError``
        when the attempts run out. Every error of the SendBounce call itself is one of these, so
        any other exception was raised before SES was called.
        """
        throttles = 0
        waited_s = 0.0
        attempt = 0
        while True:
            attempt += 1
            wait_s = self._pacer.delay()
            self._require_window(window_seconds, wait_s, attempt)
            self._require_time(remaining_seconds, wait_s, attempt)
            waited_s += self._pacer.wait()
            if self.budget is not None:
                waited_s += self._take_budget_slot(
                    self.budget, remaining_seconds, window_seconds, attempt, on_budget_repair
                )
            try:
                response = self._client.send_bounce(**request)
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in THROTTLING_CODES:
                    throttles += 1
                    on_throttle()
                    failure: TransientSendError = SesThrottled(f"SES throttled: {error}")
                elif code in SERVER_ERROR_CODES or status >= 500:
                    # SES answered, so the request reached it, and failed on its side: it may
                    # have sent the bounce before failing. Retrying could send it twice, so the
                    # record goes to the dead-letter queue for an operator to check instead.
                    raise SendOutcomeUnknown(
                        f"SES answered with a server error after the request reached it, the "
                        f"bounce may have gone out: {error}",
                    ) from error
                else:
                    raise SesRejected(
                        f"SES rejected SendBounce: {error}", detail=f"{code or status}"
                    ) from error
            except ParamValidationError as error:
                raise InvalidBounceRequest(f"botocore refused the request: {error}") from error
            except _NOT_SENT_ERRORS as error:
                # No connection was made (or no request signed), so SES never saw the request:
                # safe to retry.
                failure = SesConnectionFailed(f"SES connection failed: {error}")
            except UnicodeEncodeError as error:
                # botocore encodes the request before it opens a connection: nothing was sent.
                raise InvalidBounceRequest(
                    f"botocore could not encode the request: {error}"
                ) from error
            except (BotocoreConnectionError, HTTPClientError) as error:
                # Any other connection failure (SSLError, ReadTimeoutError, ConnectionClosedError,
                # ...) may come after the request went out: SES may have sent the bounce.
                # Retrying could send it twice, so the record goes to the dead-letter queue for
                # an operator to check instead.
                raise SendOutcomeUnknown(
                    f"SendBounce sent but no response received, the bounce may have gone out: "
                    f"{error}",
                ) from error
            except Exception as error:
                # Anything else the call raised may have come after the request went out.
                raise SendOutcomeUnknown(
                    f"SendBounce failed unexpectedly, the bounce may have gone out: "
                    f"{type(error).__name__}: {error}",
                ) from error
            else:
                return SendResult(str(response["MessageId"]), attempt, throttles, waited_s)
            if attempt >= self.retry.max_attempts:
                raise type(failure)(
                    f"gave up after {attempt} attempts: {failure.message}"
                ) from failure
            delay = self.retry.backoff(attempt, self._rng)
            self._require_window(window_seconds, delay, attempt + 1)
            self._require_time(remaining_seconds, delay, attempt + 1)
            self._sleep(delay)

    @property
    def min_send_seconds(self) -> float:
        """Lambda time one attempt needs: its timeout plus the reserve for what follows it."""
        return self.retry.attempt_timeout_s + self.after_send_reserve_s

    def _take_budget_slot(
        self,
        budget: "SendBudget",
        remaining_seconds: Callable[[], float],
        window_seconds: Callable[[], float] | None,
        attempt: int,
        on_budget_repair: Callable[[], None] = _ignore,
    ) -> float:
        """Take a budget slot and sleep until it (returns the seconds that took); the attempt
        must start at once.

        The slot must start while the Lambda still has ``min_send_seconds`` left and at least
        ``SEND_WINDOW_MARGIN_S`` before the window closes. No such slot (nothing is taken):
        ``PermanentError`` (``expired``) when the window is the nearer bound, else
        ``SendSlotUnavailable`` (a ``SendDeadlineExceeded``: the record goes back to the queue
        unsent, counted as ``SendSlotUnavailable``). An unreachable budget raises
        ``SendBudgetUnavailable``. ``on_budget_repair`` is called once per budget item the take
        repaired (a schedule too far ahead, invalid numbers).
        """
        time_bound_s = remaining_seconds() - self.min_send_seconds
        window_bound_s = (
            math.inf if window_seconds is None else window_seconds() - SEND_WINDOW_MARGIN_S
        )
        now = budget.now()
        repairs = budget.repairs
        try:
            slot = budget.acquire(latest_start_s=now + min(time_bound_s, window_bound_s))
        finally:
            for _ in range(budget.repairs - repairs):
                on_budget_repair()
        waited_s = budget.now() - now
        if slot is not None:
            return waited_s
        if window_bound_s <= time_bound_s:
            raise MailExpired(
                f"attempt {attempt}: the send budget has no slot in the "
                f"{max(0.0, window_bound_s):.2f} s left before the 24-hour SendBounce window "
                f"closes (less {SEND_WINDOW_MARGIN_S:.2f} s); checked for {waited_s:.2f} s",
            )
        raise SendSlotUnavailable(
            f"attempt {attempt}: the send budget has no slot in the {max(0.0, time_bound_s):.2f}"
            f" s left for one (Lambda time left less {self.min_send_seconds:.2f} s for the "
            f"attempt and what follows it); the record goes back to the queue unsent"
        )

    def _require_window(
        self, window_seconds: Callable[[], float] | None, wait_s: float, attempt: int
    ) -> None:
        if window_seconds is None:
            return
        left = window_seconds() - wait_s
        if left <= SEND_WINDOW_MARGIN_S:
            raise MailExpired(
                f"attempt {attempt} would start {left:.2f} s before the 24-hour SendBounce "
                f"window closes; at least {SEND_WINDOW_MARGIN_S:.2f} s are needed",
            )

    def _require_time(
        self, remaining_seconds: Callable[[], float], wait_s: float, attempt: int
    ) -> None:
        remaining = remaining_seconds()
        needed = wait_s + self.min_send_seconds
        if remaining < needed:
            raise SendDeadlineExceeded(
                f"attempt {attempt} needs {needed:.2f} s ({wait_s:.2f} s wait + "
                f"{self.retry.attempt_timeout_s:.2f} s timeout + {self.after_send_reserve_s:.2f} "
                f"s reserve after the send), only {remaining:.2f} s remain"
            )
