"""A conversation: one chat id and the growing history, as the server reported it."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ._exceptions import InvalidMessagesTypeError
from ._files import load_files
from ._models import ChatResult, MessageLike
from ._options import CallOptions
from ._protocol.request import check_messages, new_chat_id
from ._protocol.uploads import FileInput
from ._stream import AsyncChatStream, ChatStream

__all__ = ["Conversation"]

ResultHook = Callable[[ChatResult], None]


#: The sites a turn may try, in order, each with its settings.
Plan = Tuple[CallOptions, ...]


class _Client(Protocol):
    """What a conversation needs of its client (``Client`` and ``AsyncClient`` both)."""

    def _plan(self, changes: Any) -> Plan: ...

    def _converse(self, messages: List[Dict[str, str]], plan: Plan, on_result: ResultHook) -> Any: ...

    def _aconverse(self, messages: List[Dict[str, str]], plan: Plan, on_result: ResultHook) -> Any: ...


#: Gives ``Conversation`` a client when none is named: the package's default client.
#: (Set by ``_provider``, which owns the default clients and sits above this module.)
default_client: Optional[Callable[[], _Client]] = None


class Conversation:
    """Keeps one ``chat_id`` and the history of user turns and assistant replies.

    Each ``send`` sends the history plus the new user text. Once the server's ``end`` event
    arrives, the user turn and the reply (the server's final ``reply``) join the history;
    a failed or abandoned answer leaves the history as it was. It works from a ``Client``
    or an ``AsyncClient``, blocking (``send``, ``ask``) and async (``send_async``,
    ``ask_async``) alike. Not thread-safe: use one conversation from one thread or task at
    a time.

    ``files=`` on a turn go with that turn only, as in the browser: the history keeps the
    turn's text, and the next turn does not send the files again.
    """

    def __init__(
        self,
        client: Optional[_Client] = None,
        messages: Sequence[MessageLike] = (),
        *,
        chat_id: Optional[str] = None,
        **options: Any,
    ) -> None:
        if "messages" in options or "stream" in options:
            raise TypeError("a Conversation manages messages and streaming itself")
        if "files" in options:
            raise TypeError("files= goes with one turn: conversation.send(text, files=[...])")
        if client is None:
            if default_client is None:  # pragma: no cover - set when the package is imported
                raise TypeError("Conversation needs a client")
            client = default_client()
        self.client = client
        self._plan = client._plan(options)  # checked now, before any I/O
        self.chat_id = chat_id or new_chat_id()
        self.messages: List[Dict[str, str]] = check_messages(messages)
        self.last_result: Optional[ChatResult] = None

    @classmethod
    def _with(
        cls, client: _Client, options: CallOptions, messages: Sequence[MessageLike], chat_id: Optional[str]
    ) -> "Conversation":
        """A conversation with options already resolved (the gpt4free face's)."""
        conversation = cls.__new__(cls)
        conversation.client = client
        conversation._plan = (options,)
        conversation.chat_id = chat_id or options.chat_id or new_chat_id()
        conversation.messages = check_messages(messages)
        conversation.last_result = None
        return conversation

    @classmethod
    def from_messages(cls, messages: Sequence[MessageLike], **kwargs: Any) -> "Conversation":
        """A conversation that goes on from earlier ``messages`` (``client=`` optional)."""
        return cls(messages=messages, **kwargs)

    @property
    def options(self) -> CallOptions:
        """The settings of each turn (the site, timeouts...; the first site's, if several)."""
        return self._plan[0]

    def reset(self) -> None:
        """Forget the history and start a new conversation (a new chat id)."""
        self.messages = []
        self.chat_id = new_chat_id()
        self.last_result = None

    def _turn(self, text: str) -> List[Dict[str, str]]:
        if not isinstance(text, str):
            raise InvalidMessagesTypeError(f"the message must be a string, not {type(text).__name__}")
        return [*self.messages, {"role": "user", "content": text}]

    def _call(self, files: Optional[Sequence[FileInput]] = None) -> Plan:
        loaded = load_files(files, self._plan[0].max_file_bytes)  # read now, before any I/O
        return tuple(
            dataclasses.replace(o, chat_id=self.chat_id, stream=True, files=loaded) for o in self._plan
        )

    def _on_result(self, text: str) -> ResultHook:
        def record(result: ChatResult) -> None:
            self.messages.append({"role": "user", "content": text})
            self.messages.append({"role": "assistant", "content": result.reply})
            self.last_result = result

        return record

    def send(self, text: str, files: Optional[Sequence[FileInput]] = None) -> ChatStream[str]:
        """Send ``text`` (and ``files``, with this turn only); iterate the returned stream
        for the answer's text."""
        turn = self._turn(text)
        stream: ChatStream[str] = self.client._converse(turn, self._call(files), self._on_result(text))
        return stream

    async def send_async(
        self, text: str, files: Optional[Sequence[FileInput]] = None
    ) -> AsyncChatStream[str]:
        """The async twin of ``send``: ``async for`` the returned stream."""
        turn = self._turn(text)
        stream: AsyncChatStream[str] = self.client._aconverse(turn, self._call(files), self._on_result(text))
        return stream

    def ask(self, text: str, files: Optional[Sequence[FileInput]] = None) -> str:
        """Send ``text`` (and ``files``) and return the whole answer."""
        with self.send(text, files) as stream:
            return "".join(stream)

    async def ask_async(self, text: str, files: Optional[Sequence[FileInput]] = None) -> str:
        """The async twin of ``ask``."""
        stream = await self.send_async(text, files)
        async with stream:
            return "".join([part async for part in stream])

    def __repr__(self) -> str:
        return f"Conversation(chat_id={self.chat_id!r}, {len(self.messages)} messages)"
