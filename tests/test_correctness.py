"""Correctness under split bodies, retry budgets, deadlines and odd bytes, on every transport.

Each test here pins a behaviour a review found wrong (README's promises), through the
blocking API on both transports and the async API alike: the transports share one contract.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, List

import pytest
from calls import APIS, ask
from faultserver import SUBMIT_PATH, Conn, FaultServer, echo_events, respond, stream
from leakcheck import assert_no_leaks

import opchatgpts
from opchatgpts import (
    APITimeoutError,
    AsyncClient,
    Client,
    QueryRejectedError,
    RateLimitError,
    RetryPolicy,
    Timeout,
)

NONCE = "n0nce12345"




def submits(server: FaultServer) -> List[Any]:
    return [r for r in server.requests if r.target.endswith(SUBMIT_PATH)]


def wants_a_nonce(refusal: Callable[[Conn], Any]) -> Callable[[Conn, int], Any]:
    """A 2.4.4+ site: ``refusal`` answers a submit without the nonce; start_session gives it."""

    async def script(conn: Conn, attempt: int) -> None:
        request = conn.server.requests[-1]
        if "start_session" in request.target:
            await conn.respond(200, {"success": True, "sessionId": "s1", "restNonce": NONCE})
        elif request.headers.get("x-wp-nonce") == NONCE:
            await stream(echo_events())(conn, attempt)
        else:
            await refusal(conn)

    return script


@pytest.mark.parametrize("api", APIS)
def test_a_refusal_split_across_chunks_is_read_whole(api: str) -> None:
    body = json.dumps({"code": "rest_cookie_invalid_nonce", "message": "Cookie check failed"}).encode()

    async def split(conn: Conn) -> None:
        await conn.head(403, content_type="application/json; charset=UTF-8")
        await conn.body(body[:20])
        await asyncio.sleep(0.05)  # the rest arrives in a later read
        await conn.body(body[20:])
        await conn.end_body()

    with FaultServer(wants_a_nonce(split)) as server, assert_no_leaks([server]):
        # Read in full, the refusal is a nonce refusal: the client gets one and resends.
        assert ask(api, server.url) == "Echo: one two three"
        assert [r.headers.get("x-wp-nonce") for r in submits(server)] == [None, NONCE]


@pytest.mark.parametrize("status", [502, 503, 504, 429])
@pytest.mark.parametrize("api", APIS)
def test_a_query_rejection_is_never_retried_whatever_its_status(api: str, status: int) -> None:
    rejection = {"success": False, "message": "You have reached the limit of queries."}
    with FaultServer(respond(status, rejection)) as server, assert_no_leaks([server]):
        with pytest.raises(QueryRejectedError, match="reached the limit") as info:
            ask(api, server.url, retry=RetryPolicy(backoff=0.01))
        assert info.value.status_code == status
        assert server.request_count == 1


@pytest.mark.parametrize("api", APIS)
def test_a_retry_after_longer_than_the_time_left_is_not_waited_for(api: str) -> None:
    limited = respond(429, "slow down", headers={"Retry-After": "20"})
    with FaultServer(limited) as server, assert_no_leaks([server]):
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            ask(api, server.url, timeout=Timeout(total=2))
        assert time.monotonic() - started < 1  # raised at once, not after sleeping 2 s
        assert info.value.retry_after == 20 and server.request_count == 1


@pytest.mark.parametrize("api", APIS)
def test_retries_are_a_budget_for_the_whole_call(api: str) -> None:
    # The nonce sources used to get the full budget each: 3 start_session tries, 3 per page.
    async def nothing_works(conn: Conn, attempt: int) -> None:
        request = conn.server.requests[-1]
        if request.target.endswith(SUBMIT_PATH):
            await conn.respond(401, {"code": "rest_forbidden", "message": "Sorry"})
        else:
            await conn.respond(503, "down for maintenance")

    with FaultServer(nothing_works) as server, assert_no_leaks([server]):
        with pytest.raises(opchatgpts.AuthenticationError):
            ask(api, server.url, retry=RetryPolicy(max_retries=2, backoff=0.01))
        # One submit, then the nonce sources (start_session, the home page and the fallback
        # page) with 2 retries between them all, not 2 each (that was 1 + 3 + 3 + 3).
        assert server.request_count == 1 + 3 + 2


@pytest.mark.parametrize("api", APIS)
def test_from_page_keeps_to_the_total_timeout(api: str) -> None:
    async def slow_page(conn: Conn, attempt: int) -> None:
        await asyncio.sleep(3)
        await conn.respond(200, "<html></html>", content_type="text/html")

    with FaultServer(slow_page) as server, assert_no_leaks([server]):
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match=r"total timeout \(1 s\)"):
            if api == "async":
                asyncio.run(AsyncClient.from_page(server.url + "/chat/", timeout=Timeout(total=1)))
            else:
                transport = "requests" if api == "sync-requests" else "aiohttp"
                Client.from_page(server.url + "/chat/", timeout=Timeout(total=1), transport=transport)  # type: ignore[arg-type]
        assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("api", APIS)
def test_a_byte_order_mark_does_not_cost_the_first_event(api: str) -> None:
    first, *rest = echo_events()
    with_bom = stream([b"\xef\xbb", b"\xbf" + first, *rest])  # split inside the mark, too
    with FaultServer(with_bom) as server, assert_no_leaks([server]):
        assert ask(api, server.url) == "Echo: one two three"


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("jitter", 5, ValueError),
        ("jitter", -0.1, ValueError),
        ("backoff", -1, ValueError),
        ("backoff_max", float("inf"), ValueError),
        ("retry_after_cap", float("nan"), ValueError),
        ("backoff", "1", TypeError),
        ("max_retries", -1, ValueError),
        ("sleep", 3, TypeError),
    ],
)
def test_every_retry_setting_is_checked_when_the_policy_is_built(field: str, value: Any, error: type) -> None:
    with pytest.raises(error, match=field):
        RetryPolicy(**{field: value})


def test_a_cancelled_refusal_read_releases_its_connection() -> None:
    async def slow_refusal(conn: Conn, attempt: int) -> None:
        await conn.head(503, content_type="text/plain")
        await conn.body(b"busy")
        await conn.wait_for_disconnect()  # the rest of the refusal never comes

    async def run(url: str) -> None:
        async with AsyncClient(url, max_retries=0) as client:
            task = asyncio.ensure_future(client.ask("x"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with FaultServer(slow_refusal) as server, assert_no_leaks([server]):
        asyncio.run(run(server.url))
