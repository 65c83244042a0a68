"""The blocking transport on requests: a client's pooled ``requests.Session``, one per site.

Its methods are ``async def`` only to fit ``AsyncTransport``: they do blocking I/O and never
suspend, so ``_blocking.run_blocking`` can drive the engine over it with no event loop and
no thread (see ``_blocking.py``).

Timeouts mean what they mean on aiohttp: ``connect``, and ``read`` as the longest silence
between two reads of the socket. The total deadline caps the socket timeout before each
read and is checked between reads. Bodies are read with ``iter_content``, one chunk of the
chunked encoding at a time, as the plugin flushes them; a body sent without the chunked
encoding arrives in 64 KiB pieces, which is how urllib3 reads such a body.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Dict, Iterator, Mapping, Optional, Union
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .._protocol.request import HTTPRequest
from .base import ConnectOptions, Timeouts, TransportFailure, describe, explain, open_responses

__all__ = ["RequestsTransport"]


_CHUNK_BYTES = 64 * 1024
#: Sessions kept at once; the least recently used site's session is closed beyond this.
MAX_SITES = 32

_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)


class _Adapter(HTTPAdapter):
    """``HTTPAdapter`` that also takes an ``ssl.SSLContext`` as ``verify``.

    The context goes into the connection pool's key, so each context gets its own pool,
    and requests' CA bundle is never loaded into it: the caller's context decides.
    """

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        if not isinstance(verify, ssl.SSLContext):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
        context: Dict[str, Any] = {"ssl_context": verify, "cert_reqs": verify.verify_mode}
        return host_params, {**pool_kwargs, **context}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if not isinstance(verify, ssl.SSLContext):
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        elif url.lower().startswith("https:") and conn.conn_kw.get("ssl_context") is not verify:
            # requests before 2.32.2 never calls the method above: never ignore the context.
            raise TypeError("verify=<ssl.SSLContext> with transport='requests' needs requests>=2.32.2")


class _RequestsResponse:
    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers  # case-insensitive
        self.url = response.url
        self._chunks: Iterator[bytes] = response.iter_content(chunk_size=_CHUNK_BYTES)
        self._open = open_responses.get()
        if self._open is not None:
            self._open.add(self)

    def _socket(self) -> Any:
        """The socket this body is read from; ``None`` once the body is done (or in mocks).

        urllib3 has no public way to change the timeout of the next read, which a deadline
        needs: this finds the socket the way http.client holds it.
        """
        raw = self._response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is None:
            # An answer that ends its connection (``Connection: close``) took the socket
            # away from the connection: it lives on only in http.client's file object.
            fp = getattr(getattr(raw, "_fp", None), "fp", None)
            sock = getattr(getattr(fp, "raw", None), "_sock", None)
        return sock

    async def read(self, timeout: Optional[float]) -> bytes:
        sock = self._socket()
        if sock is not None:
            sock.settimeout(timeout)
        try:
            return next(self._chunks, b"")
        except _FAILURES as exc:
            raise _body_failure(exc) from exc

    async def aclose(self) -> None:
        # Closes the connection unless the body was read to its end, which already put the
        # connection back in the pool.
        self._response.close()
        if self._open is not None:
            self._open.discard(self)

    def abort(self) -> None:
        """Make a read blocked in another thread return at once. Safe from any thread: it
        shuts the socket down, which, unlike closing it, cannot hit a reused descriptor."""
        try:
            self._response.raw.shutdown()
        except (ValueError, RuntimeError, OSError, AttributeError):
            pass  # the body is done, or the connection is already back in the pool


class RequestsTransport:
    """Sends requests with ``requests``, through one ``Session`` per site (origin).

    Each session pools its connections and keeps the site's cookies. Sessions are shared by
    every thread. Their ``trust_env`` is off: the engine reads the environment (proxies, CA
    bundles) once for both transports.
    """

    def __init__(self, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._sessions: "OrderedDict[str, requests.Session]" = OrderedDict()
        _instances.add(self)

    def session(self, url: str) -> requests.Session:
        """The session of ``url``'s site, created on first use."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = f"{parts.scheme}://{parts.hostname}:{port}"
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
                return session
            session = self._sessions[key] = requests.Session()
            session.trust_env = False
            adapter = _Adapter(pool_maxsize=self._max_connections)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            if len(self._sessions) > MAX_SITES:
                self._sessions.popitem(last=False)[1].close()
            return session

    async def open(
        self, request: HTTPRequest, options: ConnectOptions, timeouts: Timeouts
    ) -> _RequestsResponse:
        """Send ``request``; return once the response headers have arrived."""
        # requests knows no overall limit: the engine cut both to what is left of it.
        connect, read = timeouts.connect, timeouts.read
        if timeouts.total is not None:
            connect = timeouts.total if connect is None else min(connect, timeouts.total)
            read = timeouts.total if read is None else min(read, timeouts.total)
        verify: Union[bool, ssl.SSLContext] = options.verify
        try:
            response = self.session(request.url).request(
                request.method,
                request.url,
                data=request.body,
                headers=dict(request.headers),
                timeout=(connect, read),
                allow_redirects=False,
                stream=True,
                verify=verify,  # type: ignore[arg-type]  # _Adapter takes an SSLContext too
                proxies={"http": options.proxy, "https": options.proxy} if options.proxy else {},
            )
        except _FAILURES as exc:
            raise _send_failure(exc) from exc
        return _RequestsResponse(response)

    async def sleep(self, seconds: float) -> None:
        """Wait between retries: ``time.sleep``, in the calling thread."""
        time.sleep(seconds)

    def close(self) -> None:
        """Close every session and its pooled connections."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()

    def _forget_after_fork(self) -> None:
        # A forked child must not share the parent's connections: close its copies.
        self._lock = threading.Lock()
        sessions, self._sessions = self._sessions, OrderedDict()
        for session in sessions.values():
            session.close()


def _is_timeout(exc: BaseException) -> bool:
    """Whether a requests or urllib3 failure was a timeout (requests wraps a read timeout
    met mid-body in a plain ``ConnectionError``)."""
    return isinstance(exc, _TIMEOUTS) or any(isinstance(arg, _TIMEOUTS) for arg in exc.args)


def _reason(exc: BaseException) -> BaseException:
    """What really failed: requests wraps urllib3's errors, which wrap the socket's (as a
    ``reason`` or among their arguments)."""
    for _ in range(6):
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in exc.args if isinstance(arg, BaseException)), None)
        if inner is None or inner is exc:
            return exc
        exc = inner
    return exc


def _send_failure(exc: BaseException) -> TransportFailure:
    """What went wrong before the headers, in the engine's terms. The one place that knows
    requests' and urllib3's exceptions on the way in."""
    if isinstance(exc, requests.exceptions.InvalidSchema) and "SOCKS" in str(exc):
        return TransportFailure("connect", 'a SOCKS proxy needs PySocks: pip install "opchatgpts[socks]"')
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        reason = _reason(exc)
        certificate = isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY" in str(exc)
        detail = explain(reason) if isinstance(reason, ssl.SSLError) else describe(reason)
        return TransportFailure("tls", detail, certificate=certificate)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransportFailure("connect_timeout", "timed out")
    if _is_timeout(exc):
        return TransportFailure("read_timeout", "timed out")
    reason = _reason(exc)
    if isinstance(exc, requests.exceptions.ProxyError) or type(reason).__name__ == "SOCKSProxyError":
        return TransportFailure("connect", f"the proxy failed: {explain(_reason(reason))}")
    if isinstance(reason, (http.client.RemoteDisconnected, urllib3.exceptions.ProtocolError)):
        return TransportFailure("connect", "the server closed the connection without answering")
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return TransportFailure("connect", explain(reason.__cause__ or reason.__context__ or reason))
    return TransportFailure("connect", explain(reason))


def _body_failure(exc: BaseException) -> TransportFailure:
    """What went wrong while the body was read."""
    if _is_timeout(exc):
        return TransportFailure("read_timeout", "no data")
    if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
        return TransportFailure("decode", "its Content-Encoding does not decode")
    if "IncompleteRead" in repr(exc):
        return TransportFailure("interrupted", "the body ended before its Content-Length")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        reason = _reason(exc)
        if isinstance(reason, (ConnectionResetError, BrokenPipeError)):
            return TransportFailure("interrupted", explain(reason))
        return TransportFailure("interrupted", "the chunked body broke off")
    return TransportFailure("interrupted", explain(_reason(exc)))


_instances: "weakref.WeakSet[RequestsTransport]" = weakref.WeakSet()


def _forget_after_fork() -> None:
    for transport in list(_instances):
        transport._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
