"""The first-token and calls-per-second rows: every way of making a call, one function each.

Each function makes ``calls`` calls in a row from a fresh start, so that the first one is
cold (a new session: TCP and TLS handshakes; for the blocking faces, a new default client
and loop thread) and the others warm, over pooled connections. Every answer is read to its
end and checked. It returns, for each call, the seconds to its first text and to its end
(the same for ``ask``, which returns the whole answer at once).
"""

from __future__ import annotations

import asyncio
import queue
import ssl
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import aiohttp
from _floor import floor_text, floor_text_requests
from _server import expected_text

import opchatgpts
from opchatgpts import Opchatgpts
from opchatgpts._options import TransportName

#: Seconds to the first text and to the end of one call.
Timing = Tuple[float, float]


@dataclass(frozen=True)
class Target:
    """The HTTPS server, and how to trust its certificate."""

    url: str
    context: ssl.SSLContext  # for aiohttp and the SDK
    ca_file: str  # for a bare requests.Session


Measure = Callable[[Target, int, int], List[Timing]]


def messages_for(events: int) -> List[Dict[str, str]]:
    # The server streams as many events as the new message says.
    return [{"role": "user", "content": str(events)}]


def check(text: str, events: int) -> None:
    if text != expected_text(events):
        raise AssertionError(f"wrong answer: {len(text)} characters, expected {4 * events}")


class _Clock:
    """Times one call: ``first()`` at its first text, ``end(text)`` when it is read."""

    def __init__(self, events: int, times: List[Timing]) -> None:
        self.events = events
        self.times = times
        self.start = time.perf_counter()
        self.first_at: Optional[float] = None

    def first(self) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()

    def end(self, text: str) -> None:
        end = time.perf_counter()
        first = end if self.first_at is None else self.first_at
        self.times.append((first - self.start, end - self.start))
        check(text, self.events)


# --- the floors -----------------------------------------------------------------------------


def floor_aiohttp(target: Target, events: int, calls: int) -> List[Timing]:
    """One pooled ``aiohttp.ClientSession``, opened by the first call."""

    async def run() -> List[Timing]:
        messages = messages_for(events)
        times: List[Timing] = []
        session = None
        try:
            for _ in range(calls):
                clock = _Clock(events, times)
                if session is None:
                    session = aiohttp.ClientSession()
                first: List[float] = []
                text = await floor_text(session, target.url, messages, ssl=target.context, first_token=first)
                clock.first_at = first[0] if first else None
                clock.end(text)
        finally:
            if session is not None:
                await session.close()
        return times

    return asyncio.run(run())


def floor_requests(target: Target, events: int, calls: int) -> List[Timing]:
    """One pooled ``requests.Session``, opened by the first call."""
    import requests

    messages = messages_for(events)
    times: List[Timing] = []
    session = None
    try:
        for _ in range(calls):
            clock = _Clock(events, times)
            if session is None:
                session = requests.Session()
            first: List[float] = []
            text = floor_text_requests(
                session, target.url, messages, verify=target.ca_file, first_token=first
            )
            clock.first_at = first[0] if first else None
            clock.end(text)
    finally:
        if session is not None:
            session.close()
    return times


# --- the SDK --------------------------------------------------------------------------------


def async_generator(target: Target, events: int, calls: int) -> List[Timing]:
    """``Opchatgpts.create_async_generator`` on a fresh event loop."""

    async def run() -> List[Timing]:
        messages = messages_for(events)
        times: List[Timing] = []
        for _ in range(calls):
            clock = _Clock(events, times)
            parts = []
            async for delta in Opchatgpts.create_async_generator(
                None, messages, url=target.url, verify=target.context
            ):
                clock.first()
                parts.append(delta)
            clock.end("".join(parts))
        return times  # asyncio.run closes the SDK's session with the loop

    return asyncio.run(run())


def async_client_ask(target: Target, events: int, calls: int) -> List[Timing]:
    """``AsyncClient.ask`` on a fresh event loop, with a new client."""

    async def run() -> List[Timing]:
        messages = messages_for(events)
        times: List[Timing] = []
        client = None
        try:
            for _ in range(calls):
                clock = _Clock(events, times)
                if client is None:
                    client = opchatgpts.AsyncClient(target.url, verify=target.context)
                clock.end(await client.ask(messages))
        finally:
            if client is not None:
                await client.aclose()
        return times

    return asyncio.run(run())


def _fresh_default_client() -> None:
    # The faces share one default client: closing it makes the next call cold (a new pool,
    # and on aiohttp a new loop thread), as the first call of a process is.
    default: Any = opchatgpts._provider._default
    if default._client is not None:
        default._client.close()


def blocking_iterator(transport: TransportName) -> Measure:
    """``Opchatgpts.create_completion`` on ``transport``, from this (the main) thread."""

    def run(target: Target, events: int, calls: int) -> List[Timing]:
        _fresh_default_client()
        messages = messages_for(events)
        times: List[Timing] = []
        for _ in range(calls):
            clock = _Clock(events, times)
            parts = []
            for delta in Opchatgpts.create_completion(
                None, messages, url=target.url, verify=target.context, transport=transport
            ):
                clock.first()
                parts.append(delta)
            clock.end("".join(parts))
        return times

    return run


def client_ask(target: Target, events: int, calls: int) -> List[Timing]:
    """``Client.ask`` (on aiohttp, its default transport), with a new client."""
    messages = messages_for(events)
    times: List[Timing] = []
    client = None
    try:
        for _ in range(calls):
            clock = _Clock(events, times)
            if client is None:
                client = opchatgpts.Client(target.url, verify=target.context)
            clock.end(client.ask(messages))
    finally:
        if client is not None:
            client.close()
    return times


# --- what no blocking path can go below -----------------------------------------------------


def bare_hand_off(calls: int) -> float:
    """The median seconds of a thread hand-off and back, with nothing else: this thread
    wakes an event loop running in another, which starts a task that hands one item back.
    That is what a blocking call on aiohttp does around its request, without the network
    and without the SDK. Between calls both threads go idle (0.5 ms), as between real calls.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bench-hand-off", daemon=True)
    thread.start()
    handed: "queue.SimpleQueue[None]" = queue.SimpleQueue()

    async def hand_back() -> None:
        handed.put(None)

    def start() -> None:
        loop.create_task(hand_back())

    seconds = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            loop.call_soon_threadsafe(start)
            handed.get(timeout=10)
            seconds.append(time.perf_counter() - started)
            time.sleep(0.0005)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():  # closing a loop that still runs would hide the error
            loop.close()
    return statistics.median(seconds)
