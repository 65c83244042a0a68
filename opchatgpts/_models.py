"""Small immutable values: chat messages, stream events, the final result, timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, TypedDict, Union

__all__ = [
    "Message", "MessageLike", "TextDelta", "LiveEvent", "Usage", "ChatResult", "Done", "Event", "Timeout",
]


class Message(TypedDict):
    """One chat turn: ``{"role": "user" | "assistant" | "system", "content": str}``."""

    role: Literal["user", "assistant", "system"]
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


class Usage(Mapping[str, Any]):
    """The tokens one answer used, as the plugin reports them.

    ``prompt_tokens``, ``completion_tokens`` and ``total_tokens`` are the common fields
    (``None`` when the plugin left one out); it is also a read-only mapping of every key
    the plugin sent, so the version-specific extras (3.x's ``price``, ``queries``,
    ``accuracy``...) are there too, and ``usage["total_tokens"]`` works as before.
    """

    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens", "_values")

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values: Dict[str, Any] = dict(values)
        self.prompt_tokens = _count(values.get("prompt_tokens"))
        self.completion_tokens = _count(values.get("completion_tokens"))
        self.total_tokens = _count(values.get("total_tokens"))

    @property
    def extras(self) -> Mapping[str, Any]:
        """The keys beyond the three common ones."""
        return {k: v for k, v in self._values.items() if k not in _COMMON_USAGE}

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = [f"{k}={getattr(self, k)!r}" for k in _COMMON_USAGE]
        shown += [f"{k}={v!r}" for k, v in self.extras.items()]
        return f"Usage({', '.join(shown)})"


_COMMON_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, repr=False)
class ChatResult:
    """The server's final word on one answer (the decoded ``end`` payload).

    ``reply`` is the full answer as the server reports it; ``raw`` keeps every key the server
    sent, including the ones this class does not name.
    """

    reply: str
    usage: Optional[Usage] = None
    images: Optional[List[Any]] = None
    actions: List[Any] = field(default_factory=list)
    chat_id: Optional[str] = None
    #: The root URL of the site that answered (the one a client with several sites used).
    site: Optional[str] = None
    new_token: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Each field once: ``raw`` only for the keys no field shows; never the new nonce.
        shown = [f"reply={self.reply!r}"]
        for name in ("usage", "images", "chat_id", "site"):
            value = getattr(self, name)
            if value is not None:
                shown.append(f"{name}={value!r}")
        if self.actions:
            shown.append(f"actions={self.actions!r}")
        if self.new_token:
            shown.append("new_token=<set>")
        named = {"reply", "usage", "images", "actions", "new_token", "success"}
        others = sorted(k for k in self.raw if k not in named)
        if others:
            shown.append(f"raw keys={others}")
        return f"ChatResult({', '.join(shown)})"


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
