"""Where a chatbot lives: the site, its REST root and the bot's settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional, Union
from urllib.parse import urlsplit

__all__ = ["Site", "SiteLike", "SITE_PRESETS", "SUBMIT_ROUTE", "URL_ENV", "PUBLIC_URL", "default_url"]

#: The chat route, below the REST root.
SUBMIT_ROUTE = "/mwai-ui/v1/chats/submit"
#: The environment variable that names the default site.
URL_ENV = "OPCHATGPTS_URL"
#: The site this SDK was written for. It is gone; it stays the default for compatibility.
PUBLIC_URL = "https://opchatgpts.net"

#: Settings of known sites, keyed by site URL. Any other site gets the plugin's defaults:
#: bot ``"default"``, no context id, session ``"N/A"``.
SITE_PRESETS: Mapping[str, Mapping[str, Any]] = {
    PUBLIC_URL: {
        "bot_id": "default",
        "custom_id": None,
        "context_id": 28,
        "session": "N/A",
        "referer": "https://opchatgpts.net/chatgpt-free-use/",
    },
}


def default_url() -> str:
    """The site used when none is named: ``$OPCHATGPTS_URL``, else opchatgpts.net."""
    return os.environ.get(URL_ENV) or PUBLIC_URL


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
        nonce: a ``X-WP-Nonce`` to start with, such as the one a chatbot page prints. Never
            shown in the ``repr``.
        max_message_length: the bot's limit on one message, in characters, when its page
            advertises one (``textInputMaxLength``); a longer message is refused before any I/O.
    """

    url: str
    rest_url: Optional[str] = None
    bot_id: Optional[str] = "default"
    custom_id: Optional[str] = None
    context_id: Optional[int] = None
    session: Optional[str] = "N/A"
    referer: Optional[str] = None
    nonce: Optional[str] = field(default=None, repr=False)
    max_message_length: Optional[int] = None

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
        for name in ("bot_id", "custom_id", "session", "nonce"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a string, not {type(value).__name__}")
        for name in ("context_id", "max_message_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not (self.bot_id or self.custom_id):
            raise ValueError("a site needs a bot_id or a custom_id")

    @classmethod
    def for_url(cls, url: str, **changes: Any) -> "Site":
        """The site at ``url``, with the preset settings of a known site, then ``changes``."""
        settings = dict(SITE_PRESETS.get(url.rstrip("/"), {})) if isinstance(url, str) else {}
        settings.update(changes)
        return cls(url, **settings)

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

    def __repr__(self) -> str:
        shown = [repr(self.url)]
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "url" or value == item.default:
                continue
            shown.append(f"{item.name}={'<set>' if item.name == 'nonce' else repr(value)}")
        return f"Site({', '.join(shown)})"


#: What every API accepts where it needs a site: a ``Site``, or a plain site URL.
SiteLike = Union[str, Site]
