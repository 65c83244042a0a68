"""Reading a chatbot page: the settings the plugin embeds for its browser client. No I/O.

A page renders each chatbot as
``<div class='mwai-chatbot-container' data-params='...' data-system='...' data-theme='...'>``
whose attributes are JSON, HTML-escaped. ``data-system`` holds what a client needs: botId,
customId, contextId, restUrl, restNonce, sessionId, stream. Every generation seen so far
uses this form; the attribute may be single- or double-quoted and escaped with ``&quot;``,
``&#34;`` or ``&#x22;``, which ``html.unescape`` all undoes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import urljoin, urlsplit

from .._exceptions import DiscoveryError
from .._site import Site
from .response import unescape_html

__all__ = ["ChatbotConfig", "find_chatbots", "looks_like_html", "site_from_chatbot"]

_CONTAINER = re.compile(
    r"<div\b[^>]*\bclass\s*=\s*(['\"])[^'\"]*\bmwai-chatbot-container\b[^'\"]*\1[^>]*>",
    re.IGNORECASE,
)
_ATTRIBUTE = re.compile(r"\bdata-(system|params)\s*=\s*(?:'([^']*)'|\"([^\"]*)\")", re.IGNORECASE)



@dataclass(frozen=True)
class ChatbotConfig:
    """One chatbot's settings, as its page prints them."""

    bot_id: Optional[str]
    custom_id: Optional[str]
    context_id: Optional[int]
    rest_url: Optional[str]
    rest_nonce: Optional[str]
    session_id: Optional[str]
    stream: bool
    max_message_length: Optional[int] = None
    system: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        nonce = "set" if self.rest_nonce else "none"
        return (
            f"ChatbotConfig(bot_id={self.bot_id!r}, custom_id={self.custom_id!r}, "
            f"context_id={self.context_id!r}, rest_url={self.rest_url!r}, nonce={nonce})"
        )


def looks_like_html(body: bytes, content_type: str = "") -> bool:
    """Whether a response is an HTML page."""
    if "html" in content_type.lower():
        return True
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<head" in head


def find_chatbots(page: str) -> List[ChatbotConfig]:
    """Every chatbot on the page, in page order."""
    bots = []
    for match in _CONTAINER.finditer(page):
        attributes: Dict[str, Any] = {}
        for name, single, double in _ATTRIBUTE.findall(match.group(0)):
            raw = unescape_html(single if single or not double else double)
            try:
                attributes[name.lower()] = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise DiscoveryError(f"the chatbot's data-{name} is not valid JSON") from exc
        system = attributes.get("system")
        if isinstance(system, dict):
            bots.append(_config(system, attributes.get("params")))
    return bots


def site_from_chatbot(bot: ChatbotConfig, page_url: str) -> Site:
    """The ``Site`` that talks to ``bot``, found on the page at ``page_url``."""
    parts = urlsplit(page_url)
    return Site(
        url=f"{parts.scheme}://{parts.netloc}",
        rest_url=urljoin(page_url, bot.rest_url) if bot.rest_url else None,
        bot_id=bot.bot_id if bot.bot_id else (None if bot.custom_id else "default"),
        custom_id=bot.custom_id,
        context_id=bot.context_id,
        session=bot.session_id or "N/A",
        referer=page_url,
        nonce=bot.rest_nonce,
        max_message_length=bot.max_message_length,
    )


def _config(system: Mapping[str, Any], params: Any) -> ChatbotConfig:
    session = _text(system.get("sessionId"))
    context = system.get("contextId")
    params = params if isinstance(params, dict) else {}
    limit = params.get("textInputMaxLength", system.get("textInputMaxLength"))
    return ChatbotConfig(
        bot_id=_text(system.get("botId")),
        custom_id=_text(system.get("customId")),
        context_id=int(context) if isinstance(context, (int, str)) and str(context).isdigit() else None,
        rest_url=_text(system.get("restUrl")),
        rest_nonce=_text(system.get("restNonce")),
        session_id=session if session and session != "N/A" else None,
        stream=system.get("stream") is not False,
        max_message_length=_positive_int(limit),
        system=dict(system),
        params=dict(params),
    )


def _positive_int(value: Any) -> Optional[int]:
    """A limit the page prints as a number or a numeric string; ``None`` for anything else."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _text(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return str(value)

