"""The sync side: async generators run on one shared background event-loop thread.

Every blocking client on aiohttp shares that thread: it starts when the first one needs it
and stops when the last one is closed (or at interpreter exit). It works from any thread,
including one whose own event loop is running (Jupyter). Items cross the thread boundary in
the batches in which they came off the network: one hand-off per read, not one per token.
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

from ._exceptions import ClientClosedError

__all__ = ["LoopThread", "SyncStream", "BlockingIterator", "loop_thread"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class BlockingIterator(Protocol[T_co]):
    """What blocking calls return: an iterator that can be closed early, also by ``with``."""

    def __iter__(self) -> "BlockingIterator[T_co]": ...

    def __next__(self) -> T_co: ...

    def close(self) -> None: ...

    def interrupt(self, error: BaseException) -> None: ...

    def __enter__(self) -> "BlockingIterator[T_co]": ...

    def __exit__(self, *exc_info: Any) -> None: ...


#: How long closing a stream waits for its connection to be released.
CLOSE_WAIT_SECONDS = 5.0
#: Batches a stream reads ahead of its consumer before it waits for the consumer.
MAX_QUEUED_BATCHES = 16

_SHUTDOWN_MESSAGE = "the opchatgpts loop thread stopped (interpreter exit) before the call ended"


class LoopThread:
    """A daemon thread running an event loop, from the first ``acquire`` to the last
    ``release`` (or ``shutdown``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._pipes: "weakref.WeakSet[_Pipe[Any]]" = weakref.WeakSet()
        self._users = 0
        self._atexit_registered = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use."""
        with self._lock:
            return self._start()

    def _start(self) -> asyncio.AbstractEventLoop:
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

    def acquire(self) -> asyncio.AbstractEventLoop:
        """Take a share of the thread (a client that uses it); start it if needed."""
        with self._lock:
            self._users += 1
            return self._start()

    def release(self) -> None:
        """Give a share back; the last one stops the thread."""
        with self._lock:
            self._users = max(0, self._users - 1)
            last = self._users == 0
        if last and not self.in_loop_thread():
            self.shutdown()

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread itself."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Awaitable[T]) -> "concurrent.futures.Future[T]":
        """Schedule a coroutine on the loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine on the loop and wait for its result.

        Ctrl-C while waiting cancels the coroutine before ``KeyboardInterrupt`` goes on. If
        the loop stops first (interpreter exit), ``ClientClosedError`` says so.
        """
        if self.in_loop_thread():
            raise RuntimeError("cannot block the opchatgpts loop thread on itself")
        future = self.submit(coro)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ClientClosedError(_SHUTDOWN_MESSAGE) from None
        except BaseException:
            future.cancel()
            concurrent.futures.wait([future], timeout=CLOSE_WAIT_SECONDS)
            raise

    def track(self, pipe: "_Pipe[Any]") -> None:
        """Remember an open stream, so that shutdown can end it."""
        self._pipes.add(pipe)

    def forget_after_fork(self) -> None:
        """In a forked child the loop thread does not exist: start a new one on next use."""
        self._lock = threading.Lock()
        self._loop = self._thread = None
        self._pipes = weakref.WeakSet()
        self._users = 0

    def shutdown(self) -> None:
        """End open streams (with an error: they did not finish), close what is left on the
        loop, then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            pipes, self._pipes = list(self._pipes), weakref.WeakSet()
        if loop is None or thread is None:
            return
        for pipe in pipes:
            pipe.interrupt(ClientClosedError(_SHUTDOWN_MESSAGE))
        if thread.is_alive():
            closing = asyncio.run_coroutine_threadsafe(_shutdown_loop(), loop)
            concurrent.futures.wait([closing], timeout=CLOSE_WAIT_SECONDS)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(CLOSE_WAIT_SECONDS)
        if not thread.is_alive():
            loop.close()


async def _shutdown_loop() -> None:
    loop = asyncio.get_running_loop()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Closes what clients left open here: each session is held by an async generator.
    await loop.shutdown_asyncgens()


loop_thread = LoopThread()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=loop_thread.forget_after_fork)


