"""One chat call from messages to events, over any ``AsyncTransport``.

It sets up the answer under the retry policy (following redirects and mapping refusals to
typed errors), then reads the body through the protocol core, enforcing the read timeout
between events (not merely between bytes).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any, AsyncGenerator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

from ._credentials import Credentials, CredentialStore, SiteAuth, mask
from ._exceptions import (
    APIStatusError,
    AuthenticationError,
    DiscoveryError,
    OpchatgptsError,
    QueryRejectedError,
    ResponseTooLargeError,
    StreamTimeoutError,
)
from ._models import Event, MessageLike
from ._options import CallOptions
from ._protocol.discovery import ChatbotConfig, find_chatbots, looks_like_html, site_from_chatbot
from ._protocol.request import (
    USER_AGENT,
    HTTPRequest,
    build_chat_request,
    new_chat_id,
    redirected_request,
    same_origin,
)
from ._protocol.response import (
    MAX_ERROR_BODY_BYTES,
    NONCE_ERROR_CODES,
    ResponseReader,
    error_from_response,
)
from ._protocol.retry import RetryPolicy
from ._site import Site
from ._transports.base import AsyncResponse, AsyncTransport, ConnectOptions

__all__ = ["stream_batches", "fetch", "discover", "MAX_PAGE_BYTES"]

log = logging.getLogger("opchatgpts")

MAX_REDIRECTS = 5
MAX_PAGE_BYTES = 8 * 1024 * 1024
FALLBACK_PAGE_PATHS = ("chatgpt-free-use/",)
START_SESSION_ROUTE = "/mwai/v1/start_session"
_GUEST_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


async def stream_batches(
    transport: AsyncTransport,
    credentials: CredentialStore,
    messages: Sequence[MessageLike],
    options: CallOptions,
) -> AsyncGenerator[List[Event], None]:
    """Yield the answer's events, in the batches in which they arrived."""
    if options.chat_id is None:
        options = dataclasses.replace(options, chat_id=new_chat_id())
    deadline = None
    if options.timeout.total is not None:
        deadline = time.monotonic() + options.timeout.total
    connect = ConnectOptions(options.timeout, deadline, options.proxy, options.verify)
    auth = credentials.for_site(options.site.rest_root)
    file_fields: Optional[Mapping[str, Any]] = None
    if options.files:
        from ._uploads import upload_files  # only calls with files need it

        file_fields = await upload_files(transport, auth, messages, options, connect)
    response = await _open_chat(transport, messages, options, connect, auth, file_fields)
    _learn_header_nonce(auth, response, options.site)
    try:
        reader = ResponseReader(
            chat_id=options.chat_id, max_line_bytes=options.max_line_bytes, site=options.site.url
        )
        idle = options.timeout.read
        last_event = time.monotonic()
        while True:
            chunk = await response.next_chunk()
            events = reader.feed(chunk) if chunk else reader.close()
            if reader.result is not None and reader.result.new_token:
                # Learnt before the caller sees the end: it may stop reading right there.
                auth.remember(nonce=reader.result.new_token)
            if events:
                yield events
                last_event = time.monotonic()
            elif chunk and idle is not None and time.monotonic() - last_event > idle:
                raise StreamTimeoutError(f"no event arrived for {idle:g}s")
            if not chunk:
                break
            if reader.done:
                reader.close()  # raises the failure that ended the answer, if any
                await response.finish()
                break
    except QueryRejectedError as exc:
        _learn_new_token(auth, exc)
        raise
    finally:
        await response.aclose()


