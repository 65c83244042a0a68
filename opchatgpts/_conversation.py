"""A conversation: one chat id and the growing history, as the server reported it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Type

from ._exceptions import InvalidMessagesError, InvalidMessagesTypeError
from ._models import ChatResult, MessageLike
from ._protocol.request import ROLES, new_chat_id
from ._stream import AsyncChatStream, ChatStream

if TYPE_CHECKING:
    from ._provider import Opchatgpts

__all__ = ["Conversation"]


class Conversation:
    """Keeps one ``chat_id`` and the history of user turns and assistant replies.

    Each ``send`` sends the history plus the new user text. Once the server's ``end`` event
    arrives, the user turn and the reply (the server's final ``reply``) join the history;
    a failed or abandoned answer leaves the history as it was. Not thread-safe: use one
    conversation from one thread or task at a time.
    """

    def __init__(
        self,
        provider: Optional[Type["Opchatgpts"]] = None,
        messages: Sequence[MessageLike] = (),
        *,
        chat_id: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if provider is None:
            from ._provider import Opchatgpts

            provider = Opchatgpts
        if "messages" in kwargs or "stream" in kwargs:
            raise TypeError("a Conversation manages messages and streaming itself")
        provider.call_options(**kwargs)  # check the keyword arguments now, before any I/O
        self.provider = provider
        self.kwargs = kwargs
        self.chat_id = chat_id or new_chat_id()
        self.messages: List[Dict[str, str]] = _checked_history(messages)
        self.last_result: Optional[ChatResult] = None

    @classmethod
    def from_messages(cls, messages: Sequence[MessageLike], **kwargs: Any) -> "Conversation":
        """A conversation that goes on from earlier ``messages``."""
        return cls(messages=messages, **kwargs)

    def reset(self) -> None:
        """Forget the history and start a new conversation (a new chat id)."""
        self.messages = []
        self.chat_id = new_chat_id()
        self.last_result = None

    def _turn(self, text: str) -> List[Dict[str, str]]:
        if not isinstance(text, str):
            raise InvalidMessagesTypeError(f"the message must be a string, not {type(text).__name__}")
        return [*self.messages, {"role": "user", "content": text}]

    def _on_result(self, text: str) -> Any:
        def record(result: ChatResult) -> None:
            self.messages.append({"role": "user", "content": text})
            self.messages.append({"role": "assistant", "content": result.reply})
            self.last_result = result

        return record

    def send(self, text: str) -> ChatStream[str]:
        """Send ``text``; iterate the returned stream for the answer's text."""
        return self.provider.stream_events(
            self._turn(text), text=True, on_result=self._on_result(text),
            chat_id=self.chat_id, **self.kwargs,
        )

    async def send_async(self, text: str) -> AsyncChatStream[str]:
        """The async twin of ``send``: ``async for`` the returned stream."""
        return self.provider.stream_events_async(
            self._turn(text), text=True, on_result=self._on_result(text),
            chat_id=self.chat_id, **self.kwargs,
        )

    def ask(self, text: str) -> str:
        """Send ``text`` and return the whole answer."""
        with self.send(text) as stream:
            return "".join(stream)

    async def ask_async(self, text: str) -> str:
        """The async twin of ``ask``."""
        stream = await self.send_async(text)
        async with stream:
            return "".join([part async for part in stream])

    def __repr__(self) -> str:
        return f"Conversation(chat_id={self.chat_id!r}, {len(self.messages)} messages)"


def _checked_history(messages: Sequence[MessageLike]) -> List[Dict[str, str]]:
    if isinstance(messages, (str, bytes)):
        raise InvalidMessagesTypeError("messages must be a list of {'role', 'content'} dicts")
    history = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise InvalidMessagesTypeError(f"messages[{index}] must be a dict with a string 'content'")
        if message.get("role") not in ROLES:
            raise InvalidMessagesError(f"messages[{index}] has no valid role (one of {sorted(ROLES)})")
        history.append({"role": message["role"], "content": message["content"]})
    return history
