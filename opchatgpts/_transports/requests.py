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
from contextvars import ContextVar
from typing import Any, Dict, Iterator, Mapping, Optional, Set, Union
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .._exceptions import (
    APIConnectionError,
    APITimeoutError,
    RemoteProtocolError,
    StreamInterruptedError,
    StreamTimeoutError,
    TLSVerificationError,
)
from .._protocol.request import HTTPRequest
from .base import ConnectOptions, describe, origin

__all__ = ["RequestsTransport", "open_responses"]

#: The responses open in the current blocking stream (``BlockingStream`` sets it), so that
#: closing the stream from another thread can abort a read blocked in this one.
open_responses: "ContextVar[Optional[Set[_RequestsResponse]]]" = ContextVar(
    "opchatgpts_open_responses", default=None
)

_CHUNK_BYTES = 64 * 1024
_FINISH_SECONDS = 1.0
_FINISH_MAX_BYTES = 64 * 1024
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
    def __init__(self, response: requests.Response, options: ConnectOptions) -> None:
        self._response = response
        self._options = options
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.url = response.url
        self._chunks: Iterator[bytes] = response.iter_content(chunk_size=_CHUNK_BYTES)
        self._open = open_responses.get()
        if self._open is not None:
            self._open.add(self)

    def _socket(self) -> Any:
        """The socket this body is read from; ``None`` once the body is done (or in mocks)."""
        raw = self._response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is None:
            # An answer that ends its connection (``Connection: close``) took the socket
            # away from the connection: it lives on only in http.client's file object.
            fp = getattr(getattr(raw, "_fp", None), "fp", None)
            sock = getattr(getattr(fp, "raw", None), "_sock", None)
        return sock

    def _set_read_timeout(self, seconds: Optional[float]) -> None:
        """Set the socket's timeout for the next reads."""
        sock = self._socket()
        if sock is not None:
            sock.settimeout(seconds)

    async def next_chunk(self) -> bytes:
        deadline = self._options.deadline
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StreamTimeoutError("the total timeout ran out during the answer")
            read = self._options.timeout.read
            self._set_read_timeout(remaining if read is None else min(read, remaining))
        try:
            return next(self._chunks, b"")
        except _FAILURES as exc:
            if _is_timeout(exc):
                raise StreamTimeoutError("no data arrived within the timeout") from exc
            if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
                raise RemoteProtocolError(f"the answer cannot be decoded: {_describe(exc)}") from exc
            raise StreamInterruptedError(
                f"the connection broke during the answer: {_describe(exc)}"
            ) from exc

    async def read_body(self, limit: int) -> bytes:
        body = b""
        try:
            for chunk in self._chunks:
                body += chunk
                if len(body) >= limit:
                    break
        except _FAILURES:
            pass
        return body[:limit]

    async def finish(self) -> None:
        # Nothing follows the end event but the end of the body, normally already here.
        self._set_read_timeout(_FINISH_SECONDS)
        size = 0
        try:
            for chunk in self._chunks:
                size += len(chunk)
                if size > _FINISH_MAX_BYTES:
                    break
        except _FAILURES:
            pass

    async def aclose(self) -> None:
        # Closes the connection unless the body was read to its end, which already put the
        # connection back in the pool.
        self._response.close()
        if self._open is not None:
            self._open.discard(self)

    def abort(self) -> None:
        """Make a read blocked in another thread return at once. Safe from any thread: it
        shuts the socket down, which, unlike closing it, cannot hit a reused descriptor."""
        sock = self._socket()
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class RequestsTransport:
    """Sends requests with ``requests``, through one ``Session`` per site (origin).

    Each session pools its connections and keeps the site's cookies. Sessions are shared by
    every thread; ``trust_env`` is off, as on aiohttp (no proxy or CA bundle from the
    environment).
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

    async def open(self, request: HTTPRequest, options: ConnectOptions) -> _RequestsResponse:
        """Send ``request``; return once the response headers have arrived."""
        connect, read = options.timeout.connect, options.timeout.read
        if options.deadline is not None:
            remaining = options.deadline - time.monotonic()
            if remaining <= 0:
                raise APITimeoutError("the total timeout ran out", url=request.url)
            connect = remaining if connect is None else min(connect, remaining)
            read = remaining if read is None else min(read, remaining)
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
            where = origin(request.url)
            if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
                raise TLSVerificationError(
                    f"TLS with {where} failed: {_describe(exc)}", url=request.url
                ) from exc
            if _is_timeout(exc):
                raise APITimeoutError(
                    f"no response from {where} within the timeout", url=request.url
                ) from exc
            raise APIConnectionError(f"cannot reach {where}: {_describe(exc)}", url=request.url) from exc
        return _RequestsResponse(response, options)

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


def _describe(exc: BaseException) -> str:
    # requests wraps urllib3's MaxRetryError, whose reason is the failure itself.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return describe(reason if isinstance(reason, BaseException) else exc)


_instances: "weakref.WeakSet[RequestsTransport]" = weakref.WeakSet()


def _forget_after_fork() -> None:
    for transport in list(_instances):
        transport._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