async def _open_chat(
    transport: AsyncTransport,
    messages: Sequence[MessageLike],
    options: CallOptions,
    connect: ConnectOptions,
    auth: SiteAuth,
    file_fields: Optional[Mapping[str, Any]] = None,
) -> AsyncResponse:
    """Open the answer, getting a nonce and resending once if the site asks for one."""
    credentials = auth.credentials
    nonce = options.nonce or credentials.nonce or options.site.nonce
    try:
        return await _open_with_retries(
            transport,
            _chat_request(messages, options, nonce, credentials, file_fields),
            connect,
            options.retry,
        )
    except APIStatusError as exc:
        _learn_new_token(auth, exc)
        if not (isinstance(exc, AuthenticationError) and exc.code in NONCE_ERROR_CODES):
            raise
        refused = exc
    log.info("%s refused the nonce %s (%s); getting one", options.site.url, mask(nonce), refused.code)
    try:
        credentials = await auth.refresh(
            lambda: _obtain_credentials(transport, options, connect, refused), rejected=nonce
        )
    except AuthenticationError:
        raise
    except OpchatgptsError as reason:
        raise _no_nonce(options, refused, f"the nonce request failed: {reason}") from reason
    if credentials.nonce == nonce:
        raise _no_nonce(options, refused, "the site refused the nonce it had just issued")
    return await _open_with_retries(
        transport,
        _chat_request(messages, options, credentials.nonce, credentials, file_fields),
        connect,
        options.retry,
    )


def _chat_request(
    messages: Sequence[MessageLike],
    options: CallOptions,
    nonce: Optional[str],
    credentials: Credentials,
    file_fields: Optional[Mapping[str, Any]],
) -> HTTPRequest:
    return build_chat_request(
        options.site,
        messages,
        chat_id=options.chat_id or new_chat_id(),
        stream=options.stream,
        nonce=nonce,
        session=credentials.session_id,
        extra_body=options.extra_body,
        extra_headers=options.headers,
        file_fields=file_fields,
    )


async def _obtain_credentials(
    transport: AsyncTransport, options: CallOptions, connect: ConnectOptions, refused: APIStatusError
) -> Credentials:
    """Ask ``start_session`` for a nonce (2.4.4+), else read it from the chatbot page."""
    site = options.site
    steps = []
    try:
        status, _, body = await fetch(
            transport, HTTPRequest("POST", site.endpoint(START_SESSION_ROUTE), _GUEST_HEADERS),
            connect, options.retry,
        )
        answer = _json_object(body)
        nonce = answer.get("restNonce")
        if answer.get("success") is True and isinstance(nonce, str) and nonce:
            session = answer.get("sessionId")
            log.debug("start_session gave nonce %s", mask(nonce))
            session = session if isinstance(session, str) and session else None
            return Credentials(nonce, session, generation="session")
        steps.append("start_session answered without a restNonce")
    except APIStatusError as exc:
        steps.append(f"start_session answered {exc}")
    for page_url in _nonce_pages(site):
        try:
            status, headers, body = await fetch(
                transport,
                HTTPRequest("GET", page_url, {"User-Agent": USER_AGENT, "Accept": "text/html"}),
                connect, options.retry, limit=MAX_PAGE_BYTES,
            )
        except APIStatusError as exc:
            steps.append(f"the page {page_url} answered {exc}")
            continue
        except OpchatgptsError as exc:  # unreachable, too large...: try the next place
            steps.append(f"the page {page_url} failed: {exc}")
            continue
        bots = find_chatbots(body.decode("utf-8", "replace"))
        bot = next((b for b in bots if b.bot_id == site.bot_id), bots[0] if bots else None)
        if bot is not None and bot.rest_nonce:
            log.debug("the page %s gave nonce %s", page_url, mask(bot.rest_nonce))
            return Credentials(bot.rest_nonce, bot.session_id, generation="nonce")
        steps.append(f"the page {page_url} shows " + ("no chatbot" if bot is None else "no restNonce"))
    raise _no_nonce(options, refused, "; ".join(steps))


def _nonce_pages(site: Site) -> List[str]:
    """Where a 2.0-2.4.3 site may print its nonce: the chatbot page if the caller named it
    (``referer``), the home page, then the page path opchatgpts.net used, which sites set up
    after it (and the emulator) share."""
    root = site.url.rstrip("/") + "/"
    pages = [site.referer, root] + [urljoin(root, path) for path in FALLBACK_PAGE_PATHS]
    return list(dict.fromkeys(page for page in pages if page))


def _no_nonce(options: CallOptions, refused: APIStatusError, reason: str) -> AuthenticationError:
    return AuthenticationError(
        f"{options.site.url} requires a nonce ({refused.code}) and none could be obtained: {reason}",
        status_code=refused.status_code,
        code=refused.code,
        body=refused.body,
        headers=refused.headers,
        url=refused.url,
    )


