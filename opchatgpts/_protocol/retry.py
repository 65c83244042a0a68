"""The retry policy, declared once and used by every transport.

Only setting up the answer is retried: connecting, sending, and reading the response
headers. Once a 2xx answer has started, nothing is retried, since text may already have
reached the caller.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from tenacity import AsyncRetrying, RetryCallState, stop_before_delay
from tenacity.stop import stop_base

from .._exceptions import APIConnectionError, APIStatusError, QueryRejectedError, TLSVerificationError
from .response import parse_retry_after

__all__ = ["RetryPolicy", "RetryBudget", "RETRY_STATUSES"]

log = logging.getLogger("opchatgpts")

#: Statuses that mean "try again shortly": timeouts, rate limits and gateways in trouble.
#: A 500 is not here: the plugin answers 500 ``{"success": false}`` when it refuses a query.
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How connection setup is retried.

    Attributes:
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts), for
            the whole call: getting a nonce shares them.
        backoff: the first wait, in seconds; it doubles on each retry...
        backoff_max: ...up to this.
        jitter: each wait is scaled by a random factor in ``[1 - jitter, 1]`` (0 to 1).
        retry_after_cap: the longest ``Retry-After`` honoured. A server that asks for a
            longer wait gets no retry: the error is raised at once, with ``retry_after`` set.
            So does a wait that would not end before the call's ``total`` timeout.
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
            raise TypeError(f"max_retries must be an int, not {type(self.max_retries).__name__}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        for name in ("backoff", "backoff_max", "jitter", "retry_after_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.jitter > 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")
        if self.sleep is not None and not callable(self.sleep):
            raise TypeError("sleep must be a function that takes seconds")

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failed attempt may be tried again."""
        if isinstance(exc, (TLSVerificationError, QueryRejectedError)):
            return False  # a refusal stays a refusal, whatever its status says
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
            return parse_retry_after(exc.headers.get("Retry-After"))
        return None

    def async_retrying(
        self,
        budget: Optional["RetryBudget"] = None,
        remaining: Optional[float] = None,
        sleep: Optional[Callable[[float], Any]] = None,
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` that follows this policy.

        ``budget`` is the call's retries left (a fresh one by default); ``remaining`` the
        seconds left of its ``total``: a wait that would not end in time is not started.
        ``sleep`` is the transport's way of waiting, used unless the policy has its own.
        """
        budget = budget if budget is not None else RetryBudget(self.max_retries)

        def retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return exc is not None and self.is_retryable(exc)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(state.attempt_number, exc)

        def before_sleep(state: RetryCallState) -> None:
            budget.spend()
            exc = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            log.debug("attempt %d failed (%s); retrying in %.2f s", state.attempt_number, exc, seconds)

        stop: stop_base = _BudgetSpent(budget)
        if remaining is not None:
            stop = stop | stop_before_delay(max(0.0, remaining))
        chosen = self.sleep or sleep
        kwargs: "dict[str, Any]" = dict(
            retry=retry, wait=wait, stop=stop, before_sleep=before_sleep, reraise=True
        )
        if chosen is not None:
            kwargs["sleep"] = _awaitable(chosen)
        return AsyncRetrying(**kwargs)


class RetryBudget:
    """The retries one call has left: every request it makes draws on the same budget."""

    __slots__ = ("left",)

    def __init__(self, retries: int) -> None:
        self.left = retries

    def spend(self) -> None:
        self.left -= 1


class _BudgetSpent(stop_base):
    def __init__(self, budget: RetryBudget) -> None:
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._budget.left <= 0


def _awaitable(sleep: Callable[[float], Any]) -> Callable[[float], Awaitable[None]]:
    """``sleep`` as a coroutine function, whether it is one or a plain function."""
    if inspect.iscoroutinefunction(sleep):
        return sleep

    async def call(seconds: float) -> None:
        result = sleep(seconds)
        if inspect.isawaitable(result):
            await result

    return call
