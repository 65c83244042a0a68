"""The streams of one answer: text or typed events, and the final result afterwards."""

from __future__ import annotations

from typing import Any, AsyncGenerator, AsyncIterator, Callable, Generic, List, Optional, TypeVar

from ._exceptions import IncompleteStreamError
from ._models import ChatResult, Done, Event, TextDelta
from ._sync import BlockingIterator

__all__ = ["Answer", "ChatStream", "AsyncChatStream", "answer_batches", "answer_items"]

T = TypeVar("T")
ResultHook = Optional[Callable[[ChatResult], None]]


class Answer:
    """What is known of one answer while it streams: its text so far, then its result.

    The producer fills it as batches come off the network, so a stream need not look at
    each item it hands out.
    """

    __slots__ = ("parts", "result")

    def __init__(self) -> None:
        self.parts: List[str] = []
        self.result: Optional[ChatResult] = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _note(batch: List[Event], answer: Answer) -> List[str]:
    """Note a batch's text and result in ``answer``; return its text deltas."""
    texts = [event.text for event in batch if type(event) is TextDelta]
    answer.parts += texts
    last = batch[-1]
    if type(last) is Done:
        answer.result = last.result
    return texts


async def answer_batches(
    batches: AsyncGenerator[List[Event], None], answer: Answer, text_only: bool
) -> AsyncGenerator[List[Any], None]:
    """The batches of events, or only their text, noting the text and result in ``answer``.

    For the blocking streams, which hand batches across to their consumer."""
    try:
        async for batch in batches:
            texts = _note(batch, answer)
            if not text_only:
                yield batch
            elif texts:
                yield texts
    finally:
        await batches.aclose()


async def answer_items(
    batches: AsyncGenerator[List[Event], None], answer: Answer, text_only: bool
) -> AsyncGenerator[Any, None]:
    """The same, one item at a time: the async streams' items, with no layer in between."""
    try:
        async for batch in batches:
            texts = _note(batch, answer)
            for item in texts if text_only else batch:
                yield item
    finally:
        await batches.aclose()


class _Result:
    """The part both streams share: ``result``, ``text`` and the result hook."""

    def __init__(self, answer: Answer, on_result: ResultHook) -> None:
        self._answer = answer
        self._on_result = on_result

    @property
    def result(self) -> Optional[ChatResult]:
        """The final result, once the ``end`` event has been read (else ``None``)."""
        return self._answer.result

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return self._answer.text

    def _ended(self) -> None:
        hook, self._on_result = self._on_result, None
        if hook is not None and self._answer.result is not None:
            hook(self._answer.result)

    def _final(self) -> ChatResult:
        if self._answer.result is None:
            raise IncompleteStreamError("the stream was closed before the answer's end event")
        return self._answer.result


class ChatStream(_Result, Generic[T]):
    """A blocking stream of one answer.

    Iterate it for text (``Client.stream``, ``Conversation.send``) or for typed events
    (``TextDelta``, ``LiveEvent``, ``Done``: ``stream_events``). After the loop, ``result``
    holds the server's final ``ChatResult`` (reply, usage, images, actions, chat id, raw
    payload) and ``text`` the text received. Leaving early (``break``, ``close()``,
    ``with``) releases the connection at once.
    """

    def __init__(self, items: BlockingIterator[T], answer: Answer, on_result: ResultHook = None) -> None:
        super().__init__(answer, on_result)
        self._items = items

    def __iter__(self) -> "ChatStream[T]":
        return self

    def __next__(self) -> T:
        try:
            return next(self._items)
        except StopIteration:
            self._ended()
            raise

    def until_done(self) -> ChatResult:
        """Read the rest of the answer; return the final result."""
        for _ in self:
            pass
        return self._final()

    def close(self) -> None:
        """Stop reading and release the connection. Safe from any thread, and twice."""
        self._items.close()

    def interrupt(self, error: BaseException) -> None:
        """End the stream from outside: the consumer's next read raises ``error``."""
        self._items.interrupt(error)

    def __enter__(self) -> "ChatStream[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncChatStream(_Result, Generic[T]):
    """The async twin of ``ChatStream``: ``async for`` it (or ``async with``), then read
    ``result``."""

    def __init__(self, items: AsyncIterator[T], answer: Answer, on_result: ResultHook = None) -> None:
        super().__init__(answer, on_result)
        self._items = items

    def __aiter__(self) -> "AsyncChatStream[T]":
        return self

    async def __anext__(self) -> T:
        try:
            return await self._items.__anext__()
        except StopAsyncIteration:
            self._ended()
            raise

    async def until_done(self) -> ChatResult:
        """Read the rest of the answer; return the final result."""
        async for _ in self:
            pass
        return self._final()

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> "AsyncChatStream[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()
