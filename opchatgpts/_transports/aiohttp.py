"""The async transport on aiohttp: a client's pooled ``ClientSession``, one per event loop.

The session pools connections and keeps cookies across calls. It is closed with its client,
or when its loop shuts down its async generators (``asyncio.run`` and pytest-asyncio do).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import weakref
from http.cookies import BaseCookie, Morsel, SimpleCookie
from types import MappingProxyType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Coroutine,
    Dict,
    FrozenSet,
    Iterator,
    Mapping,
    Optional,
    Tuple,
)

import aiohttp
from aiohttp.abc import AbstractCookieJar, ClearCookiePredicate
from aiohttp.http_exceptions import ContentEncodingError, ContentLengthError, TransferEncodingError
from aiohttp.typedefs import LooseCookies
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._exceptions import ClientClosedError
from .._protocol.request import HTTPRequest
from .base import ConnectOptions, Timeouts, TransportFailure, explain

__all__ = ["AiohttpTransport", "AiohttpPool"]

#: How long closing the session waits for connections still shutting their sockets.
_SHUTDOWN_SECONDS = 1.0


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers  # a CIMultiDictProxy
        self.url = str(response.url)

    async def read(self, timeout: Optional[float]) -> bytes:
        content = self._response.content
        try:
            # Bytes already received are returned at once, without a trip through the loop.
            data = content.read_nowait()
            if data or content.at_eof():
                return data
            # aiohttp's own read timeout is not enough: after a broken chunked framing it
            # drops its timer and leaves the body waiting forever.
            return await _within(timeout, content.readany())
        except asyncio.TimeoutError as exc:
            raise TransportFailure("read_timeout", "no data") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _body_failure(exc) from _scrub(exc)
        except RuntimeError as exc:  # aiohttp's "Connection closed." once the protocol is gone
            raise TransportFailure("interrupted", "the server closed the connection") from exc

    async def aclose(self) -> None:
        # release() keeps the connection for reuse only if the body was read to its end.
        self._response.release()


if sys.version_info >= (3, 11):

    async def _within(timeout: Optional[float], awaitable: Awaitable[bytes]) -> bytes:
        """``awaitable``'s result, or ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):  # unlike wait_for before 3.12, no extra task
            return await awaitable

