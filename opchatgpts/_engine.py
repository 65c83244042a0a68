"""One chat call from messages to events, over any ``AsyncTransport``.

It opens the answer (getting a nonce when the site asks for one), then reads the body
through the protocol core, enforcing the read timeout between events (not merely between
bytes). Each HTTP exchange follows the call's rules (``_http.Call``).
"""

from __future__ import annotations

import logging
from typing import Any, AsyncGenerator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ._credentials import Credentials, CredentialStore, SiteAuth, mask
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    DiscoveryError,
    NotFoundError,
    OpchatgptsError,
    QueryRejectedError,
    RemoteProtocolError,
    StreamError,
)
from ._http import Call
from ._models import Event, MessageLike
from ._nonces import MAX_PAGE_BYTES, no_nonce, obtain_credentials
from ._options import CallOptions
from ._protocol.discovery import ChatbotConfig, find_chatbots, looks_like_html, site_from_chatbot
from ._protocol.request import USER_AGENT, HTTPRequest, build_chat_request, new_chat_id, same_origin
from ._protocol.response import NONCE_ERROR_CODES, ResponseReader
from ._site import PUBLIC_URL, URL_ENV, Site
from ._transports.base import AsyncResponse, AsyncTransport
from ._uploads import upload_files

__all__ = ["stream_batches", "discover", "MAX_PAGE_BYTES"]

log = logging.getLogger("opchatgpts")



async def stream_batches(
    transport: AsyncTransport,
    credentials: CredentialStore,
    messages: Sequence[MessageLike],
    options: CallOptions,
) -> AsyncGenerator[List[Event], None]:
    """Yield the answer's events, in the batches in which they arrived."""
    chat_id = options.chat_id or new_chat_id()
    call = Call(transport, options)
    auth = credentials.for_site(options.site.rest_root)
    file_fields: Optional[Mapping[str, Any]] = None
    if options.files:
        file_fields = await upload_files(call, auth, messages)
    response = await _open_chat(call, messages, auth, chat_id, file_fields)
    _learn_header_nonce(auth, response, options.site)
    try:
        reader = ResponseReader(
            chat_id=chat_id, max_line_bytes=options.max_line_bytes, site=options.site.url
        )
        idle_until = call.idle_until()
        while True:
            chunk = await call.read(response, idle_until)
            events = reader.feed(chunk) if chunk else reader.close()
            if reader.result is not None and reader.result.new_token:
                # Learnt before the caller sees the end: it may stop reading right there.
                auth.remember(nonce=reader.result.new_token)
            if events:
                yield events
                idle_until = call.idle_until()
            if not chunk:
                break
            if reader.done:
                reader.close()  # raises the failure that ended the answer, if any
                await call.finish(response)
                break
    except QueryRejectedError as exc:
        _learn_new_token(auth, exc)
        exc.url = exc.url or response.url
        raise
    except StreamError as exc:
        exc.url = exc.url or response.url
        if isinstance(exc, RemoteProtocolError) and not reader.answer_started and _is_html(response):
            hint = _page_hint(options.site, f"{response.url} answered an HTML page")
            exc.args = (f"{exc}; {hint}",)
        raise
    finally:
        await response.aclose()


async def _open_chat(
    call: Call,
    messages: Sequence[MessageLike],
    auth: SiteAuth,
    chat_id: str,
    file_fields: Optional[Mapping[str, Any]] = None,
) -> AsyncResponse:
    """Open the answer, getting a nonce and resending once if the site asks for one."""
    options = call.options
    credentials = auth.credentials
    nonce = options.nonce or credentials.nonce or options.site.nonce
    try:
        return await call.open(_chat_request(messages, options, chat_id, nonce, credentials, file_fields))
    except APIStatusError as exc:
        _learn_new_token(auth, exc)
        if not (isinstance(exc, AuthenticationError) and exc.code in NONCE_ERROR_CODES):
            _add_hint(exc, options.site)
            raise
        refused = exc
    except APIConnectionError as exc:
        _add_hint(exc, options.site)
        raise
    if nonce:
        site, code = options.site.url, refused.code
        log.info("%s refused the nonce %s (%s); getting a new one", site, mask(nonce), code)
    else:  # the first call to a site that wants one: nothing to notice
        log.debug("%s wants a nonce (%s); getting one", options.site.url, refused.code)
    try:
        credentials = await auth.refresh(lambda: obtain_credentials(call, refused), rejected=nonce)
    except OpchatgptsError as reason:
        if nonce and refused.code == "rest_cookie_invalid_nonce" and isinstance(reason, AuthenticationError):
            # WordPress checks any nonce it is sent, even where the plugin needs none (1.9.x):
            # a site that hands out no nonce may simply want none.
            log.info("%s refused the nonce %s and offers none; trying without", options.site.url, mask(nonce))
            auth.forget(nonce)
            try:
                request = _chat_request(messages, options, chat_id, None, auth.credentials, file_fields)
                return await call.open(request)
            except APIStatusError:
                raise reason from None
        if isinstance(reason, AuthenticationError):
            raise
        raise no_nonce(options, refused, f"the nonce request failed: {reason}") from reason
    if credentials.nonce == nonce:
        raise no_nonce(options, refused, "the site refused the nonce it had just issued")
    request = _chat_request(messages, options, chat_id, credentials.nonce, credentials, file_fields)
    return await call.open(request)


def _add_hint(error: OpchatgptsError, site: Site) -> None:
    """Add to ``error`` a word on how to fix it, where the cause is a common mistake."""
    hint = ""
    if isinstance(error, APIConnectionError) and site.url.rstrip("/") == PUBLIC_URL:
        hint = (
            f"the public {PUBLIC_URL} site is gone: pass url= (or set ${URL_ENV}) to name an "
            "AI Engine site"
        )
    elif isinstance(error, NotFoundError):
        hint = _page_hint(site, f"no AI Engine chat route at {error.url}")
    if hint:
        error.message = f"{error.message}; {hint}"  # type: ignore[attr-defined]
        error.args = (error.message,)  # type: ignore[attr-defined]


def _page_hint(site: Site, what: str) -> str:
    """Where the REST route is not: if the given site URL has a path, it is likely a page."""
    if urlsplit(site.url).path.strip("/"):
        return (
            f"{what}. {site.url} looks like a page, not a site root: read the bot's settings "
            "from it with from_page() (--page on the command line)"
        )
    return f"{what}. Is AI Engine installed there? Its chatbot page (from_page) names the REST root"


def _chat_request(
    messages: Sequence[MessageLike],
    options: CallOptions,
    chat_id: str,
    nonce: Optional[str],
    credentials: Credentials,
    file_fields: Optional[Mapping[str, Any]],
) -> HTTPRequest:
    return build_chat_request(
        options.site,
        messages,
        chat_id=chat_id,
        stream=options.stream,
        nonce=nonce,
        session=credentials.session_id,
        extra_body=options.extra_body,
        extra_headers=options.headers,
        file_fields=file_fields,
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


def _is_html(response: AsyncResponse) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


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
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"}
    log.debug("reading the chatbot page %s", page_url)
    call = Call(transport, options)
    _, response_headers, body = await call.fetch(HTTPRequest("GET", page_url, headers), limit=MAX_PAGE_BYTES)
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
    log.debug("the page shows bot %r at %s", bot.bot_id or bot.custom_id, site.rest_root)
    return site, bot
