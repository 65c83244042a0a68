"""Small immutable values: chat messages, stream events, the final result, timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, TypedDict, Union

__all__ = ["Message", "MessageLike", "TextDelta", "LiveEvent", "ChatResult", "Done", "Event", "Timeout"]


class Message(TypedDict):
    """One chat turn: ``{"role": "user" | "assistant" | "system", "content": str}``."""

    role: str
    content: str


#: What the API accepts as a message: any mapping with ``role`` and ``content``.
MessageLike = Mapping[str, Any]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer text (a ``live`` event with no subtype, or subtype ``content``)."""

    __slots__ = ("text",)
    text: str


@dataclass(frozen=True)
class LiveEvent:
    """A ``live`` event that is not answer text: ``thinking``, ``tool_call``, ``status``, ...

    ``visibility`` is the plugin's hint for a UI: ``visible``, ``hidden`` or ``collapsed``.
    """

    subtype: str
    data: Any
    visibility: Optional[str] = None
    timestamp: Optional[float] = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatResult:
    """The server's final word on one answer (the decoded ``end`` payload).

    ``reply`` is the full answer as the server reports it; ``raw`` keeps every key the server
    sent, including the ones this class does not name.
    """

    reply: str
    usage: Optional[Dict[str, Any]] = None
    images: Optional[List[Any]] = None
    actions: List[Any] = field(default_factory=list)
    chat_id: Optional[str] = None
    #: The root URL of the site that answered (the one a client with several sites used).
    site: Optional[str] = None
    new_token: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """The ``end`` event: the answer is complete."""

    result: ChatResult


Event = Union[TextDelta, LiveEvent, Done]


@dataclass(frozen=True)
class Timeout:
    """How long to wait, in seconds. ``None`` means no limit.

    Attributes:
        connect: to open the connection (TCP, TLS, proxy).
        read: the idle time allowed between two events of the answer, and before the headers.
        total: the whole call, retries and streaming included.
    """

    connect: Optional[float] = 10.0
    read: Optional[float] = 60.0
    total: Optional[float] = None

    @classmethod
    def coerce(cls, value: Union[None, float, int, "Timeout"]) -> "Timeout":
        """Accept a ``Timeout``, a number (connect and read), or ``None`` (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"timeout must be a number or a Timeout, not {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"timeout must be positive, got {value!r}")
        return cls(connect=float(value), read=float(value), total=None)
