"""The rich event API: streams of typed events whose final result stays readable afterwards."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Generic, List, Optional, TypeVar, Union

from ._models import ChatResult, Done, Event, TextDelta
from ._sync import BlockingIterator

__all__ = ["ChatStream", "AsyncChatStream"]

T = TypeVar("T", str, Event)
ResultHook = Optional[Callable[[ChatResult], None]]


class _Tracker:
    """Watches events go by: keeps the final result and the text, and calls ``on_result``."""

    def __init__(self, text_only: bool, on_result: ResultHook) -> None:
        self.text_only = text_only
        self.on_result = on_result
        self.result: Optional[ChatResult] = None
        self.parts: List[str] = []

    def see(self, event: Event) -> Union[Event, str, None]:
        """What to hand to the caller for ``event`` (``None``: nothing)."""
        if event.__class__ is TextDelta:
            self.parts.append(event.text)
            return event.text if self.text_only else event
        if event.__class__ is Done:
            self.result = event.result
            if self.on_result is not None:
                self.on_result(self.result)
        return None if self.text_only else event


class ChatStream(Generic[T]):
    """A blocking stream of one answer.

    Iterate it for typed events (``TextDelta``, ``LiveEvent``, ``Done``), or for text only
    when it came from a ``send`` or ``text=True``. After the loop, ``result`` holds the
    server's final ``ChatResult`` (reply, usage, images, actions, chat id, raw payload) and
    ``text`` the text received. Leaving early (``break``, ``close()``, ``with``) releases
    the connection at once.
    """

    def __init__(
        self, events: BlockingIterator[Event], *, text_only: bool = False, on_result: ResultHook = None
    ) -> None:
        self._events = events
        self._tracker = _Tracker(text_only, on_result)

    @property
    def result(self) -> Optional[ChatResult]:
        """The final result, once the ``end`` event has been read."""
        return self._tracker.result

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return "".join(self._tracker.parts)

    def __iter__(self) -> "ChatStream[T]":
        return self

    def __next__(self) -> T:
        see = self._tracker.see
        for event in self._events:
            item = see(event)
            if item is not None:
                return item  # type: ignore[return-value]
        raise StopIteration

    def until_done(self) -> ChatResult:
        """Read the rest of the answer; return the final result."""
        for _ in self:
            pass
        assert self.result is not None  # the reader raises if the answer has no end
        return self.result

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._events.close()

    def __enter__(self) -> "ChatStream[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncChatStream(Generic[T]):
    """The async twin of ``ChatStream``: ``async for`` it, then read ``result``."""

    def __init__(
        self, events: AsyncIterator[Event], *, text_only: bool = False, on_result: ResultHook = None
    ) -> None:
        self._events = events
        self._tracker = _Tracker(text_only, on_result)

    @property
    def result(self) -> Optional[ChatResult]:
        """The final result, once the ``end`` event has been read."""
        return self._tracker.result

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return "".join(self._tracker.parts)

    def __aiter__(self) -> "AsyncChatStream[T]":
        return self

    async def __anext__(self) -> T:
        see = self._tracker.see
        async for event in self._events:
            item = see(event)
            if item is not None:
                return item  # type: ignore[return-value]
        raise StopAsyncIteration

    async def until_done(self) -> ChatResult:
        """Read the rest of the answer; return the final result."""
        async for _ in self:
            pass
        assert self.result is not None  # the reader raises if the answer has no end
        return self.result

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> "AsyncChatStream[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

