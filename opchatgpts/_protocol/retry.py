"""The retry policy, declared once and used by every transport.

Only setting up the answer is retried: connecting, sending, and reading the response
headers. Once a 2xx answer has started, nothing is retried, since text may already have
reached the caller.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from .._exceptions import APIConnectionError, APIStatusError, TLSVerificationError
from .response import parse_retry_after

__all__ = ["RetryPolicy", "RETRY_STATUSES"]

log = logging.getLogger("opchatgpts")

#: Statuses that mean "try again shortly": timeouts, rate limits and gateways in trouble.
#: A 500 is not here: the plugin answers 500 ``{"success": false}`` when it refuses a query.
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How connection setup is retried.

    Attributes:
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts).
        backoff: the first wait, in seconds; it doubles on each retry...
        backoff_max: ...up to this.
        jitter: each wait is scaled by a random factor in ``[1 - jitter, 1]``.
        retry_after_cap: the longest ``Retry-After`` honoured. A server that asks for a
            longer wait gets no retry: the error is raised at once, with ``retry_after`` set.
        sleep: the sleep function (tests pass a fake one), a plain function or a coroutine
            function. ``None``: the transport's own (``asyncio.sleep`` on aiohttp,
            ``time.sleep`` on requests). A plain function that really sleeps would block the
            event loop on aiohttp; a coroutine function must not await anything that needs
            an event loop on requests, which runs without one.
    """

    max_retries: int = 2
    backoff: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5
    retry_after_cap: float = 30.0
    sleep: Optional[Callable[[float], Any]] = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError("max_retries must be an int")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failed attempt may be tried again."""
        if isinstance(exc, TLSVerificationError):
            return False
        if isinstance(exc, APIConnectionError):
            return True
        if isinstance(exc, APIStatusError) and exc.status_code in RETRY_STATUSES:
            delay = self._retry_after(exc)
            return delay is None or delay <= self.retry_after_cap
        return False

    def wait_seconds(self, attempt: int, exc: Optional[BaseException]) -> float:
        """How long to wait before retry number ``attempt`` (1-based)."""
        if exc is not None:
            delay = self._retry_after(exc)
            if delay is not None:
                return delay
        base = min(self.backoff_max, self.backoff * 2.0 ** (attempt - 1))
        return base * (1 - self.jitter * random.random())

    @staticmethod
    def _retry_after(exc: BaseException) -> Optional[float]:
        if isinstance(exc, APIStatusError):
            return parse_retry_after(
                next((v for k, v in exc.headers.items() if k.lower() == "retry-after"), None)
            )
        return None

    def _tenacity_kwargs(
        self, deadline: Optional[float], sleep: Optional[Callable[[float], Any]] = None
    ) -> "dict[str, Any]":
        def retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if exc is None or not self.is_retryable(exc):
                return False
            return deadline is None or time.monotonic() < deadline

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            seconds = self.wait_seconds(state.attempt_number, exc)
            if deadline is not None:
                seconds = max(0.0, min(seconds, deadline - time.monotonic()))
            return seconds

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            sleep = state.next_action.sleep if state.next_action else 0.0
            log.info("attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, sleep)

        kwargs: "dict[str, Any]" = dict(
            retry=retry,
            wait=wait,
            stop=stop_after_attempt(self.max_retries + 1),
            before_sleep=before_sleep,
            reraise=True,
        )
        if self.sleep is not None or sleep is not None:
            kwargs["sleep"] = self.sleep or sleep
        return kwargs

    def async_retrying(
        self, deadline: Optional[float] = None, sleep: Optional[Callable[[float], Any]] = None
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` that follows this policy.

        ``sleep`` is the transport's way of waiting, used unless the policy has its own.
        """
        kwargs = self._tenacity_kwargs(deadline, sleep)
        if self.sleep is not None:
            kwargs["sleep"] = _awaitable(self.sleep)
        return AsyncRetrying(**kwargs)


def _awaitable(sleep: Callable[[float], Any]) -> Callable[[float], Awaitable[None]]:
    """``sleep`` as a coroutine function, whether it is one or a plain function."""

    async def call(seconds: float) -> None:
        result = sleep(seconds)
        if inspect.isawaitable(result):
            await result

    return call
