"""One chat call from messages to events, over any ``AsyncTransport``.

It sets up the answer under the retry policy (following redirects and mapping refusals to
typed errors), then reads the body through the protocol core, enforcing the read timeout
between events (not merely between bytes).
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, List, Mapping, Optional, Sequence, Union

from ._decoder import DEFAULT_MAX_LINE_BYTES
from ._exceptions import APIConnectionError, StreamTimeoutError
from ._models import Event, Message, Timeout
from ._request import HTTPRequest, Site, build_chat_request, new_chat_id, redirected_request
from ._response import MAX_ERROR_BODY_BYTES, ResponseReader, error_from_response
from ._retry import RetryPolicy
from ._transport import AsyncResponse, AsyncTransport, ConnectOptions

__all__ = ["CallOptions", "stream_batches"]

log = logging.getLogger("opchatgpts")

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class CallOptions:
    """Everything about one call except the messages."""

    site: Site
    chat_id: str = field(default_factory=new_chat_id)
    stream: bool = True
    timeout: Timeout = Timeout()
    retry: RetryPolicy = RetryPolicy()
    proxy: Optional[str] = None
    verify: Union[bool, ssl.SSLContext] = True
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    nonce: Optional[str] = None
    extra_body: Optional[Mapping[str, Any]] = None
    extra_headers: Optional[Mapping[str, str]] = None

    def __repr__(self) -> str:
        # Never show the nonce or proxy credentials.
        return f"CallOptions(site={self.site.url!r}, chat_id={self.chat_id!r}, stream={self.stream})"


async def stream_batches(
    transport: AsyncTransport, messages: Sequence[Message], options: CallOptions
) -> AsyncGenerator[List[Event], None]:
    """Yield the answer's events, in the batches in which they arrived."""
    request = build_chat_request(
        options.site,
        messages,
        chat_id=options.chat_id,
        stream=options.stream,
        nonce=options.nonce,
        extra_body=options.extra_body,
        extra_headers=options.extra_headers,
    )
    deadline = None
    if options.timeout.total is not None:
        deadline = time.monotonic() + options.timeout.total
    connect = ConnectOptions(options.timeout, deadline, options.proxy, options.verify)
    response = await _open_with_retries(transport, request, connect, options.retry)
    try:
        reader = ResponseReader(chat_id=options.chat_id, max_line_bytes=options.max_line_bytes)
        idle = options.timeout.read
        last_event = time.monotonic()
        while True:
            chunk = await response.next_chunk()
            if not chunk:
                events = reader.close()
                if events:
                    yield events
                break
            events = reader.feed(chunk)
            if events:
                yield events
                last_event = time.monotonic()
            elif idle is not None and time.monotonic() - last_event > idle:
                raise StreamTimeoutError(f"no event arrived for {idle:g}s")
            if reader.done:
                reader.close()  # raises the failure that ended the answer, if any
                await response.finish()
                break
    finally:
        await response.aclose()


async def _open_with_retries(
    transport: AsyncTransport, request: HTTPRequest, connect: ConnectOptions, policy: RetryPolicy
) -> AsyncResponse:
    async for attempt in policy.async_retrying(connect.deadline):
        with attempt:
            return await _open_once(transport, request, connect)
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


async def _open_once(
    transport: AsyncTransport, request: HTTPRequest, connect: ConnectOptions
) -> AsyncResponse:
    """One attempt: send, follow redirects, and return a 2xx response or raise its error."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await transport.open(request, connect)
        if 200 <= response.status < 300:
            return response
        body = await response.read_body(MAX_ERROR_BODY_BYTES)
        await response.aclose()
        location = response.headers.get("Location")
        if response.status in _REDIRECT_STATUSES and location:
            request = redirected_request(request, location)
            log.debug("following a %d redirect", response.status)
            continue
        raise error_from_response(response.status, response.headers, body, request.url)
    raise APIConnectionError(f"more than {MAX_REDIRECTS} redirects", url=request.url)
