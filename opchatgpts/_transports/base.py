"""What the engine needs from an HTTP library, and the one place failures get their names.

A transport only moves bytes: it sends a request and reads the body, with the timeouts it
is given. When its library fails, it raises ``TransportFailure`` with a ``kind`` (what went
wrong, in the library's own terms mapped once per transport). Everything else (which typed
error that is, its message, deadlines, redirects, how much of a body to read) is the
engine's, written once for every transport.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol, Set, Union

from yarl import URL

from .._protocol.request import HTTPRequest

__all__ = [
    "ConnectOptions",
    "Timeouts",
    "AsyncResponse",
    "AsyncTransport",
    "TransportFailure",
    "FailureKind",
    "origin",
    "describe",
    "explain",
    "open_responses",
]


#: The responses open in the current blocking stream (``BlockingStream`` sets it; the
#: requests transport adds to it), so that closing the stream from another thread can abort
#: a read blocked in this one. Here, not with that transport, so that ``requests`` is only
#: imported by a client that uses it.
open_responses: "ContextVar[Optional[Set[Any]]]" = ContextVar("opchatgpts_open_responses", default=None)


@dataclass(frozen=True)
class ConnectOptions:
    """Per-call connection settings: where to go through, and how to trust the server."""

    proxy: Optional[str] = None
    verify: Union[bool, ssl.SSLContext] = True


@dataclass(frozen=True)
class Timeouts:
    """The limits of one send, in seconds (``None``: no limit), already cut to what is left
    of the call's total time.

    ``connect`` bounds TCP, TLS and a proxy's handshake; ``read`` the wait for the headers;
    ``total`` the whole send.
    """

    connect: Optional[float]
    read: Optional[float]
    total: Optional[float]


#: What went wrong, as the engine needs to know it:
#:
#: * ``connect``: the connection could not be made or broke before the answer;
#: * ``connect_timeout``: making the connection took longer than ``connect``;
#: * ``read_timeout``: no bytes for longer than the read limit;
#: * ``tls``: the certificate could not be verified, or the handshake failed;
#: * ``interrupted``: the connection broke while the body was being read;
#: * ``decode``: the body's ``Content-Encoding`` does not decode.
FailureKind = str


class TransportFailure(Exception):
    """A transport's library failed. ``detail`` is its description, fit for a message (no
    credentials); the library's exception is the ``__cause__``."""

    def __init__(self, kind: FailureKind, detail: str, *, certificate: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        #: A ``tls`` failure that is about the certificate (not the handshake itself).
        self.certificate = certificate


class AsyncResponse(Protocol):
    """A response whose headers have arrived. ``headers`` is case-insensitive."""

    status: int
    headers: Mapping[str, str]
    url: str

    async def read(self, timeout: Optional[float]) -> bytes:
        """The next bytes of the body, ``b""`` at its end. Waits at most ``timeout``.

        Raises ``TransportFailure`` (``read_timeout``, ``interrupted`` or ``decode``).
        """

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to its end."""


class AsyncTransport(Protocol):
    """Sends requests. Raises ``TransportFailure``, nothing else."""

    async def open(self, request: HTTPRequest, options: ConnectOptions, timeouts: Timeouts) -> AsyncResponse:
        """Send ``request`` and wait for the response headers."""

    async def sleep(self, seconds: float) -> None:
        """Wait between retries, the transport's way."""


_USERINFO = re.compile(r"(?<=//)[^/@\s'\"]*@")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, without any user or password, for messages."""
    try:
        return str(URL(url).origin())
    except (TypeError, ValueError):
        return "the server"


def describe(exc: BaseException) -> str:
    """An HTTP library's exception as text for our messages, with URL credentials removed."""
    text = str(exc) or type(exc).__name__
    text = text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"
    return _USERINFO.sub("", text)


_ERRNO_TEXTS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed by the server",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "no route to the host",
    errno.ENETUNREACH: "the network is unreachable",
    errno.EADDRNOTAVAIL: "the address is not available",
}


def explain(exc: Optional[BaseException]) -> str:
    """A failure as a person would say it: "connection refused", not the library's words.

    Falls back to ``describe`` for anything it does not know.
    """
    if exc is None:
        return "the connection failed"
    if isinstance(exc, socket.gaierror):
        return "the host name could not be resolved"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO_TEXTS:
            return _ERRNO_TEXTS[exc.errno]
        for inner in exc.args:  # a multi-address connect failure wraps each attempt's error
            if isinstance(inner, OSError) and inner.errno in _ERRNO_TEXTS:
                return _ERRNO_TEXTS[inner.errno]
        if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
            return "connection refused"
        if isinstance(exc, ConnectionResetError):
            return "connection reset by the server"
    return describe(exc)
