"""The async transport on aiohttp: one pooled ``ClientSession`` per event loop.

The session pools connections and keeps cookies across calls. It is closed when its loop
shuts down its async generators (``asyncio.run`` and pytest-asyncio do), or by
``await opchatgpts.aclose()``.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import AsyncIterator, Mapping, Optional

import aiohttp

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    StreamInterruptedError,
    StreamTimeoutError,
    TLSVerificationError,
)
from ._request import HTTPRequest
from ._transport import ConnectOptions

__all__ = ["AiohttpTransport", "get_transport", "close_transport"]

_FINISH_SECONDS = 1.0
_FINISH_MAX_BYTES = 64 * 1024


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.url = str(response.url)

    async def next_chunk(self) -> bytes:
        try:
            return await self._response.content.readany()
        except asyncio.TimeoutError as exc:
            raise StreamTimeoutError("no data arrived within the timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise StreamInterruptedError(
                f"the connection broke during the answer: {_describe(exc)}"
            ) from exc

    async def read_body(self, limit: int) -> bytes:
        try:
            return await self._response.content.read(limit)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
            return b""

    async def finish(self) -> None:
        content = self._response.content
        if content.is_eof():
            return
        try:
            # Nothing follows the end event but the end of the body, normally already here.
            await asyncio.wait_for(content.read(_FINISH_MAX_BYTES), _FINISH_SECONDS)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
            pass

    async def aclose(self) -> None:
        # release() keeps the connection for reuse only if the body was read to its end.
        self._response.release()


class AiohttpTransport:
    """Sends requests through one ``aiohttp.ClientSession``, created on first use."""

    def __init__(self) -> None:
        self._session: Optional[aiohttp.ClientSession] = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session (created lazily, on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # ``unsafe`` lets sites addressed by IP (local installs) keep their cookies.
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` ran."""
        return self._session is not None and self._session.closed

    async def open(self, request: HTTPRequest, options: ConnectOptions) -> _AiohttpResponse:
        """Send ``request``; return once the response headers have arrived."""
        timeout = options.timeout
        total = None
        if options.deadline is not None:
            total = options.deadline - time.monotonic()
            if total <= 0:
                raise APITimeoutError("the total timeout ran out", url=request.url)
        client_timeout = aiohttp.ClientTimeout(
            total=total, sock_connect=timeout.connect, sock_read=timeout.read
        )
        try:
            response = await self.session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                proxy=options.proxy,
                ssl=options.verify if options.verify is not True else True,
                timeout=client_timeout,
                allow_redirects=False,
            )
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(
                f"no response from {_origin(request.url)} within the timeout", url=request.url
            ) from exc
        except aiohttp.ClientSSLError as exc:
            raise TLSVerificationError(
                f"TLS with {_origin(request.url)} failed: {_describe(exc)}", url=request.url
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise APIConnectionError(
                f"cannot reach {_origin(request.url)}: {_describe(exc)}", url=request.url
            ) from exc
        return _AiohttpResponse(response)

    async def sleep(self, seconds: float) -> None:
        """Wait between retries."""
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        """Close the session and its pooled connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()


_transports: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AiohttpTransport]" = (
    weakref.WeakKeyDictionary()
)
_closers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]]" = (
    weakref.WeakKeyDictionary()
)


async def get_transport() -> AiohttpTransport:
    """The running loop's shared transport."""
    loop = asyncio.get_running_loop()
    transport = _transports.get(loop)
    if transport is None or transport.closed:
        transport = _transports[loop] = AiohttpTransport()
        # An async generator, parked at its first yield, that the loop closes in
        # shutdown_asyncgens(): the last moment at which the session can still be awaited
        # closed on its own loop.
        closer = _close_on_loop_shutdown(transport)
        await closer.__anext__()
        _closers[loop] = closer
    return transport


async def _close_on_loop_shutdown(transport: AiohttpTransport) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await transport.aclose()


async def close_transport() -> None:
    """Close the running loop's shared transport, if it has one."""
    loop = asyncio.get_running_loop()
    transport = _transports.pop(loop, None)
    closer = _closers.pop(loop, None)
    if transport is not None:
        await transport.aclose()
    if closer is not None:
        await closer.aclose()  # type: ignore[attr-defined]


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
