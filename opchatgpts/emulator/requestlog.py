"""The requests the emulator received: :class:`RecordedRequest` and the bounded :class:`RequestLog`."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = ["RECORDED_BODY_LIMIT", "RecordedRequest", "RequestLog"]

RECORDED_BODY_LIMIT = 1024 * 1024
"""A recorded body keeps at most this many bytes; ``body_size`` tells the real length."""

_T = TypeVar("_T")


class _Headers(dict[str, str]):
    """A dict of header values keyed by lower-case name, whose lookups ignore case."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for name, value in items:
            key = name.lower()
            self[key] = f"{self[key]}, {value}" if key in self else value

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    @overload
    def get(self, key: str, default: None = None, /) -> str | None: ...

    @overload
    def get(self, key: str, default: str, /) -> str: ...

    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...

    def get(self, key: str, default: object = None, /) -> object:
        return super().get(key.lower(), default)


def headers_of(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A header dict whose lookups ignore case; repeated headers are joined with ", "."""
    return _Headers(items)


@dataclass
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header values by name; lookups ignore case, repeated headers are joined with ", "."""
    body: bytes
    """The body as received; only its first :data:`RECORDED_BODY_LIMIT` bytes if it was longer."""
    body_size: int = -1
    """The body's real length in bytes (``len(body)`` unless the body was cut)."""

    def __post_init__(self) -> None:
        if self.body_size < 0:
            self.body_size = len(self.body)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class RequestLog(Sequence[RecordedRequest]):
    """The last ``maxlen`` requests, oldest first; older ones are forgotten.

    It supports ``len``, iteration, indexing and slicing of what it keeps, like a
    list; :attr:`total` counts every request ever received.
    """

    def __init__(self, maxlen: int) -> None:
        """Keep at most ``maxlen`` requests (at least 1)."""
        if maxlen < 1:
            raise ValueError("the request log must keep at least one request")
        self._maxlen = maxlen
        self._kept: deque[RecordedRequest] = deque(maxlen=maxlen)
        self._total = 0

    @property
    def maxlen(self) -> int:
        """How many requests the log keeps."""
        return self._maxlen

    @property
    def total(self) -> int:
        """How many requests were received in all, forgotten ones included."""
        return self._total

    def append(self, request: RecordedRequest) -> None:
        """Record ``request``, forgetting the oldest one if the log is full."""
        self._kept.append(request)
        self._total += 1

    def clear(self) -> None:
        """Forget the kept requests (``total`` keeps counting)."""
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self._kept)

    @overload
    def __getitem__(self, index: int) -> RecordedRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordedRequest]: ...

    def __getitem__(self, index: int | slice) -> RecordedRequest | list[RecordedRequest]:
        if isinstance(index, slice):
            return list(self._kept)[index]
        return self._kept[index]

    def __repr__(self) -> str:
        return f"<RequestLog {len(self)} of {self._total} requests kept (maxlen {self.maxlen})>"