def _learn_header_nonce(auth: SiteAuth, response: AsyncResponse, site: Site) -> None:
    """An answer to a nonce'd request names the current nonce in ``X-WP-Nonce``: the only
    way 2.0-2.4.3 rotate it (they send no ``new_token``)."""
    nonce = response.headers.get("X-WP-Nonce")
    if nonce and auth.credentials.nonce and same_origin(response.url, site.rest_root):
        auth.remember(nonce=nonce)


def _learn_new_token(auth: SiteAuth, exc: APIStatusError) -> None:
    """A JSON refusal may carry the site's current nonce as ``new_token`` (2.8.5+)."""
    token = exc.body.get("new_token") if isinstance(exc.body, dict) else None
    if isinstance(token, str) and token:
        auth.remember(nonce=token)


async def fetch(
    transport: AsyncTransport,
    request: HTTPRequest,
    connect: ConnectOptions,
    policy: RetryPolicy,
    limit: int = MAX_ERROR_BODY_BYTES,
) -> Tuple[int, Mapping[str, str], bytes]:
    """Send a small request and read its whole body (at most ``limit`` bytes)."""
    response = await _open_with_retries(transport, request, connect, policy)
    try:
        chunks: List[bytes] = []
        size = 0
        while True:
            chunk = await response.next_chunk()
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError(f"{request.url} sent more than {limit} bytes")
        return response.status, response.headers, b"".join(chunks)
    finally:
        await response.aclose()


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return {}
    return value if isinstance(value, dict) else {}


async def _open_with_retries(
    transport: AsyncTransport, request: HTTPRequest, connect: ConnectOptions, policy: RetryPolicy
) -> AsyncResponse:
    async for attempt in policy.async_retrying(connect.deadline, sleep=transport.sleep):
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
            try:
                request = redirected_request(request, location)
            except ValueError as exc:
                raise APIStatusError(
                    str(exc), status_code=response.status, headers=response.headers, url=request.url
                ) from None
            log.debug("following a %d redirect", response.status)
            continue
        raise error_from_response(response.status, response.headers, body, request.url)
    # A redirect loop is the site's answer, not a connection problem: never retried.
    raise APIStatusError(
        f"more than {MAX_REDIRECTS} redirects", status_code=response.status,
        headers=response.headers, url=request.url,
    )


async def discover(
    transport: AsyncTransport,
    credentials: CredentialStore,
    page_url: str,
    options: CallOptions,
    bot_id: Optional[str] = None,
) -> Tuple[Site, ChatbotConfig]:
    """Read the chatbot settings a page prints: the site to talk to, and the raw config.

    The page's nonce and session, if it shows them, are kept in ``credentials``.
    """
    parts = urlsplit(page_url) if isinstance(page_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"page_url must be an http(s) URL, got {page_url!r}")
    deadline = None
    if options.timeout.total is not None:
        deadline = time.monotonic() + options.timeout.total
    connect = ConnectOptions(options.timeout, deadline, options.proxy, options.verify)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"}
    _, response_headers, body = await fetch(
        transport, HTTPRequest("GET", page_url, headers), connect, options.retry, limit=MAX_PAGE_BYTES
    )
    content_type = response_headers.get("Content-Type", "")
    if not looks_like_html(body, content_type):
        raise DiscoveryError(f"{page_url} is not an HTML page (Content-Type: {content_type or 'none'})")
    bots = find_chatbots(body.decode("utf-8", "replace"))
    if not bots:
        raise DiscoveryError(f"{page_url} shows no AI Engine chatbot (no mwai-chatbot-container)")
    bot: Optional[ChatbotConfig] = bots[0]
    if bot_id:
        bot = next((b for b in bots if bot_id in (b.bot_id, b.custom_id)), None)
    if bot is None:
        found = ", ".join(repr(b.bot_id or b.custom_id) for b in bots)
        raise DiscoveryError(f"{page_url} has no chatbot {bot_id!r}; it has {found}")
    site = site_from_chatbot(bot, page_url)
    credentials.for_site(site.rest_root).remember(nonce=bot.rest_nonce, session_id=bot.session_id)
    return site, bot