else:  # pragma: no cover - depends on the interpreter

    async def _within(timeout: Optional[float], awaitable: Awaitable[bytes]) -> bytes:
        """``awaitable``'s result, or ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        return await asyncio.wait_for(awaitable, timeout)


class _WaitsForShutdown:
    """A connector that can wait for the connections it closed rather than pooled.

    aiohttp forgets a connection as soon as it closes it, and ``close()`` waits only for the
    pooled ones. A TLS connection still exchanges close_notify after that: a loop that stops
    first leaks its socket ("unclosed transport").
    """

    def _start_tracking(self) -> None:
        self._open: Dict[Any, asyncio.Transport] = {}  # protocol -> its transport
        self._shutting: Dict["asyncio.Future[None]", asyncio.Transport] = {}

    async def connect(self, req: Any, traces: Any, timeout: Any) -> aiohttp.connector.Connection:
        connection = await super().connect(req, traces, timeout)  # type: ignore[misc]
        protocol, transport = connection.protocol, connection.transport
        if protocol is not None and transport is not None and protocol not in self._open:
            # A new connection (a pooled one is known already): sort the ones known so far
            # now, so that the closed ones are not kept. Not on every reuse: that would
            # cost each request a look at every connection of the pool.
            self._sort_closing()
            self._open[protocol] = transport
        return connection  # type: ignore[no-any-return]

    def _sort_closing(self) -> None:
        for protocol, transport in list(self._open.items()):
            if transport.is_closing():
                del self._open[protocol]
                closed = getattr(protocol, "closed", None)  # a future since aiohttp 3.12.4
                if isinstance(closed, asyncio.Future) and not closed.done():
                    self._shutting[closed] = transport
                    closed.add_done_callback(self._shut)

    def _shut(self, closed: "asyncio.Future[None]") -> None:
        self._shutting.pop(closed, None)
        if not closed.cancelled():
            closed.exception()  # a connection that broke while closing is no news

    async def wait_shut(self, timeout: float) -> None:
        """After ``close()``: wait up to ``timeout`` for every socket to shut, then abort."""
        self._sort_closing()
        if self._shutting:
            await asyncio.wait(list(self._shutting), timeout=timeout)
        for transport in list(self._shutting.values()) + list(self._open.values()):
            transport.abort()
        self._open.clear()
        self._shutting.clear()


class _Connector(_WaitsForShutdown, aiohttp.TCPConnector):
    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit)
        self._start_tracking()


def _socks_connector(proxy: str, limit: int) -> aiohttp.BaseConnector:
    """A connector through a SOCKS proxy (``socks5://``, ``socks5h://``, ``socks4://``)."""
    try:
        from aiohttp_socks import ProxyConnector
    except ImportError:
        raise TransportFailure(
            "connect", 'a SOCKS proxy needs aiohttp-socks: pip install "opchatgpts[socks]"'
        ) from None

    class SocksConnector(_WaitsForShutdown, ProxyConnector):  # type: ignore[misc,unused-ignore]
        pass

    # socks5h:// means "the proxy resolves the host name", as requests (PySocks) reads it.
    remote_dns = proxy.lower().startswith("socks5h://")
    if remote_dns:
        proxy = "socks5://" + proxy[len("socks5h://"):]
    connector = SocksConnector.from_url(proxy, limit=limit, rdns=remote_dns)
    if isinstance(connector, _WaitsForShutdown):
        connector._start_tracking()
    return connector  # type: ignore[no-any-return,unused-ignore]


def is_socks(proxy: Optional[str]) -> bool:
    """Whether ``proxy`` names a SOCKS proxy."""
    return bool(proxy) and str(proxy).lower().startswith("socks")


class AiohttpTransport:
    """Sends requests through a pooled ``aiohttp.ClientSession``, created on first use, and
    one more per SOCKS proxy (aiohttp reaches those through a connector of their own). They
    share one cookie jar."""

    def __init__(self, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._jar = _OriginCookieJar()
        self._sessions: Dict[Optional[str], aiohttp.ClientSession] = {}
        self._closed = False

    def session(self, proxy: Optional[str] = None) -> aiohttp.ClientSession:
        """The pooled session for direct and HTTP-proxy requests, or for one SOCKS proxy."""
        key = proxy if is_socks(proxy) else None
        session = self._sessions.get(key)
        if session is None or session.closed:
            if key is None:
                connector: aiohttp.BaseConnector = _Connector(self._max_connections)
            else:
                connector = _socks_connector(key, self._max_connections)
            session = self._sessions[key] = aiohttp.ClientSession(cookie_jar=self._jar, connector=connector)
        return session

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` ran."""
        return self._closed

    async def open(
        self, request: HTTPRequest, options: ConnectOptions, timeouts: Timeouts
    ) -> _AiohttpResponse:
        """Send ``request``; return once the response headers have arrived."""
        http_proxy = options.proxy if options.proxy and not is_socks(options.proxy) else None
        client_timeout = aiohttp.ClientTimeout(
            total=timeouts.total,
            # sock_connect bounds TCP and TLS but not a proxy's answer to CONNECT; only
            # connect does, and it also counts the wait for a free pooled connection.
            connect=timeouts.connect if options.proxy else None,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
        )
        try:
            response = await self.session(options.proxy).request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                proxy=http_proxy,
                ssl=options.verify if options.verify is not True else True,
                timeout=client_timeout,
                allow_redirects=False,
            )
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _send_failure(exc) from _scrub(exc)
        except EOFError as exc:  # a SOCKS proxy that hung up in its handshake
            detail = "the proxy closed the connection during its handshake (are its credentials right?)"
            raise TransportFailure("connect", detail) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("python_socks", "aiohttp_socks")):
                raise _socks_failure(exc) from exc
            raise
        return _AiohttpResponse(response)

    async def sleep(self, seconds: float) -> None:
        """Wait between retries."""
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        """Close the sessions and their pooled connections."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            connector = session.connector
            if not session.closed:
                await session.close()
            if isinstance(connector, _WaitsForShutdown):
                await connector.wait_shut(_SHUTDOWN_SECONDS)


def _send_failure(exc: BaseException) -> TransportFailure:
    """What went wrong before the headers, in the engine's terms. The one place that knows
    aiohttp's exceptions on the way in."""
    if isinstance(exc, asyncio.TimeoutError):
        connecting = isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ())) or (
            "connection timeout" in str(exc).lower()
        )
        return TransportFailure("connect_timeout" if connecting else "read_timeout", "timed out")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        detail = f"certificate verify failed: {exc.certificate_error}"
        return TransportFailure("tls", detail, certificate=True)
    if isinstance(exc, aiohttp.ClientSSLError):
        return TransportFailure("tls", explain(getattr(exc, "os_error", None) or exc))
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return TransportFailure("connect", f"the proxy refused the connection: {exc.status} {exc.message}")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return TransportFailure("connect", f"cannot reach the proxy: {explain(exc.os_error)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportFailure("connect", explain(exc.os_error))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportFailure("connect", "the server closed the connection without answering")
    if isinstance(exc, aiohttp.ClientResponseError):
        return TransportFailure("connect", f"the answer is not valid HTTP ({exc.message})")
    return TransportFailure("connect", explain(exc))


def _body_failure(exc: BaseException) -> TransportFailure:
    """What went wrong while the body was read."""
    if isinstance(exc, aiohttp.ClientPayloadError):
        cause = exc.__cause__
        if isinstance(cause, ContentEncodingError):
            return TransportFailure("decode", "its Content-Encoding does not decode")
        if isinstance(cause, TransferEncodingError):
            return TransportFailure("interrupted", "the chunked body broke off")
        if isinstance(cause, ContentLengthError):
            return TransportFailure("interrupted", "the body ended before its Content-Length")
        return TransportFailure("interrupted", "the body broke off")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportFailure("interrupted", "the server closed the connection")
    return TransportFailure("interrupted", explain(exc))


def _socks_failure(exc: BaseException) -> TransportFailure:
    name = type(exc).__name__
    if name == "ProxyTimeoutError":
        return TransportFailure("connect_timeout", "the SOCKS proxy did not answer in time")
    if name == "ProxyConnectionError":
        return TransportFailure("connect", f"cannot reach the SOCKS proxy: {explain(exc)}")
    return TransportFailure("connect", f"the SOCKS proxy refused: {exc}")


#: Request headers that carry a credential.
_SECRET_HEADERS = frozenset({"x-wp-nonce", "cookie", "authorization", "proxy-authorization"})


def _scrub(exc: BaseException) -> BaseException:
    """Take the credentials out of an aiohttp error before it is chained to ours.

    A ``ClientResponseError`` (a proxy's refusal, a garbled answer) keeps the request's
    headers, the nonce and ``Proxy-Authorization`` among them, and the proxy URL with its
    password; its repr shows them all.
    """
    info = getattr(exc, "request_info", None)
    if isinstance(info, aiohttp.RequestInfo):
        headers = CIMultiDict(
            (k, v) for k, v in info.headers.items() if k.lower() not in _SECRET_HEADERS
        )
        exc.request_info = aiohttp.RequestInfo(  # type: ignore[attr-defined]
            info.url.with_user(None),
            info.method,
            CIMultiDictProxy(headers),
            info.real_url.with_user(None),
        )
    return exc


_NO_URL = URL()


class _OriginCookieJar(AbstractCookieJar):
    """Cookies go back only to the origin (scheme, host and port) that set them.

    aiohttp's ``CookieJar`` follows RFC 6265, which ignores the port and sends a cookie
    without ``Secure`` from https to http: a redirect to another port, or to plain http, of
    the same host would carry the site's session cookies there.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jars: Dict[Tuple[str, str, Optional[int]], aiohttp.CookieJar] = {}

    @staticmethod
    def _origin(url: URL) -> Tuple[str, str, Optional[int]]:
        return (url.scheme, url.host or "", url.port)

    # What aiohttp 3.14 added to the abstract jar; older versions simply don't ask.
    @property
    def quote_cookie(self) -> bool:
        return True

    @property
    def unsafe(self) -> bool:
        return True

    @property
    def cookies(self) -> "MappingProxyType[Tuple[str, str], SimpleCookie]":
        merged: Dict[Tuple[str, str], SimpleCookie] = {}
        for jar in self._jars.values():
            merged.update(getattr(jar, "cookies", {}))
        return MappingProxyType(merged)

    @property
    def host_only_cookies(self) -> FrozenSet[Tuple[str, str, str]]:
        return frozenset().union(*(getattr(j, "host_only_cookies", ()) for j in self._jars.values()))

    def clear(self, predicate: Optional[ClearCookiePredicate] = None) -> None:
        for jar in self._jars.values():
            jar.clear(predicate)

    def clear_domain(self, domain: str) -> None:
        for jar in self._jars.values():
            jar.clear_domain(domain)

    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        jar = self._jars.get(self._origin(response_url))
        if jar is None:
            # ``unsafe`` lets sites addressed by IP (local installs) keep their cookies.
            jar = self._jars[self._origin(response_url)] = aiohttp.CookieJar(unsafe=True)
        jar.update_cookies(cookies, response_url)

    def filter_cookies(self, request_url: URL) -> "BaseCookie[str]":
        jar = self._jars.get(self._origin(request_url))
        return jar.filter_cookies(request_url) if jar is not None else SimpleCookie()

    def __iter__(self) -> "Iterator[Morsel[str]]":
        for jar in self._jars.values():
            yield from jar

    def __len__(self) -> int:
        return sum(len(jar) for jar in self._jars.values())


class AiohttpPool:
    """A client's aiohttp transports: one ``ClientSession`` per event loop it is used on.

    A session belongs to the loop it was made on. A blocking client uses the shared loop
    thread's; an async client the caller's own loop (or several, one ``asyncio.run`` after
    another). Each session is closed by ``close``/``aclose``, or when its loop shuts down
    its async generators (``asyncio.run`` does), whichever comes first.
    """

    def __init__(self, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._closers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Closer]" = (
            weakref.WeakKeyDictionary()
        )
        self.closed = False

    async def get(self) -> AiohttpTransport:
        """The running loop's transport, created on first use."""
        loop = asyncio.get_running_loop()
        closer = self._closers.get(loop)
        if closer is not None and not closer.transport.closed:
            return closer.transport
        if self.closed:
            raise ClientClosedError("this client is closed")
        closer = _Closer(AiohttpTransport(self._max_connections))
        await closer.start()
        with self._lock:
            self._closers[loop] = closer
        return closer.transport

    def open(
        self, request: HTTPRequest, options: ConnectOptions, timeouts: Timeouts
    ) -> Coroutine[Any, Any, _AiohttpResponse]:
        """Send ``request`` through the running loop's session.

        The running loop's transport's own coroutine, once it exists: a call that waits for
        a connection keeps no frame of this pool's (there may be thousands waiting).
        """
        closer = self._closers.get(asyncio.get_running_loop())
        if closer is not None and not closer.transport.closed:
            return closer.transport.open(request, options, timeouts)
        return self._open_new(request, options, timeouts)

    async def _open_new(
        self, request: HTTPRequest, options: ConnectOptions, timeouts: Timeouts
    ) -> _AiohttpResponse:
        return await (await self.get()).open(request, options, timeouts)

    async def sleep(self, seconds: float) -> None:
        """Wait between retries."""
        await asyncio.sleep(seconds)

    async def aclose_loop(self) -> None:
        """Close the running loop's session only; the next call opens a new one."""
        with self._lock:
            closer = self._closers.pop(asyncio.get_running_loop(), None)
        if closer is not None:
            await closer.aclose()

    async def aclose(self) -> None:
        """Close every session: the running loop's here, the others on their loops."""
        self.closed = True
        here = asyncio.get_running_loop()
        for loop, closer in self._take():
            if loop is here:
                await closer.aclose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(closer.aclose(), loop)
                await asyncio.wait([asyncio.wrap_future(future)], timeout=_CLOSE_ELSEWHERE_SECONDS)

    def close(self) -> None:
        """Close every session from a thread that runs no loop of them; wait (bounded)."""
        self.closed = True
        waits = []
        for loop, closer in self._take():
            if loop.is_closed() or not loop.is_running():
                continue  # the session went with its loop, or goes when it shuts down
            if _running_loop() is loop:
                loop.create_task(closer.aclose())  # cannot block the loop on itself
            else:
                waits.append(asyncio.run_coroutine_threadsafe(closer.aclose(), loop))
        concurrent.futures.wait(waits, timeout=_CLOSE_ELSEWHERE_SECONDS)

    def _take(self) -> "list[Tuple[asyncio.AbstractEventLoop, _Closer]]":
        with self._lock:
            items = list(self._closers.items())
            self._closers.clear()
        return items


#: How long closing waits for a session that lives on another thread's loop.
_CLOSE_ELSEWHERE_SECONDS = 5.0


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Closer:
    """Closes a transport with its loop.

    It holds an async generator parked at its first yield, which the loop closes in
    ``shutdown_asyncgens()``: the last moment at which the session can still be awaited
    closed on its own loop.
    """

    def __init__(self, transport: AiohttpTransport) -> None:
        self.transport = transport
        self._agen = self._hold()

    async def _hold(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.transport.aclose()

    async def start(self) -> None:
        await self._agen.__anext__()

    async def aclose(self) -> None:
        await self._agen.aclose()  # type: ignore[attr-defined]
