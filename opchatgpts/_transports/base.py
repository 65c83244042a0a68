"""What the engine needs from an HTTP library. Implemented on aiohttp (``_aiohttp.py``) and on
requests (``_requests.py``)."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Mapping, Optional, Protocol, Union
from urllib.parse import urlsplit

from .._models import Timeout
from .._protocol.request import HTTPRequest

__all__ = ["ConnectOptions", "AsyncResponse", "AsyncTransport", "origin", "describe"]


@dataclass(frozen=True)
class ConnectOptions:
    """Per-call connection settings.

    ``deadline`` is a ``time.monotonic()`` value after which the whole call must stop.
    """

    timeout: Timeout = Timeout()
    deadline: Optional[float] = None
    proxy: Optional[str] = None
    verify: Union[bool, ssl.SSLContext] = True


class AsyncResponse(Protocol):
    """A response whose headers have arrived."""

    status: int
    headers: Mapping[str, str]
    url: str

    async def next_chunk(self) -> bytes:
        """The next bytes of the body, ``b""`` at its end.

        Raises ``StreamInterruptedError`` or ``StreamTimeoutError``.
        """

    async def read_body(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body, for explaining a refusal. Never raises."""

    async def finish(self) -> None:
        """The answer is complete: read the rest of the body briefly, so the connection
        can be reused. Never raises."""

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to its end."""


class AsyncTransport(Protocol):
    """Sends requests. Raises ``APIConnectionError`` and its subclasses, nothing else."""

    async def open(self, request: HTTPRequest, options: ConnectOptions) -> AsyncResponse:
        """Send ``request`` and wait for the response headers."""

    async def sleep(self, seconds: float) -> None:
        """Wait between retries, the transport's way."""


_USERINFO = re.compile(r"(?<=//)[^/@\s'\"]*@")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, without any user or password, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def describe(exc: BaseException) -> str:
    """An HTTP library's exception as text for our messages, with URL credentials removed."""
    text = str(exc) or type(exc).__name__
    text = text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"
    return _USERINFO.sub("", text)
