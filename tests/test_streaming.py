"""Streaming behaviour through the async and the sync API, against the emulator over sockets."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import threading
import time
import traceback
from typing import Any, List, Optional, Tuple

import pytest

import opchatgpts
from opchatgpts import (
    IncompleteStreamError,
    InternalServerError,
    Opchatgpts,
    QueryRejectedError,
    RemoteProtocolError,
    RetryPolicy,
    ServerReportedError,
    StreamError,
    StreamInterruptedError,
    StreamTimeoutError,
    Timeout,
)
from opchatgpts.emulator import Faults
from opchatgpts.testing import serve_emulator

FAST_RETRY = RetryPolicy(max_retries=2, backoff=0.0)


def user(text: str) -> List[dict]:
    return [{"role": "user", "content": text}]


def collect_sync(url: str, text: str, **kwargs: Any) -> Tuple[List[str], Optional[BaseException]]:
    parts: List[str] = []
    try:
        for part in Opchatgpts.create_completion(None, user(text), url=url, **kwargs):
            parts.append(part)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return parts, exc
    return parts, None


def collect_async(url: str, text: str, **kwargs: Any) -> Tuple[List[str], Optional[BaseException]]:
    async def run() -> Tuple[List[str], Optional[BaseException]]:
        parts: List[str] = []
        try:
            async for part in Opchatgpts.create_async_generator(None, user(text), url=url, **kwargs):
                parts.append(part)
        except Exception as exc:  # noqa: BLE001
            return parts, exc
        return parts, None

    return asyncio.run(run())


@pytest.fixture(params=["sync", "sync-requests", "async"])
def collect(request: pytest.FixtureRequest):
    """Run one call through the sync API (on either transport) or the async API; return
    (parts received, error)."""
    if request.param == "sync-requests":
        return functools.partial(collect_sync, transport="requests")
    return collect_sync if request.param == "sync" else collect_async


@pytest.fixture(params=["aiohttp", "requests"])
def transport(request: pytest.FixtureRequest) -> str:
    """The transport of a sync-only test."""
    return request.param


def test_answer_arrives_in_several_deltas(emulator, collect):
    parts, error = collect(emulator.url, "hello big world")
    assert error is None
    assert parts == ["Echo:", " hello", " big", " world"]
    (request,) = emulator.emulator.requests
    assert request.json()["newMessage"] == "hello big world"
    assert request.headers["Accept"] == "text/event-stream"


def test_non_stream_mode_yields_the_whole_text_once(emulator, collect):
    parts, error = collect(emulator.url, "hello big world", stream=False)
    assert error is None
    assert parts == ["Echo: hello big world"]
    assert emulator.emulator.requests[0].json()["stream"] is False


def test_ask_and_ask_async_join_the_text(emulator, transport):
    assert opchatgpts.ask("one two", url=emulator.url, transport=transport) == "Echo: one two"
    assert asyncio.run(opchatgpts.ask_async("three", url=emulator.url)) == "Echo: three"
    history = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "Echo: q1"},
        {"role": "user", "content": "q2"},
    ]
    assert opchatgpts.ask(history, url=emulator.url, transport=transport) == "Echo: q2"
    assert emulator.emulator.requests[-1].json()["messages"] == history[:2]


def test_error_event_after_text_raises_and_keeps_the_text(emulator, collect):
    parts, error = collect(emulator.url, "a b c FAIL_MIDSTREAM d e")
    assert parts == ["Echo:", " a"]
    assert isinstance(error, ServerReportedError) and isinstance(error, RuntimeError)
    assert "cURL error 18" in str(error)
    assert emulator.emulator.submit_count() == 1  # never retried


def test_error_event_before_any_text(emulator, collect):
    parts, error = collect(emulator.url, "please FAIL_UPSTREAM now")
    assert parts == [] and isinstance(error, QueryRejectedError)
    assert not isinstance(error, ServerReportedError)  # nothing of an answer had started


def test_reset_mid_stream_is_stream_interrupted_and_not_retried(emulator, collect):
    emulator.emulator.faults = Faults(drop_after=2)
    parts, error = collect(emulator.url, "one two three four", retry=FAST_RETRY)
    assert parts == ["Echo:", " one"]
    assert isinstance(error, StreamInterruptedError) and isinstance(error, RuntimeError)
    assert error.__cause__ is not None
    assert emulator.emulator.submit_count() == 1


def test_stream_without_end_is_incomplete(emulator, collect):
    emulator.emulator.faults = Faults(omit_end=True)
    parts, error = collect(emulator.url, "one two")
    assert parts == ["Echo:", " one", " two"]
    assert isinstance(error, IncompleteStreamError)


def test_broken_line_is_a_protocol_error(emulator, collect):
    emulator.emulator.faults = Faults(malformed_after=1)
    parts, error = collect(emulator.url, "one two")
    assert parts == ["Echo:"]
    assert isinstance(error, RemoteProtocolError) and isinstance(error, StreamError)
    assert error.__cause__ is not None  # chained from the JSON error


def test_gateway_errors_are_retried_then_the_stream_flows(emulator, collect):
    emulator.emulator.faults = Faults(status=503, body="<html>busy</html>", times=2)
    parts, error = collect(emulator.url, "hi", retry=FAST_RETRY)
    assert error is None and "".join(parts) == "Echo: hi"
    assert emulator.emulator.submit_count() == 3


def test_gateway_errors_past_the_retries_raise_the_status_error(emulator, collect):
    emulator.emulator.faults = Faults(status=502, body="bad gateway")
    parts, error = collect(emulator.url, "hi", retry=RetryPolicy(max_retries=1, backoff=0.0))
    assert parts == [] and isinstance(error, InternalServerError) and error.status_code == 502
    assert emulator.emulator.submit_count() == 2


def test_a_server_silent_before_its_first_event_times_out(emulator, collect):
    # Like PHP, the emulator sends the headers with the first event: silence before it is a
    # timeout before the headers, which the retry policy may retry (here it may not).
    # A stall between two events is a row of the fault matrix (tests/test_faults.py).
    emulator.emulator.faults = Faults(delay=1.0)
    start = time.monotonic()
    parts, error = collect(
        emulator.url, "one two", timeout=Timeout(connect=5, read=0.3), retry=RetryPolicy(max_retries=0)
    )
    assert type(error) is opchatgpts.APITimeoutError and isinstance(error, TimeoutError)
    assert parts == [] and emulator.emulator.submit_count() == 1
    assert time.monotonic() - start < 3


def test_total_timeout_bounds_a_slow_stream(emulator, collect):
    emulator.emulator.delta_delay = 0.2
    start = time.monotonic()
    parts, error = collect(emulator.url, "a b c d e f g h i j", timeout=Timeout(read=5, total=0.7))
    assert type(error) is StreamTimeoutError and isinstance(error, TimeoutError)
    assert 1 <= len(parts) < 11
    assert time.monotonic() - start < 3


def test_exceptions_keep_their_original_traceback(emulator, transport):
    emulator.emulator.faults = Faults(malformed_after=0)
    parts, error = collect_sync(emulator.url, "x", transport=transport)
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert "parse_event" in frames  # raised where it happened, re-raised in the caller


def test_sync_calls_share_one_loop_thread_and_stay_flat(emulator, transport):
    opchatgpts.ask("warm up", url=emulator.url, transport=transport)
    before = threading.active_count()
    for i in range(200):
        assert opchatgpts.ask(f"n{i}", url=emulator.url, transport=transport) == f"Echo: n{i}"
    assert threading.active_count() == before


def test_breaking_out_early_closes_the_connection(emulator, transport):
    emulator.emulator.delta_delay = 0.1
    words = " ".join(f"w{i}" for i in range(50))
    for _ in Opchatgpts.create_completion(None, user(words), url=emulator.url, transport=transport):
        break
    deadline = time.monotonic() + 3
    while emulator.emulator.disconnects < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.emulator.disconnects == 1
    assert emulator.emulator.completed_streams == 0


def test_closing_a_with_block_closes_the_connection(emulator, transport):
    emulator.emulator.delta_delay = 0.1
    words = " ".join(f"w{i}" for i in range(50))
    with Opchatgpts.create_completion(None, user(words), url=emulator.url, transport=transport) as stream:
        assert next(stream) == "Echo:"
    deadline = time.monotonic() + 3
    while emulator.emulator.disconnects < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.emulator.disconnects == 1
    assert list(stream) == []  # a closed stream yields nothing more


def test_async_break_closes_the_connection(emulator):
    emulator.emulator.delta_delay = 0.1
    words = " ".join(f"w{i}" for i in range(50))

    async def run() -> None:
        agen = Opchatgpts.create_async_generator(None, user(words), url=emulator.url)
        async for _ in agen:
            break
        await agen.aclose()

    asyncio.run(run())
    deadline = time.monotonic() + 3
    while emulator.emulator.disconnects < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.emulator.disconnects == 1


def test_ctrl_c_in_the_consumer_cancels_the_stream(emulator, transport):
    emulator.emulator.delta_delay = 0.2
    words = " ".join(f"w{i}" for i in range(50))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    received: List[str] = []
    # Python's own Ctrl-C handler, even where SIGINT is inherited as ignored (background jobs).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for part in Opchatgpts.create_completion(
                None, user(words), url=emulator.url, transport=transport
            ):
                received.append(part)
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert 1 <= len(received) < 51
    deadline = time.monotonic() + 3
    while emulator.emulator.disconnects < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.emulator.disconnects == 1
    assert opchatgpts.ask("still works", url=emulator.url, transport=transport) == "Echo: still works"


def test_sync_api_works_inside_a_running_event_loop(emulator, transport):
    # As in Jupyter: a blocking call from a thread whose loop is running.
    async def notebook_cell() -> str:
        return opchatgpts.ask("from a notebook", url=emulator.url, transport=transport)

    assert asyncio.run(notebook_cell()) == "Echo: from a notebook"


def test_many_threads_share_the_sync_api(emulator, transport):
    results: List[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        answer = opchatgpts.ask(f"t{n}", url=emulator.url, transport=transport)
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == sorted(f"Echo: t{n}" for n in range(16))


def test_one_pooled_session_keeps_connections_alive(emulator):
    async def run() -> None:
        await opchatgpts.ask_async("first", url=emulator.url)
        pool = opchatgpts._provider._default.get()._pool.aiohttp  # the client behind ask_async
        session = (await pool.get()).session()
        await opchatgpts.ask_async("second", url=emulator.url)
        assert (await pool.get()).session() is session
        connector = session.connector
        assert connector is not None
        # The finished answers left their keep-alive connection in the pool.
        assert sum(len(v) for v in connector._conns.values()) == 1  # noqa: SLF001

    asyncio.run(run())


def test_sync_and_async_reach_a_server_on_another_path(transport):
    with serve_emulator("open", rest_prefix="/blog/wp-json") as site:
        answer = opchatgpts.ask("sub dir", url=site.url, rest_url=site.rest_url, transport=transport)
        assert answer == "Echo: sub dir"
