"""SendBounce with pacing, retries with backoff and jitter, a deadline and the 24-hour window.

botocore's own retries are turned off on the SES client (``botocore_client_kwargs()``) so that
this module decides every attempt: each one takes a pacing slot, and none starts unless the Lambda
has time left to finish it and to tag the object afterwards (``after_send_reserve_s``), nor once
SES's SendBounce window is about to close. The S3 and SQS clients (``aws_client_kwargs()``) retry
once with short timeouts, so that one of their calls has a known upper bound.
"""

# No `from __future__ import annotations`: typing.NamedTuple would compile every string
# annotation of its fields into a ForwardRef at import, slowing the Lambda's cold start.

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

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

from bounce_runtime.errors import PermanentError
from bounce_runtime.pacing import Pacer

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestThrottled"}
)
SERVER_ERROR_CODES = frozenset(
    {"ServiceUnavailable", "InternalFailure", "InternalError", "ServiceUnavailableException"}
)

# The dead-letter reason of a bounce that may or may not have gone out: never sent again.
OUTCOME_UNKNOWN = "ses-outcome-unknown"

# Connect + read timeouts of the SES client: the longest one attempt can take.
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 4.0

# The S3 and SQS clients: two attempts with short timeouts. botocore's standard retry mode waits
# at most 1 s before its retry, so one S3 or SQS call takes at most AWS_CALL_BOUND_S.
AWS_TOTAL_MAX_ATTEMPTS = 2
AWS_CONNECT_TIMEOUT_S = 2.0
AWS_READ_TIMEOUT_S = 3.0
AWS_RETRY_BACKOFF_MAX_S = 1.0
AWS_CALL_BOUND_S = (
    AWS_TOTAL_MAX_ATTEMPTS * (AWS_CONNECT_TIMEOUT_S + AWS_READ_TIMEOUT_S)
    + (AWS_TOTAL_MAX_ATTEMPTS - 1) * AWS_RETRY_BACKOFF_MAX_S
)
# Lambda time kept after a SendBounce attempt for what follows it: PutObjectTagging and one retry
# of it after a success; or releasing the claim and a dead-letter send after a failure.
AFTER_SEND_RESERVE_S = 2 * AWS_CALL_BOUND_S
# No attempt starts later than this before the end of SES's 24-hour SendBounce window.
SEND_WINDOW_MARGIN_S = 10.0
# Raised before any request is made (no credentials, no region): SES cannot have sent anything.
_NOT_SENT_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
)


def botocore_client_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``boto3.client("ses", ...)``: no botocore retries, short timeouts."""
    from botocore.config import Config

    return {
        "config": Config(
            # total_max_attempts counts the first attempt; botocore's max_attempts counts retries.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        )
    }


def aws_client_kwargs() -> dict[str, Any]:
    """Keyword arguments for the S3 and SQS clients: each call bounded by ``AWS_CALL_BOUND_S``."""
    from botocore.config import Config

    return {
        "config": Config(
            retries={"total_max_attempts": AWS_TOTAL_MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=AWS_CONNECT_TIMEOUT_S,
            read_timeout=AWS_READ_TIMEOUT_S,
        )
    }


class SendBounceClient(Protocol):
    """What the sender needs of a boto3 SES client (fakes in tests implement the same)."""

    def send_bounce(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...


class TransientSendError(Exception):
    """SendBounce did not succeed but may on a later delivery; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SendDeadlineExceeded(TransientSendError):
    """Too little Lambda time remains for another attempt: the rest of the batch must wait."""

    def __init__(self, message: str) -> None:
        super().__init__("deadline", message)


class RetryPolicy(NamedTuple):
    """Attempt limit and exponential backoff with equal jitter, in seconds."""

    max_attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    attempt_timeout_s: float = CONNECT_TIMEOUT_S + READ_TIMEOUT_S

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Delay before retry ``retry_number`` (1-based): half the ceiling plus a random half."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry_number - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class SendResult(NamedTuple):
    """A successful SendBounce: the bounce's MessageId and how many attempts it took."""

    message_id: str
    attempts: int
    throttles: int


def _ignore() -> None:
    return None


class BounceSender:
    """Sends SendBounce requests through one SES client, paced and retried."""

    def __init__(
        self,
        client: SendBounceClient,
        pacer: Pacer,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        after_send_reserve_s: float = AFTER_SEND_RESERVE_S,
    ) -> None:
        self._client = client
        self._pacer = pacer
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
    ) -> SendResult:
        """Send one bounce; return its MessageId.

        ``remaining_seconds`` is the Lambda time left; ``window_seconds`` the time left until
        SES's 24-hour SendBounce window closes (None: not checked). Raises ``PermanentError``
        when SES refuses the request, when an answer is lost (``ses-outcome-unknown``) or when the
        next attempt would start less than ``SEND_WINDOW_MARGIN_S`` before the window closes
        (``expired``); ``SendDeadlineExceeded`` when no time is left for another attempt;
        ``TransientSendError`` when the attempts run out or no request could be made.
        """
        throttles = 0
        attempt = 0
        while True:
            attempt += 1
            wait_s = self._pacer.delay()
            self._require_window(window_seconds, wait_s, attempt)
            self._require_time(remaining_seconds, wait_s, attempt)
            self._pacer.wait()
            try:
                response = self._client.send_bounce(**request)
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in THROTTLING_CODES:
                    throttles += 1
                    on_throttle()
                    failure = TransientSendError("ses-throttled", f"SES throttled: {error}")
                elif code in SERVER_ERROR_CODES or status >= 500:
                    failure = TransientSendError("ses-unavailable", f"SES server error: {error}")
                else:
                    raise PermanentError(
                        f"ses-rejected:{code or status}", f"SES rejected SendBounce: {error}"
                    ) from error
            except ParamValidationError as error:
                raise PermanentError(
                    "invalid-request", f"botocore refused the request: {error}"
                ) from error
            except _NOT_SENT_ERRORS as error:
                # No connection was made (or no request signed), so SES never saw the request:
                # safe to retry.
                failure = TransientSendError("ses-connection", f"SES connection failed: {error}")
            except (BotocoreConnectionError, HTTPClientError) as error:
                # Any other connection failure (SSLError, ReadTimeoutError, ConnectionClosedError,
                # ...) may come after the request went out: SES may have sent the bounce.
                # Retrying could send it twice, so the record goes to the dead-letter queue for
                # an operator to check instead.
                raise PermanentError(
                    OUTCOME_UNKNOWN,
                    f"SendBounce sent but no response received, the bounce may have gone out: "
                    f"{error}",
                ) from error
            else:
                return SendResult(str(response["MessageId"]), attempt, throttles)
            if attempt >= self.retry.max_attempts:
                raise TransientSendError(
                    failure.reason, f"gave up after {attempt} attempts: {failure.message}"
                ) from failure
            delay = self.retry.backoff(attempt, self._rng)
            self._require_window(window_seconds, delay, attempt + 1)
            self._require_time(remaining_seconds, delay, attempt + 1)
            self._sleep(delay)

    @property
    def min_send_seconds(self) -> float:
        """Lambda time one attempt needs: its timeout plus the reserve for what follows it."""
        return self.retry.attempt_timeout_s + self.after_send_reserve_s

    def _require_window(
        self, window_seconds: Callable[[], float] | None, wait_s: float, attempt: int
    ) -> None:
        if window_seconds is None:
            return
        left = window_seconds() - wait_s
        if left <= SEND_WINDOW_MARGIN_S:
            raise PermanentError(
                "expired",
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
