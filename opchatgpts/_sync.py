"""The sync side: async generators run on one shared background event-loop thread.

Every blocking call in the process shares that thread, started on first use, and with it the
pooled HTTP session. It works from any thread, including one whose own event loop is
running (Jupyter). Items cross the thread boundary in the batches in which they came off the
network: one hand-off per read, not one per token.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import queue
import threading
import weakref
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Generic,
    Iterator,
    List,
    Optional,
    Protocol,
    TypeVar,
)

from ._transports.aiohttp import close_transport

__all__ = ["LoopThread", "SyncStream", "BlockingIterator", "loop_thread"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class BlockingIterator(Protocol[T_co]):
    """What blocking calls return: an iterator that can be closed early, also by ``with``."""

    def __iter__(self) -> "BlockingIterator[T_co]": ...

    def __next__(self) -> T_co: ...

    def close(self) -> None: ...

    def __enter__(self) -> "BlockingIterator[T_co]": ...

    def __exit__(self, *exc_info: Any) -> None: ...

#: How long closing a stream waits for its connection to be released.
CLOSE_WAIT_SECONDS = 5.0


class LoopThread:
    """A daemon thread running an event loop forever, until ``shutdown``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._pipes: "weakref.WeakSet[_Pipe[Any]]" = weakref.WeakSet()
        self._atexit_registered = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="opchatgpts-loop", daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
                if not self._atexit_registered:
                    atexit.register(self.shutdown)
                    self._atexit_registered = True
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread itself."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Awaitable[T]) -> "concurrent.futures.Future[T]":
        """Schedule a coroutine on the loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine on the loop and wait for its result.

        Ctrl-C while waiting cancels the coroutine before ``KeyboardInterrupt`` goes on.
        """
        if self.in_loop_thread():
            raise RuntimeError("cannot block the opchatgpts loop thread on itself")
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            concurrent.futures.wait([future], timeout=CLOSE_WAIT_SECONDS)
            raise

    def track(self, pipe: "_Pipe[Any]") -> None:
        """Remember an open stream, so that shutdown can close it."""
        self._pipes.add(pipe)

    def forget_after_fork(self) -> None:
        """In a forked child the loop thread does not exist: start a new one on next use."""
        self._lock = threading.Lock()
        self._loop = self._thread = None
        self._pipes = weakref.WeakSet()

    def shutdown(self) -> None:
        """Close open streams and the pooled session, then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        for pipe in list(self._pipes):
            pipe.close()
        if thread.is_alive():
            closing = asyncio.run_coroutine_threadsafe(_shutdown_loop(), loop)
            concurrent.futures.wait([closing], timeout=CLOSE_WAIT_SECONDS)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(CLOSE_WAIT_SECONDS)
        if not thread.is_alive():
            loop.close()


async def _shutdown_loop() -> None:
    await close_transport()
    loop = asyncio.get_running_loop()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()


loop_thread = LoopThread()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=loop_thread.forget_after_fork)


class _End:
    """The last item on a pipe's queue: the generator finished, or failed with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: Optional[BaseException]) -> None:
        self.error = error


class _Pipe(Generic[T]):
    """Carries one async source's batches from the loop thread to a consumer thread.

    It is kept apart from ``SyncStream`` so that the running pump does not keep the
    consumer's object alive: dropping a ``SyncStream`` (a ``break``) closes it at once.
    """

    def __init__(self, start: Callable[[], AsyncIterator[List[T]]], thread: LoopThread) -> None:
        self.queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread = thread
        self._started = False
        self._finished = threading.Event()
        self._closed = False
        thread.track(self)
        self._future = thread.submit(self._pump(start))

    async def _pump(self, start: Callable[[], AsyncIterator[List[T]]]) -> None:
        self._started = True
        error: Optional[BaseException] = None
        batches = start()
        try:
            async for batch in batches:
                self.queue.put(batch)
        except BaseException as exc:  # handed to the consumer, even CancelledError
            error = exc
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except BaseException:  # already failing or cancelled; nothing more to report
                    pass
            self.queue.put(_End(error))
            self._finished.set()
        if isinstance(error, asyncio.CancelledError):
            raise error

    def items(self) -> Iterator[T]:
        """The items, as a blocking generator; leaving it closes the pipe."""
        try:
            while True:
                batch = self.queue.get()
                if batch.__class__ is _End:
                    error = batch.error
                    if error is None or isinstance(error, asyncio.CancelledError):
                        return
                    raise error
                yield from batch
        finally:
            self.close()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (the consumer gets nothing more)."""
        return self._closed

    def close(self) -> None:
        """Cancel the pump and wait (bounded) until its connection is released."""
        if self._closed:
            return
        self._closed = True
        self._future.cancel()
        # A pump cancelled before it started holds nothing; one that started releases its
        # connection in its ``finally`` before it sets ``_finished``.
        if self._started and not self._thread.in_loop_thread():
            self._finished.wait(CLOSE_WAIT_SECONDS)
        # Wake a consumer blocked in another thread.
        self.queue.put(_End(None))


class SyncStream(Generic[T]):
    """A blocking iterator over an async source of batches that runs on the loop thread.

    Leaving it early (``break``, ``close()``, the end of a ``with`` block, or Ctrl-C)
    closes the async generator on its loop and releases the connection at once. Errors
    are raised in the consumer with their original traceback.
    """

    def __init__(
        self, start: Callable[[], AsyncIterator[List[T]]], thread: LoopThread = loop_thread
    ) -> None:
        self._pipe = _Pipe(start, thread)
        self._items = self._pipe.items()

    def __iter__(self) -> "SyncStream[T]":
        return self

    def __next__(self) -> T:
        if self._pipe.closed:
            raise StopIteration
        return next(self._items)

    def close(self) -> None:
        """Stop the stream and release its connection. Safe from any thread, and twice."""
        self._pipe.close()

    def __enter__(self) -> "SyncStream[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            pipe.close()
