"""One chat call from messages to events, over any ``AsyncTransport``.

It opens the answer (getting a nonce when the site asks for one), then reads the body
through the protocol core, enforcing the read timeout between events (not merely between
bytes). Each HTTP exchange follows the call's rules (``_http.Call``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, AsyncGenerator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

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
from ._options import CallOptions
from ._protocol.discovery import ChatbotConfig, find_chatbots, looks_like_html, site_from_chatbot
from ._protocol.request import USER_AGENT, HTTPRequest, build_chat_request, new_chat_id, same_origin
from ._protocol.response import NONCE_ERROR_CODES, ResponseReader
from ._site import PUBLIC_URL, URL_ENV, Site
from ._transports.base import AsyncResponse, AsyncTransport

__all__ = ["stream_batches", "discover", "MAX_PAGE_BYTES"]

log = logging.getLogger("opchatgpts")

MAX_PAGE_BYTES = 8 * 1024 * 1024
FALLBACK_PAGE_PATHS = ("chatgpt-free-use/",)
START_SESSION_ROUTE = "/mwai/v1/start_session"
_GUEST_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


async def stream_batches(
    transport: AsyncTransport,
    credentials: CredentialStore,
    messages: Sequence[MessageLike],
    options: CallOptions,
) -> AsyncGenerator[List[Event], None]:
    """Yield the answer's events, in the batches in which they arrived."""
    if options.chat_id is None:
        options = dataclasses.replace(options, chat_id=new_chat_id())
    call = Call(transport, options)
    auth = credentials.for_site(options.site.rest_root)
    response = await _open_chat(call, messages, auth)
    _learn_header_nonce(auth, response, options.site)
    try:
        reader = ResponseReader(
            chat_id=options.chat_id, max_line_bytes=options.max_line_bytes, site=options.site.url
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


async def _open_chat(call: Call, messages: Sequence[MessageLike], auth: SiteAuth) -> AsyncResponse:
    """Open the answer, getting a nonce and resending once if the site asks for one."""
    options = call.options
    credentials = auth.credentials
    nonce = options.nonce or credentials.nonce or options.site.nonce
    try:
        return await call.open(_chat_request(messages, options, nonce, credentials))
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
        credentials = await auth.refresh(lambda: _obtain_credentials(call, refused), rejected=nonce)
    except OpchatgptsError as reason:
        if nonce and refused.code == "rest_cookie_invalid_nonce" and isinstance(reason, AuthenticationError):
            # WordPress checks any nonce it is sent, even where the plugin needs none (1.9.x):
            # a site that hands out no nonce may simply want none.
            log.info("%s refused the nonce %s and offers none; trying without", options.site.url, mask(nonce))
            auth.forget(nonce)
            try:
                return await call.open(_chat_request(messages, options, None, auth.credentials))
            except APIStatusError:
                raise reason from None
        if isinstance(reason, AuthenticationError):
            raise
        raise _no_nonce(options, refused, f"the nonce request failed: {reason}") from reason
    if credentials.nonce == nonce:
        raise _no_nonce(options, refused, "the site refused the nonce it had just issued")
    return await call.open(_chat_request(messages, options, credentials.nonce, credentials))


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
    messages: Sequence[MessageLike], options: CallOptions, nonce: Optional[str], credentials: Credentials
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
    )


async def _obtain_credentials(call: Call, refused: APIStatusError) -> Credentials:
    """Ask ``start_session`` for a nonce (2.4.4+), else read it from the chatbot page. The
    requests share the call's clock and retries."""
    site = call.options.site
    steps = []
    try:
        _, _, body = await call.fetch(HTTPRequest("POST", site.endpoint(START_SESSION_ROUTE), _GUEST_HEADERS))
        answer = _json_object(body)
        nonce = answer.get("restNonce")
        if answer.get("success") is True and isinstance(nonce, str) and nonce:
            session = answer.get("sessionId")
            log.debug("start_session gave nonce %s", mask(nonce))
            return Credentials(nonce, session if isinstance(session, str) and session else None)
        steps.append("start_session answered without a restNonce")
    except APIStatusError as exc:
        steps.append(f"start_session answered {exc}")
    for page_url in _nonce_pages(site):
        try:
            _, _, body = await call.fetch(
                HTTPRequest("GET", page_url, {"User-Agent": USER_AGENT, "Accept": "text/html"}),
                limit=MAX_PAGE_BYTES,
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
            return Credentials(bot.rest_nonce, bot.session_id)
        steps.append(f"the page {page_url} shows " + ("no chatbot" if bot is None else "no restNonce"))
    raise _no_nonce(call.options, refused, "; ".join(steps))


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


def _is_html(response: AsyncResponse) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return {}
    return value if isinstance(value, dict) else {}


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
