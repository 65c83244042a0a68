"""The rich event API: streams of typed events whose final result stays readable afterwards."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Generic, List, Optional, TypeVar, Union

from ._exceptions import IncompleteStreamError
from ._models import ChatResult, Done, Event, TextDelta
from ._sync import BlockingIterator

__all__ = ["ChatStream", "AsyncChatStream"]

T = TypeVar("T", str, Event)
ResultHook = Optional[Callable[[ChatResult], None]]


class _Answer(Generic[T]):
    """What both streams keep while events go by: the final result and the text."""

    def __init__(self, text_only: bool, on_result: ResultHook) -> None:
        self._text_only = text_only
        self._on_result = on_result
        self._parts: List[str] = []
        self.result: Optional[ChatResult] = None
        """The final result, once the ``end`` event has been read."""

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return "".join(self._parts)

    def _see(self, event: Event) -> Union[Event, str, None]:
        """What to hand to the caller for ``event`` (``None``: nothing)."""
        if type(event) is TextDelta:
            self._parts.append(event.text)
            return event.text if self._text_only else event
        if type(event) is Done:
            self.result = event.result
            if self._on_result is not None:
                self._on_result(event.result)
        return None if self._text_only else event

    def _final(self) -> ChatResult:
        if self.result is None:
            raise IncompleteStreamError("the stream was closed before the answer's end event")
        return self.result


class ChatStream(_Answer[T]):
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
        super().__init__(text_only, on_result)
        self._events = events

    def __iter__(self) -> "ChatStream[T]":
        return self

    def __next__(self) -> T:
        for event in self._events:
            item = self._see(event)
            if item is not None:
                return item  # type: ignore[return-value]
        raise StopIteration

    def until_done(self) -> ChatResult:
        """Read the rest of the answer; return the final result."""
        for _ in self:
            pass
        return self._final()

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._events.close()

    def __enter__(self) -> "ChatStream[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncChatStream(_Answer[T]):
    """The async twin of ``ChatStream``: ``async for`` it, then read ``result``."""

    def __init__(
        self, events: AsyncIterator[Event], *, text_only: bool = False, on_result: ResultHook = None
    ) -> None:
        super().__init__(text_only, on_result)
        self._events = events

    def __aiter__(self) -> "AsyncChatStream[T]":
        return self

    async def __anext__(self) -> T:
        async for event in self._events:
            item = self._see(event)
            if item is not None:
                return item  # type: ignore[return-value]
        raise StopAsyncIteration

    async def until_done(self) -> ChatResult:
        """Read the rest of the answer; return the final result."""
        async for _ in self:
            pass
        return self._final()

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> "AsyncChatStream[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()
