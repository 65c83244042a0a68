"""Checks that a piece of code left nothing behind, used after every fault-matrix case.

``assert_no_leaks(servers)`` around a call asserts, once it returns:

* no thread was left running (the SDK's own ``opchatgpts-loop`` is allowed: it lives for
  the whole process by design);
* no socket the block opened is still connected to any of the servers' ports;
* no task is pending on the SDK's background loop (``opchatgpts._sync.loop_thread``);
* every server saw its connections end;
* no warning was issued (``ResourceWarning``, unclosed session or transport...) and the
  asyncio logger reported nothing ("Task was destroyed", "Unclosed client session", an
  exception nobody retrieved...).

Sockets and tasks are released asynchronously, so those checks wait a little (bounded).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, List, Sequence

import psutil

from opchatgpts._sync import loop_thread

__all__ = ["assert_no_leaks", "client_sockets", "sdk_loop_tasks", "SETTLE_SECONDS", "without_timing_notices"]

#: How long released sockets and cancelled tasks get to disappear.
SETTLE_SECONDS = 3.0
SDK_THREAD = "opchatgpts-loop"


_SLOW_STEP = re.compile(r"^Executing <.*> took \d+\.\d+ seconds$")


def without_timing_notices(stderr: str) -> str:
    """A child's stderr without ``-X dev``'s notices of slow event-loop steps (asyncio's
    debug mode times every step, and a loaded machine is slow): they are not leaks."""
    return "\n".join(line for line in stderr.splitlines() if not _SLOW_STEP.match(line))


def client_sockets(ports: Iterable[int]) -> List[Any]:
    """This process's sockets connected to one of ``ports`` (the client ends)."""
    wanted = set(ports)
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port in wanted and c.status != psutil.CONN_TIME_WAIT
    ]


def sdk_loop_tasks() -> List[str]:
    """The tasks still pending on the SDK's background loop (their reprs)."""

    async def pending() -> List[str]:
        current = asyncio.current_task()
        return [repr(t) for t in asyncio.all_tasks() if t is not current and not t.done()]

    return asyncio.run_coroutine_threadsafe(pending(), loop_thread.loop).result(SETTLE_SECONDS)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _settle(check: Any) -> Any:
    """Poll ``check()`` until it returns something falsy, or time runs out; return the last."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        result = check()
        if not result or time.monotonic() > deadline:
            return result
        time.sleep(0.01)


@contextmanager
def assert_no_leaks(servers: Sequence[Any] = ()) -> Iterator[None]:
    """Assert that the block leaves no thread, socket, task, warning or asyncio log record."""
    threads_before = {t.ident for t in threading.enumerate()}
    # A server's port may be one an earlier server had: a socket left from then is not this block's.
    ports = [s.port for s in servers]
    sockets_before = {(c.laddr, c.raddr) for c in client_sockets(ports)}
    records = _Records()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
            gc.collect()
            sockets = _settle(
                lambda: [c for c in client_sockets(ports) if (c.laddr, c.raddr) not in sockets_before]
            )
            tasks = _settle(sdk_loop_tasks)
            busy = _settle(lambda: [s.url for s in servers if s.active])
            threads = _settle(
                lambda: [
                    t
                    for t in threading.enumerate()
                    if t.ident not in threads_before and t.name != SDK_THREAD and t.is_alive()
                ]
            )
            gc.collect()
    finally:
        asyncio_logger.removeHandler(records)
    assert not sockets, f"sockets still open to the server: {sockets}"
    assert not tasks, f"tasks pending on the SDK loop: {tasks}"
    assert not busy, f"connections the client never closed: {busy}"
    assert not threads, f"threads left behind: {threads}"
    assert not caught, f"warnings: {[str(w.message) for w in caught]}"
    assert not records.messages, f"asyncio reported: {records.messages}"
