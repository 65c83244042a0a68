"""Where a chatbot lives: the site, its REST root and the bot's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

__all__ = ["Site", "SUBMIT_ROUTE"]

#: The chat route, below the REST root.
SUBMIT_ROUTE = "/mwai-ui/v1/chats/submit"


@dataclass(frozen=True)
class Site:
    """Where the chatbot lives and which bot to talk to.

    Attributes:
        url: the site root, e.g. ``https://example.com``.
        rest_url: the WordPress REST root; ``{url}/wp-json`` unless the site prints another
            (sub-directory installs, ``?rest_route=`` sites).
        bot_id: the chatbot id (``"default"`` on most sites).
        custom_id: the id of a chatbot defined inline in a shortcode, if any.
        context_id: the WordPress post id of the page hosting the bot.
        session: the session id sent in the body (``"N/A"`` on old sites).
        referer: the chatbot page, sent as ``Referer`` (and its origin as ``Origin``).
    """

    url: str
    rest_url: Optional[str] = None
    bot_id: Optional[str] = "default"
    custom_id: Optional[str] = None
    context_id: Optional[int] = None
    session: Optional[str] = "N/A"
    referer: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("url", "rest_url", "referer"):
            value = getattr(self, name)
            if value is None and name != "url":
                continue
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string, not {type(value).__name__}")
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
        if not (self.bot_id or self.custom_id):
            raise ValueError("a site needs a bot_id or a custom_id")

    @property
    def rest_root(self) -> str:
        """The REST root with no trailing slash."""
        root = self.rest_url or self.url.rstrip("/") + "/wp-json"
        return root.rstrip("/")

    def endpoint(self, route: str) -> str:
        """The URL of a REST route such as ``/mwai/v1/start_session``."""
        return self.rest_root + route

    @property
    def submit_url(self) -> str:
        """The URL of ``chats/submit``."""
        return self.endpoint(SUBMIT_ROUTE)
