"""Getting a nonce: from ``start_session`` (2.4.4+), else from a chatbot page (2.0-2.4.3).

Both the chat request and an upload turn to it when the site refuses to let a guest in
(PROTOCOL.md section 3). Its requests are part of the call that needs the nonce: they share
its clock and its retries.
"""

from __future__ import annotations

import json
import logging
from typing import Any, List, Mapping
from urllib.parse import urljoin

from ._credentials import Credentials, mask
from ._exceptions import APIStatusError, AuthenticationError, OpchatgptsError
from ._http import Call
from ._options import CallOptions
from ._protocol.discovery import find_chatbots
from ._protocol.request import USER_AGENT, HTTPRequest
from ._site import Site

__all__ = [
    "obtain_credentials",
    "nonce_pages",
    "no_nonce",
    "json_object",
    "START_SESSION_ROUTE",
    "GUEST_HEADERS",
    "MAX_PAGE_BYTES",
]

log = logging.getLogger("opchatgpts")

MAX_PAGE_BYTES = 8 * 1024 * 1024
FALLBACK_PAGE_PATHS = ("chatgpt-free-use/",)
START_SESSION_ROUTE = "/mwai/v1/start_session"
GUEST_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


async def obtain_credentials(call: Call, refused: APIStatusError) -> Credentials:
    """Ask ``start_session`` for a nonce (2.4.4+), else read it from the chatbot page. The
    requests share the call's clock and retries."""
    site = call.options.site
    steps = []
    try:
        _, _, body = await call.fetch(HTTPRequest("POST", site.endpoint(START_SESSION_ROUTE), GUEST_HEADERS))
        answer = json_object(body)
        nonce = answer.get("restNonce")
        if answer.get("success") is True and isinstance(nonce, str) and nonce:
            session = answer.get("sessionId")
            log.debug("start_session gave nonce %s", mask(nonce))
            session = session if isinstance(session, str) and session else None
            return Credentials(nonce, session, generation="session")
        steps.append("start_session answered without a restNonce")
    except APIStatusError as exc:
        steps.append(f"start_session answered {exc}")
    for page_url in nonce_pages(site):
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
            return Credentials(bot.rest_nonce, bot.session_id, generation="nonce")
        steps.append(f"the page {page_url} shows " + ("no chatbot" if bot is None else "no restNonce"))
    raise no_nonce(call.options, refused, "; ".join(steps))


def nonce_pages(site: Site) -> List[str]:
    """Where a 2.0-2.4.3 site may print its nonce: the chatbot page if the caller named it
    (``referer``), the home page, then the page path opchatgpts.net used, which sites set up
    after it (and the emulator) share."""
    root = site.url.rstrip("/") + "/"
    pages = [site.referer, root] + [urljoin(root, path) for path in FALLBACK_PAGE_PATHS]
    return list(dict.fromkeys(page for page in pages if page))


def no_nonce(options: CallOptions, refused: APIStatusError, reason: str) -> AuthenticationError:
    return AuthenticationError(
        f"{options.site.url} requires a nonce ({refused.code}) and none could be obtained: {reason}",
        status_code=refused.status_code,
        code=refused.code,
        body=refused.body,
        headers=refused.headers,
        url=refused.url,
    )


def json_object(body: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return {}
    return value if isinstance(value, dict) else {}
