"""The thread-backed adapter on its own: batches, early close, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import AsyncIterator, List

import pytest

from opchatgpts._sync import MAX_QUEUED_BATCHES, SyncStream, loop_thread


def test_items_arrive_in_order_across_batches():
    async def batches() -> AsyncIterator[List[int]]:
        yield [1, 2]
        await asyncio.sleep(0.01)
        yield [3]

    assert list(SyncStream(batches)) == [1, 2, 3]


def test_closing_mid_batch_yields_nothing_more_and_waits_for_cleanup():
    cleaned: List[float] = []

    async def batches() -> AsyncIterator[List[int]]:
        try:
            yield [1, 2, 3]
            await asyncio.sleep(30)
            yield [4]
        finally:
            await asyncio.sleep(0.05)  # releasing a connection takes a moment
            cleaned.append(time.monotonic())

    stream = SyncStream(batches)
    assert next(stream) == 1
    stream.close()
    closed_at = time.monotonic()
    assert cleaned and cleaned[0] <= closed_at  # close() returned after the cleanup ran
    assert list(stream) == []


def test_an_error_reaches_the_consumer_after_the_items_before_it():
    async def batches() -> AsyncIterator[List[str]]:
        yield ["a"]
        raise LookupError("boom")

    stream = SyncStream(batches)
    assert next(stream) == "a"
    with pytest.raises(LookupError, match="boom"):
        next(stream)
    assert list(stream) == []


def test_close_from_another_thread_wakes_a_blocked_consumer():
    async def batches() -> AsyncIterator[List[int]]:
        yield [1]
        await asyncio.sleep(30)
        yield [2]

    stream = SyncStream(batches)
    assert next(stream) == 1
    threading.Timer(0.2, stream.close).start()
    start = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - start < 5


def test_no_task_is_left_on_the_loop():
    async def batches() -> AsyncIterator[List[int]]:
        yield [1]
        await asyncio.sleep(30)

    stream = SyncStream(batches)
    next(stream)
    stream.close()

    async def pending() -> int:
        current = asyncio.current_task()
        return len([t for t in asyncio.all_tasks() if t is not current and not t.done()])

    assert loop_thread.run(pending()) == 0


def test_the_hand_off_reads_a_bounded_number_of_batches_ahead():
    produced: List[int] = []

    async def fast_source() -> AsyncIterator[List[int]]:
        for n in range(1000):
            produced.append(n)
            yield [n]

    stream = SyncStream(fast_source)
    assert next(stream) == 0
    time.sleep(0.3)  # a slow consumer: the source waits for it instead of filling memory
    assert len(produced) <= MAX_QUEUED_BATCHES + 2
    assert list(stream) == list(range(1, 1000))  # and nothing is lost on the way


def test_a_stream_sends_nothing_until_it_is_read():
    started: List[bool] = []

    async def source() -> AsyncIterator[List[int]]:
        started.append(True)
        yield [1]

    stream = SyncStream(source)
    time.sleep(0.1)
    assert started == []
    assert list(stream) == [1] and started == [True]
