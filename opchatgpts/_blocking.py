"""The thread-free sync side: the async engine, driven by hand in the calling thread.

With ``transport="requests"`` every ``await`` in the engine reaches a transport method that
does blocking I/O and returns without ever suspending. A coroutine like that can be run
without an event loop: ``coro.send(None)`` runs it to its end in one step, and raises
``StopIteration`` carrying its result. An async generator is driven the same way, one
``__anext__()`` per item, and ``aclose()`` when the consumer leaves early.

So a blocking call here is a plain call stack: no event loop, no thread, and the same
protocol code as the async path. If a driven coroutine does suspend, it awaited something
that needs an event loop, which is a bug: ``RuntimeError`` says so.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncGenerator, Callable, Coroutine, Generic, List, Optional, Set, TypeVar

from ._transports.base import open_responses

__all__ = ["run_blocking", "BlockingStream"]

T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here, and return its result.

    Raises ``RuntimeError`` (inside the coroutine, so that its cleanup runs and the
    traceback shows the culprit ``await``) if it does suspend.
    """
    # A loop running in this thread (Jupyter) does not run this coroutine: hide it, so that
    # code asking for the running loop sees the truth and takes its loop-free path.
    loop = asyncio._get_running_loop()
    if loop is not None:
        asyncio._set_running_loop(None)
    try:
        try:
            awaited = coro.send(None)
        except StopIteration as stop:
            result: T = stop.value
            return result
        error = RuntimeError(
            f"a coroutine run without an event loop (transport='requests') suspended on "
            f"{awaited!r}, which only an event loop can resume; every await on this path must "
            "finish at once. This is a bug, in opchatgpts or in an async callback you passed "
            "(such as RetryPolicy.sleep)"
        )
        try:
            coro.throw(error)
        except StopIteration:
            pass  # the coroutine swallowed the error
        else:
            coro.close()
        raise error
    finally:
        if loop is not None:
            asyncio._set_running_loop(loop)


class BlockingStream(Generic[T]):
    """A blocking iterator over an async generator of batches, driven by ``run_blocking``.

    One step of the generator per network read; its items are then handed out one by one.

    The generator starts at the first ``next()``. Leaving early (``break``, ``close()``, the
    end of a ``with`` block, an exception or Ctrl-C in the loop body) closes it, and with it
    the response, at once. ``close()`` from another thread while the consumer is blocked in
    a read shuts that read's socket down; the consumer's thread then closes the generator,
    and its loop ends as if the answer had.
    """

    def __init__(self, start: Callable[[], AsyncGenerator[List[T], None]]) -> None:
        self._start: Optional[Callable[[], AsyncGenerator[List[T], None]]] = start
        self._agen: Optional[AsyncGenerator[List[T], None]] = None
        self._batch: List[T] = []
        self._index = 0
        self._lock = threading.Lock()
        self._stepping = False
        self._abandoned = False  # closed by another thread during a step
        self._interrupted: Optional[BaseException] = None
        self._ended = False  # the generator finished: nothing left to interrupt
        self._responses: Set[Any] = set()

    def __iter__(self) -> "BlockingStream[T]":
        return self

    def __next__(self) -> T:
        index = self._index
        if index < len(self._batch):
            self._index = index + 1
            return self._batch[index]
        while True:
            batch = self._step()
            if batch:
                self._batch, self._index = batch, 1
                return batch[0]

    def _step(self) -> List[T]:
        """The next batch; ``StopIteration`` at the end."""
        with self._lock:
            if self._agen is None and self._start is not None:
                self._agen, self._start = self._start(), None
            agen = None if self._abandoned else self._agen
            self._stepping = agen is not None
        if agen is None:
            self.close()
            if self._interrupted is not None:
                raise self._interrupted
            raise StopIteration
        token = open_responses.set(self._responses)
        try:
            return run_blocking(agen.__anext__())
        except StopAsyncIteration:
            self._agen = None
            self._ended = True
            raise StopIteration from None
        except BaseException as exc:
            with self._lock:
                self._stepping = False
            self.close()
            if self._abandoned and isinstance(exc, Exception):
                if self._interrupted is not None:
                    raise self._interrupted from None
                raise StopIteration from None
            raise
        finally:
            open_responses.reset(token)
            with self._lock:
                self._stepping = False

    def close(self) -> None:
        """Stop the stream and release its connection. Safe from any thread, and twice."""
        with self._lock:
            self._start = None
            self._batch, self._index = [], 0
            if self._stepping:
                self._abandoned = True
                responses, agen = list(self._responses), None
            else:
                responses, agen, self._agen = [], self._agen, None
        for response in responses:
            response.abort()
        if agen is not None:
            run_blocking(agen.aclose())

    def interrupt(self, error: BaseException) -> None:
        """End the stream from outside (its client is closing): the consumer's next read
        raises ``error`` instead of ending quietly."""
        if not self._ended:
            self._interrupted = error
        self.close()

    def __enter__(self) -> "BlockingStream[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # A ``break`` out of a ``for`` loop drops the iterator without closing it.
        if getattr(self, "_agen", None) is not None:
            self.close()
