"""Soak: many calls in a row and many at once must not make the process grow.

2,000 sequential blocking calls, then 300 concurrent async streams, against the emulator.
Threads, open file descriptors and RSS are measured after a warm-up and again at the end;
the thresholds are generous (the point is "flat", not "small") and nothing is timed.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import List, Optional, Tuple

import psutil
import pytest
from leakcheck import client_sockets

import opchatgpts
from opchatgpts.testing import serve_emulator

SEQUENTIAL_CALLS = 2000
CONCURRENT_STREAMS = 300
#: Growth allowed over the whole soak.
MAX_EXTRA_FDS = 10
MAX_EXTRA_RSS = 60 * 1024 * 1024
#: The emulator runs in this process: its ends of the connections close a moment after
#: the client's, so the final count may wait for them that long.
SETTLE_SECONDS = 5.0

pytestmark = pytest.mark.skipif(not hasattr(psutil.Process(), "num_fds"), reason="POSIX only")


def usage(fds_at_most: Optional[int] = None) -> Tuple[int, int, int]:
    """(threads, open file descriptors, RSS bytes) of this process; with ``fds_at_most``,
    once the descriptor count is down to it (or ``SETTLE_SECONDS`` have passed)."""
    process = psutil.Process()
    deadline = time.monotonic() + SETTLE_SECONDS
    while fds_at_most is not None and process.num_fds() > fds_at_most:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    gc.collect()
    return threading.active_count(), process.num_fds(), process.memory_info().rss


def test_sequential_sync_calls_stay_flat() -> None:
    with serve_emulator("open") as site:
        for i in range(50):
            assert opchatgpts.ask(f"warm {i}", url=site.url) == f"Echo: warm {i}"
        threads, fds, rss = usage()
        for i in range(SEQUENTIAL_CALLS):
            assert opchatgpts.ask(f"n{i}", url=site.url) == f"Echo: n{i}"
        after = usage(fds_at_most=fds + MAX_EXTRA_FDS)
        assert site.emulator.submit_count() == SEQUENTIAL_CALLS + 50
    assert after[0] == threads, "threads grew"
    assert after[1] - fds <= MAX_EXTRA_FDS, f"file descriptors grew from {fds} to {after[1]}"
    assert after[2] - rss <= MAX_EXTRA_RSS, f"RSS grew by {(after[2] - rss) >> 20} MiB"


def test_concurrent_async_streams_stay_flat() -> None:
    async def burst() -> List[str]:
        ask = opchatgpts.ask_async
        return await asyncio.gather(
            *(ask("one two three four five", url=site.url) for _ in range(CONCURRENT_STREAMS))
        )

    with serve_emulator("open") as site:
        site.emulator.delta_delay = 0.01  # keep the streams open together
        idle_fds = psutil.Process().num_fds()
        asyncio.run(burst())  # warm-up: imports, caches, the allocator's arenas
        threads, fds, rss = usage(fds_at_most=idle_fds)
        for _ in range(3):
            answers = asyncio.run(burst())
            assert answers == ["Echo: one two three four five"] * CONCURRENT_STREAMS
        after = usage(fds_at_most=fds + MAX_EXTRA_FDS)
        port = int(site.url.rsplit(":", 1)[1])
        # asyncio.run closed each loop's session: nothing stays connected.
        assert client_sockets([port]) == []
    assert after[0] == threads, "threads grew"
    assert after[1] - fds <= MAX_EXTRA_FDS, f"file descriptors grew from {fds} to {after[1]}"
    assert after[2] - rss <= MAX_EXTRA_RSS, f"RSS grew by {(after[2] - rss) >> 20} MiB"
