"""How answers go on the wire: whole bodies, event streams, pauses and TCP resets.

Every answer is sent chunked, as PHP behind nginx sends it; an event stream is
flushed one event at a time, its headers together with the first event.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from multidict import CIMultiDict

from .php import php_json
from .wordpress import (
    CRITICAL_ERROR,
    CRITICAL_ERROR_PAGE,
    EVENT_STREAM_TYPE,
    HTML_TYPE,
    JSON_TYPE,
    NOCACHE_HEADERS,
    is_json_request,
)

__all__ = [
    "Context",
    "Event",
    "StreamCounters",
    "error_event",
    "event_line",
    "pause",
    "reset",
    "send",
    "send_error_json",
    "send_fatal",
    "send_json",
    "stream",
]


@dataclass
class Event:
    """One event of a planned stream, and how long the model takes to produce it."""

    data: dict[str, Any]
    pause: float = 0.0

    @property
    def kind(self) -> str:
        """The event's ``type``: ``live``, ``end`` or ``error``."""
        return str(self.data["type"])

    @property
    def is_text(self) -> bool:
        """Whether this is a ``live`` event carrying answer text (no subtype, or ``content``)."""
        return self.kind == "live" and self.data.get("subtype", "content") == "content"


@dataclass
class Context:
    """What the checks before the plugin's code learned about a REST request."""

    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    """Headers every answer carries from here on (X-WP-Nonce, Set-Cookie, Link)."""
    new_token: str | None = None
    """The nonce to hand back as ``new_token`` (session generation, previous-tick nonce)."""


class StreamCounters(Protocol):
    """Where :func:`stream` counts how event streams ended."""

    disconnects: int
    completed_streams: int


def error_event(message: str) -> dict[str, Any]:
    """An ``error`` event's data."""
    return {"type": "error", "data": message}


def event_line(data: dict[str, Any]) -> bytes:
    """One event as the plugin frames it: ``data: <json>`` and a blank line."""
    return f"data: {php_json(data)}\n\n".encode("ascii")


async def send(
    request: web.Request, status: int, body: bytes, content_type: str, context: Context
) -> web.StreamResponse:
    """Send a whole answer, chunked like PHP behind nginx does."""
    response = web.StreamResponse(status=status, headers=context.headers)
    response.headers["Content-Type"] = content_type
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; nothing to answer
    return response


async def send_json(request: web.Request, status: int, answer: Any, context: Context) -> web.StreamResponse:
    """Send ``answer`` encoded like PHP's ``json_encode``."""
    return await send(request, status, php_json(answer).encode("ascii"), JSON_TYPE, context)


async def send_error_json(
    request: web.Request, status: int, message: str, context: Context
) -> web.StreamResponse:
    """Send the plugin's refusal ``{"success":false,"message":...}`` (and ``new_token``)."""
    answer: dict[str, Any] = {"success": False, "message": message}
    if context.new_token is not None:
        answer["new_token"] = context.new_token
    return await send_json(request, status, answer, context)


async def send_fatal(request: web.Request, context: Context) -> web.StreamResponse:
    """Send what WordPress answers when PHP dies of a fatal error: 500 "critical error".

    JSON for a JSON request (or one that accepts JSON), WordPress's HTML error page
    otherwise, as ``wp_die`` chooses.
    """
    context.headers.update(NOCACHE_HEADERS)
    if is_json_request(request):
        return await send_json(request, 500, CRITICAL_ERROR, context)
    return await send(request, 500, CRITICAL_ERROR_PAGE.encode("utf-8"), HTML_TYPE, context)


_MALFORMED_EVENT = b'data: {"type":"live","da\n\n'


async def stream(
    request: web.Request,
    plan: list[Event],
    context: Context,
    *,
    delay: float = 0.0,
    drop_after: int | None = None,
    malformed_after: int | None = None,
    counters: StreamCounters,
) -> web.StreamResponse:
    """Send ``plan`` as an event stream, flushing each event as it is produced.

    ``delay`` is slept before each event (on top of its own pause); after
    ``drop_after`` events the connection is reset, after ``malformed_after`` a
    truncated event ends the body. ``counters`` learns how the stream ended.
    """
    response = web.StreamResponse(status=200, headers=context.headers)
    response.headers["Content-Type"] = EVENT_STREAM_TYPE
    response.headers["Cache-Control"] = "no-cache"
    response.enable_chunked_encoding()
    try:
        # The trailing None is the point after the last event, where the
        # drop and malformed faults can still strike.
        for sent, event in enumerate([*plan, None]):
            if sent == drop_after:
                reset(request)
                return response
            if sent == malformed_after:
                await _write(request, response, _MALFORMED_EVENT)
                break
            if event is None:
                break
            if not await pause(request, delay + event.pause):
                raise ConnectionResetError("client went away")
            # Headers go out together with the first event, as PHP sends them.
            await _write(request, response, event_line(event.data))
        await response.write_eof()
    except ConnectionResetError:
        counters.disconnects += 1
        return response
    except asyncio.CancelledError:
        if _client_gone(request):
            counters.disconnects += 1
        raise
    counters.completed_streams += 1
    return response


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.Request, seconds: float) -> bool:
    """Sleep ``seconds``, watching the client; False if it went away meanwhile."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not _client_gone(request):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, 0.05))
    return False


async def _write(request: web.Request, response: web.StreamResponse, data: bytes) -> None:
    if not response.prepared:
        await response.prepare(request)
    await response.write(data)


def reset(request: web.Request) -> None:
    """Abort the connection with a TCP reset (no FIN, no chunked terminator)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger time 0 makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