class _End:
    """The last item on a pipe's queue: the generator finished, or failed with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: Optional[BaseException]) -> None:
        self.error = error


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class _Pipe(Generic[T]):
    """Carries one async source's batches from the loop thread to a consumer thread.

    It is kept apart from ``SyncStream`` so that the running pump does not keep the
    consumer's object alive: dropping a ``SyncStream`` (a ``break``) closes it at once. The
    pump reads at most ``MAX_QUEUED_BATCHES`` ahead of the consumer, then waits for it.
    """

    def __init__(self, start: Callable[[], AsyncIterator[List[T]]], thread: LoopThread) -> None:
        self.queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread = thread
        self._lock = threading.Lock()
        self._queued = 0
        self._space: Optional["asyncio.Future[None]"] = None
        self._loop = thread.loop
        self._started = False
        self._finished = threading.Event()
        self._closed = False
        self._interrupted: Optional[BaseException] = None
        self._task: Optional["asyncio.Task[None]"] = None  # set, and read, on the loop only
        thread.track(self)
        # The pump's task is made on the loop by a plain callback: run_coroutine_threadsafe's
        # concurrent future, and its hand-back when the pump ends, would cost every call
        # about a third of its hand-off.
        self._loop.call_soon_threadsafe(self._start_pump, start)

    def _start_pump(self, start: Callable[[], AsyncIterator[List[T]]]) -> None:
        if not self._closed:
            self._task = self._loop.create_task(self._pump(start))

    def _cancel_pump(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _pump(self, start: Callable[[], AsyncIterator[List[T]]]) -> None:
        self._started = True
        error: Optional[BaseException] = None
        batches = start()
        try:
            async for batch in batches:
                self.queue.put(batch)
                with self._lock:
                    self._queued += 1
                    if self._queued < MAX_QUEUED_BATCHES:
                        continue
                    space = self._space = self._loop.create_future()
                await space
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

    def _took_one(self) -> None:
        with self._lock:
            self._queued -= 1
            space = self._space
            if space is None or self._queued >= MAX_QUEUED_BATCHES:
                return
            self._space = None
        self._loop.call_soon_threadsafe(_wake, space)

    def items(self) -> Iterator[T]:
        """The items, as a blocking generator; leaving it closes the pipe."""
        try:
            while True:
                batch = self.queue.get()
                if batch.__class__ is _End:
                    error = self._interrupted or batch.error
                    if error is None or (self._closed and self._interrupted is None):
                        return
                    if isinstance(error, asyncio.CancelledError):
                        # Cancelled by nobody the consumer knows: the loop is going away.
                        raise ClientClosedError(_SHUTDOWN_MESSAGE)
                    raise error
                self._took_one()
                yield from batch
        finally:
            self.close()

    @property
    def stopped(self) -> bool:
        """Whether ``close`` or ``interrupt`` was called: the consumer gets nothing more."""
        return self._closed

    def stopped_error(self) -> BaseException:
        """What the consumer gets once the pipe stopped: the interruption, or the end."""
        return self._interrupted or StopIteration()

    def close(self) -> None:
        """Cancel the pump and wait (bounded) until its connection is released."""
        if self._closed:
            return
        self._closed = True
        # A pump that finished holds nothing (the usual end of a stream read to its end):
        # cancelling it would only wake the loop thread once more.
        if not self._finished.is_set():
            try:
                self._loop.call_soon_threadsafe(self._cancel_pump)
            except RuntimeError:  # the loop is closed: the pump went with it
                pass
            # A pump cancelled before it started holds nothing; one that started releases
            # its connection in its ``finally`` before it sets ``_finished``.
            if self._started and not self._thread.in_loop_thread():
                self._finished.wait(CLOSE_WAIT_SECONDS)
        # Wake a consumer blocked in another thread.
        self.queue.put(_End(None))

    def interrupt(self, error: BaseException) -> None:
        """Stop the pump from outside (its client or the loop is closing): the consumer's
        next read raises ``error`` instead of ending quietly."""
        if self._closed:
            return
        self._interrupted = error
        self.close()


class SyncStream(Generic[T]):
    """A blocking iterator over an async source of batches that runs on the loop thread.

    Like a generator, it sends nothing until the first ``next()``. Leaving it early
    (``break``, ``close()``, the end of a ``with`` block, or Ctrl-C) closes the async
    generator on its loop and releases the connection at once. Errors are raised in the
    consumer with their original traceback.
    """

    def __init__(
        self,
        start: Callable[[], AsyncIterator[List[T]]],
        thread: LoopThread = loop_thread,
        on_start: Optional[Callable[["SyncStream[T]"], None]] = None,
    ) -> None:
        self._start: Optional[Callable[[], AsyncIterator[List[T]]]] = start
        self._thread = thread
        self._on_start = on_start
        self._pipe: Optional[_Pipe[T]] = None
        # Set at the first ``next()``. The items' generator must not refer to this object:
        # dropping the stream (a ``break``) then closes it at once, with no cycle to collect.
        self._items: Optional[Iterator[T]] = None

    def _begin(self) -> Iterator[T]:
        start, self._start = self._start, None
        if start is None:
            self._items = iter(())
        else:
            if self._on_start is not None:
                self._on_start(self)
            self._pipe = _Pipe(start, self._thread)
            self._items = self._pipe.items()
        return self._items

    def __iter__(self) -> "SyncStream[T]":
        return self

    def __next__(self) -> T:
        items = self._items
        if items is None:
            items = self._begin()
        elif self._pipe is not None and self._pipe.stopped:
            # Closed with items of the last batch still unread: they are not handed out.
            raise self._pipe.stopped_error()
        return next(items)

    def close(self) -> None:
        """Stop the stream and release its connection. Safe from any thread, and twice."""
        self._start = None
        if self._pipe is not None:
            self._pipe.close()

    def interrupt(self, error: BaseException) -> None:
        """End the stream from outside: its consumer gets ``error`` on the next read."""
        if self._pipe is not None:
            self._pipe.interrupt(error)
        elif self._start is not None:
            self._start = None
            self._items = _raise(error)

    def __enter__(self) -> "SyncStream[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            pipe.close()


def _raise(error: BaseException) -> Iterator[Any]:
    raise error
    yield  # pragma: no cover - makes this a generator
