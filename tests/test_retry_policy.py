"""The retry policy as a value (no I/O): which failures are retried, how long it waits, and when
it stops. tests/test_retry.py drives the same policy through a transport."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Callable, List, Optional

import pytest

from opchatgpts import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InternalServerError,
    QueryRejectedError,
    RateLimitError,
    RetryPolicy,
    TLSVerificationError,
)
from opchatgpts._protocol import retry as retry_module
from opchatgpts._protocol.retry import RetryBudget


def status_error(status: int, retry_after: Optional[str] = None, name: str = "Retry-After") -> APIStatusError:
    headers = {name: retry_after} if retry_after is not None else {}
    return APIStatusError("refused", status_code=status, headers=headers)


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Fix the random factor of the jitter."""

    def set_random(value: float) -> None:
        monkeypatch.setattr(retry_module.random, "random", lambda: value)

    set_random(0.0)
    return set_random


def test_the_defaults(no_jitter):
    policy = RetryPolicy()
    assert (policy.max_retries, policy.retry_after_cap, policy.sleep) == (2, 30.0, None)
    assert [policy.wait_seconds(n, None) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    no_jitter(1.0)  # the most jitter takes off half of each wait
    assert [policy.wait_seconds(n, None) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 4.0]


def test_a_policy_is_a_value():
    policy = RetryPolicy(max_retries=1)
    assert policy == RetryPolicy(max_retries=1) and hash(policy) == hash(RetryPolicy(max_retries=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_retries = 5  # type: ignore[misc]


def test_backoff_and_jitter_settings(no_jitter):
    policy = RetryPolicy(backoff=1.0, backoff_max=3.0, jitter=0.2)
    assert [policy.wait_seconds(n, None) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]
    no_jitter(0.5)
    assert [policy.wait_seconds(n, None) for n in (1, 2, 3)] == pytest.approx([0.9, 1.8, 2.7])
    assert RetryPolicy(jitter=0.0).wait_seconds(1, None) == 0.5


@pytest.mark.parametrize("name", ["Retry-After", "retry-after"])
def test_retry_after_replaces_the_backoff(no_jitter, name):
    policy = RetryPolicy()
    assert policy.wait_seconds(3, status_error(503, "7", name)) == 7.0
    other = APIStatusError("x", status_code=503, headers={"X-Request-Id": "abc", name: "7"})
    assert policy.wait_seconds(3, other) == 7.0
    assert policy.wait_seconds(1, status_error(503, "0")) == 0.0
    assert policy.wait_seconds(2, status_error(503, "soon")) == 1.0  # unreadable: the backoff
    assert policy.wait_seconds(2, APIConnectionError("refused")) == 1.0


@pytest.mark.parametrize(
    "exc, retried",
    [
        (APIConnectionError("refused"), True),
        (APITimeoutError("slow"), True),
        (TLSVerificationError("bad certificate"), False),
        (status_error(408), True),
        (status_error(429), True),
        (status_error(502), True),
        (status_error(503), True),
        (status_error(504), True),
        (status_error(500), False),
        (status_error(501), False),
        (status_error(400), False),
        (status_error(403), False),
        (InternalServerError("x", status_code=503), True),
        (QueryRejectedError("limit", status_code=500), False),
        (status_error(503, "30"), True),  # at the cap: waited for
        (status_error(503, "30.5"), False),  # over it: raised at once
        (status_error(429, "3600", "retry-after"), False),
        (status_error(503, "soon"), True),
        (ValueError("a bug"), False),
        (ConnectionError("not ours"), False),
    ],
)
def test_what_is_retried(exc, retried):
    assert RetryPolicy().is_retryable(exc) is retried


def test_the_retry_after_cap_is_a_setting():
    assert RetryPolicy(retry_after_cap=60).is_retryable(status_error(429, "45"))
    assert not RetryPolicy(retry_after_cap=5).is_retryable(status_error(429, "6"))


@pytest.mark.parametrize(
    "bad, error", [(True, TypeError), ("3", TypeError), (1.0, TypeError), (-1, ValueError)]
)
def test_max_retries_is_checked(bad, error):
    with pytest.raises(error, match="max_retries"):
        RetryPolicy(max_retries=bad)


SECONDS = ["backoff", "backoff_max", "jitter", "retry_after_cap"]


@pytest.mark.parametrize("name", SECONDS)
@pytest.mark.parametrize(
    "bad, error, says",
    [
        (True, TypeError, "{} must be a number of seconds, not bool"),
        ("1", TypeError, "{} must be a number of seconds, not str"),
        (None, TypeError, "{} must be a number of seconds, not NoneType"),
        (-1, ValueError, "{} must be a finite number >= 0, got -1"),
        (-0.01, ValueError, "{} must be a finite number >= 0, got -0.01"),
        (float("inf"), ValueError, "{} must be a finite number >= 0, got inf"),
        (float("nan"), ValueError, "{} must be a finite number >= 0, got nan"),
    ],
)
def test_the_seconds_settings_are_checked(name: str, bad: Any, error: type, says: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(says.format(name))}$"):
        RetryPolicy(**{name: bad})


@pytest.mark.parametrize("name", SECONDS)
def test_zero_seconds_is_a_setting(name: str) -> None:
    assert getattr(RetryPolicy(**{name: 0}), name) == 0


@pytest.mark.parametrize("jitter", [0, 0.5, 1, 1.0])
def test_jitter_is_0_to_1(jitter: float) -> None:
    assert RetryPolicy(jitter=jitter).jitter == jitter


@pytest.mark.parametrize("jitter", [1.01, 1.5, 2, 3.0])
def test_jitter_over_1_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match=f"^jitter must be between 0 and 1, got {jitter!r}$"):
        RetryPolicy(jitter=jitter)


def test_sleep_must_be_a_function() -> None:
    with pytest.raises(TypeError, match="^sleep must be a function that takes seconds$"):
        RetryPolicy(sleep=1.0)  # type: ignore[arg-type]


# -- the policy driving attempts ------------------------------------------------------------------


class Failing:
    """An operation that fails with each of ``errors`` in turn, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


async def attempt(operation: Failing, policy: RetryPolicy, **kwargs: Any) -> str:
    async for try_ in policy.async_retrying(**kwargs):
        with try_:
            return operation()
    raise AssertionError("unreachable")


async def test_attempts_until_success_with_the_policys_own_sleep(no_jitter):
    waits: List[float] = []
    policy = RetryPolicy(sleep=waits.append)  # a plain function works too
    operation = Failing(APIConnectionError("a"), status_error(503))
    assert await attempt(operation, policy) == "answer"
    assert operation.calls == 3 and waits == [0.5, 1.0]


async def test_max_retries_bounds_the_attempts_and_the_last_error_is_raised(no_jitter):
    waits: List[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    last = status_error(502)
    operation = Failing(status_error(503), status_error(504), last, APIConnectionError("never"))
    with pytest.raises(APIStatusError) as info:
        await attempt(operation, RetryPolicy(max_retries=2, sleep=sleep))
    assert info.value is last and operation.calls == 3 and waits == [0.5, 1.0]
    operation = Failing(status_error(503))
    with pytest.raises(APIStatusError):
        await attempt(operation, RetryPolicy(max_retries=0, sleep=sleep))
    assert operation.calls == 1


async def test_what_is_not_retryable_is_raised_at_once():
    waits: List[float] = []
    operation = Failing(status_error(429, "3600"))
    with pytest.raises(APIStatusError):
        await attempt(operation, RetryPolicy(sleep=waits.append))
    assert operation.calls == 1 and waits == []


async def test_the_transports_sleep_unless_the_policy_has_one(no_jitter):
    transport: List[float] = []
    own: List[float] = []

    async def transport_sleep(seconds: float) -> None:
        transport.append(seconds)

    await attempt(Failing(APIConnectionError("a")), RetryPolicy(), sleep=transport_sleep)
    assert transport == [0.5]
    await attempt(Failing(APIConnectionError("a")), RetryPolicy(sleep=own.append), sleep=transport_sleep)
    assert own == [0.5] and transport == [0.5]


async def test_a_wait_that_would_not_end_in_time_is_not_started(no_jitter):
    waits: List[float] = []
    slow = RetryPolicy(max_retries=5, backoff=10.0, backoff_max=10.0, sleep=waits.append)
    operation = Failing(APIConnectionError("a"), APIConnectionError("b"))
    with pytest.raises(APIConnectionError, match="a"):  # 10 s would overrun the 2 s left
        await attempt(operation, slow, remaining=2.0)
    assert operation.calls == 1 and waits == []
    quick = RetryPolicy(max_retries=5, sleep=waits.append)  # 0.5 s, then 1 s: both fit
    operation = Failing(APIConnectionError("a"), APIConnectionError("b"))
    assert await attempt(operation, quick, remaining=2.0) == "answer"
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize("remaining", [0.0, -1.0])
async def test_no_retry_once_the_time_is_up(no_jitter, remaining):
    waits: List[float] = []
    operation = Failing(APIConnectionError("a"))
    with pytest.raises(APIConnectionError):
        await attempt(operation, RetryPolicy(sleep=waits.append), remaining=remaining)
    assert operation.calls == 1 and waits == []  # never a wait, let alone a negative one


async def test_the_retries_are_a_budget_shared_by_several_retryings(no_jitter):
    budget = RetryBudget(2)
    policy = RetryPolicy(max_retries=2, sleep=lambda s: None)
    first = Failing(APIConnectionError("a"))
    assert await attempt(first, policy, budget=budget) == "answer"  # one retry spent
    second = Failing(APIConnectionError("a"), APIConnectionError("b"))
    with pytest.raises(APIConnectionError, match="b"):  # one retry left, not two
        await attempt(second, policy, budget=budget)
    assert second.calls == 2 and budget.left == 0


async def test_without_any_sleep_given_asyncio_sleeps():
    assert await attempt(Failing(APIConnectionError("a")), RetryPolicy(backoff=0.0)) == "answer"


async def test_each_retry_is_logged_at_debug(no_jitter, caplog):
    caplog.set_level(logging.DEBUG, logger="opchatgpts")
    await attempt(Failing(status_error(503, "1.5")), RetryPolicy(sleep=lambda s: None))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "attempt 1 failed (HTTP 503: refused); retrying in 1.50 s")
    ]


def test_rate_limit_errors_are_status_errors():
    # RateLimitError's own retry_after is the header's value: the policy reads the header.
    exc = RateLimitError("slow", status_code=429, retry_after=5.0, headers={"Retry-After": "5"})
    assert RetryPolicy().wait_seconds(1, exc) == 5.0
