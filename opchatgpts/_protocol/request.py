"""Building requests: the site's settings and the caller's messages in, an HTTP request out.

No I/O. The body follows the plugin's own browser client, the only shape every server
generation reads the same way: ``messages`` holds the history before the new turn and
``newMessage`` the new user text (see PROTOCOL.md, section 2).
"""

from __future__ import annotations

import json
import secrets
import string
from collections import abc
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

from yarl import URL

from .._exceptions import InvalidMessagesError, InvalidMessagesTypeError
from .._models import MessageLike
from .._site import Site
from .._version import __version__

__all__ = [
    "HTTPRequest",
    "as_messages",
    "check_messages",
    "content_parts",
    "split_messages",
    "build_chat_request",
    "new_chat_id",
    "same_origin",
    "redirected_request",
    "USER_AGENT",
]

USER_AGENT = f"opchatgpts/{__version__}"
ROLES = frozenset({"user", "assistant", "system"})
_CHAT_ID_ALPHABET = string.ascii_lowercase + string.digits


_CHAT_ID_LENGTH = 10


def new_chat_id() -> str:
    """A fresh conversation id: 10 random characters from ``[a-z0-9]``, like the browser's.

    One random number below 36**10, written in base 36: as uniform as drawing each
    character, for one draw from the system's randomness instead of ten.
    """
    number = secrets.randbelow(len(_CHAT_ID_ALPHABET) ** _CHAT_ID_LENGTH)
    chars = []
    for _ in range(_CHAT_ID_LENGTH):
        number, digit = divmod(number, len(_CHAT_ID_ALPHABET))
        chars.append(_CHAT_ID_ALPHABET[digit])
    return "".join(chars)


@dataclass(frozen=True)
class HTTPRequest:
    """A request ready for any transport to send."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __repr__(self) -> str:
        # Headers stay out: they may hold a nonce.
        return f"HTTPRequest({self.method} {self.url}, {len(self.body)} bytes)"


def as_messages(prompt_or_messages: Any) -> Any:
    """A prompt as a one-message conversation; a conversation as it is."""
    if isinstance(prompt_or_messages, str):
        return [{"role": "user", "content": prompt_or_messages}]
    return prompt_or_messages


def check_messages(messages: Any) -> List[Dict[str, str]]:
    """Check a conversation's messages; return their ``role`` and ``content`` only (the
    server ignores other keys). It may be empty and end with any role."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, abc.Sequence):
        raise InvalidMessagesTypeError(
            f"messages must be a list of {{'role', 'content'}} dicts, not {type(messages).__name__}"
        )
    checked: List[Dict[str, str]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, abc.Mapping):
            raise InvalidMessagesTypeError(
                f"messages[{index}] must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        for key in ("role", "content"):
            if key not in message:
                raise InvalidMessagesError(f"messages[{index}] has no {key!r}")
        role, content = message["role"], message["content"]
        if not isinstance(role, str):
            raise InvalidMessagesTypeError(f"messages[{index}]['role'] must be a string")
        if role not in ROLES:
            raise InvalidMessagesError(
                f"messages[{index}]['role'] is {role!r}; expected one of {sorted(ROLES)}"
            )
        if not isinstance(content, str):
            content = content_parts(content, index)[0]
        checked.append({"role": role, "content": content})
    return checked


def content_parts(content: Any, index: int) -> Tuple[str, List[Tuple[int, Any]]]:
    """A message content in OpenAI's list-of-parts form, checked: its text (the ``text``
    parts joined by newlines) and its ``image_url`` parts as ``(part index, url)``.

    Only the last user turn's images are sent (see ``_protocol.uploads``); an earlier turn
    keeps its text.
    """
    where = f"messages[{index}]['content']"
    if isinstance(content, (str, bytes)) or not isinstance(content, abc.Sequence):
        raise InvalidMessagesTypeError(
            f"{where} must be a string or a list of parts, not {type(content).__name__}"
        )
    texts: List[str] = []
    images: List[Tuple[int, Any]] = []
    for number, part in enumerate(content):
        if not isinstance(part, abc.Mapping):
            raise InvalidMessagesTypeError(f"{where}[{number}] must be a dict, not {type(part).__name__}")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidMessagesTypeError(f"{where}[{number}]['text'] must be a string")
            texts.append(text)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, abc.Mapping) else image
            if not isinstance(url, str):
                raise InvalidMessagesTypeError(
                    f"{where}[{number}] must have an 'image_url' with a string 'url'"
                )
            images.append((number, url))
        else:
            raise InvalidMessagesError(
                f"{where}[{number}] is a {kind!r} part; only 'text' and 'image_url' parts can be "
                "sent (other files go with files=)"
            )
    return "\n".join(texts), images


def split_messages(
    messages: Any, site: Optional[Site] = None, *, allow_empty: bool = False
) -> Tuple[List[Dict[str, str]], str]:
    """Check the caller's messages; return ``(history, new_message)``.

    The last message must be the user's turn to send, and within the bot's length limit
    when ``site`` knows it. Its text may be empty only with ``allow_empty`` (when files go
    with it: AI Engine 2.0+ take a file without text).
    """
    history = check_messages(messages)
    if not history:
        raise InvalidMessagesError("messages is empty: there is nothing to send")
    last = history.pop()
    if last["role"] != "user":
        raise InvalidMessagesError(
            f"the last message must be the user's turn to send, but its role is {last['role']!r}"
        )
    new_message = last["content"]
    if not new_message.strip() and not allow_empty:
        raise InvalidMessagesError("the last user message is empty; the server rejects it")
    if site is not None and site.max_message_length is not None:
        if len(new_message) > site.max_message_length:
            raise InvalidMessagesError(
                f"the message is {len(new_message)} characters long; the bot at {site.url} takes "
                f"at most {site.max_message_length} (its page's textInputMaxLength)"
            )
    return history, new_message


#: The body's JSON: compact, and UTF-8 as it is. Made once (``json.dumps`` with options
#: builds an encoder for every call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def build_chat_request(
    site: Site,
    messages: Sequence[MessageLike],
    *,
    chat_id: str,
    stream: bool = True,
    nonce: Optional[str] = None,
    session: Optional[str] = None,
    extra_body: Optional[Mapping[str, Any]] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    file_fields: Optional[Mapping[str, Any]] = None,
) -> HTTPRequest:
    """The ``POST chats/submit`` request for these messages.

    ``file_fields`` name the files uploaded for this turn, in the fields of the site's
    generation (``_protocol.uploads.submit_fields``); with them the text may be empty.
    """
    history, new_message = split_messages(messages, site, allow_empty=bool(file_fields))
    body: Dict[str, Any] = {
        "botId": site.bot_id,
        "customId": site.custom_id,
        "session": session if session is not None else site.session,
        "chatId": chat_id,
        "contextId": site.context_id,
        "messages": history,
        "newMessage": new_message,
        **(file_fields or {}),  # where the browser puts them, before "stream"
        "stream": stream,
    }
    if extra_body:
        body.update(extra_body)
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "User-Agent": USER_AGENT,
    }
    if site.referer:
        headers["Referer"] = site.referer
        parts = urlsplit(site.referer)
        headers["Origin"] = f"{parts.scheme}://{parts.netloc}"
    if extra_headers:
        headers.update(extra_headers)
    if nonce:
        headers["X-WP-Nonce"] = nonce
    data = _ENCODER.encode(body).encode("utf-8")
    return HTTPRequest("POST", site.submit_url, headers, data)


_ORIGIN_BOUND_HEADERS = frozenset({"x-wp-nonce", "cookie", "authorization", "origin", "referer"})


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port (a default port counts as given)."""
    ua, ub = URL(a), URL(b)
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)


def redirected_request(request: HTTPRequest, location: str) -> HTTPRequest:
    """The request to send after a redirect to ``location``.

    The method and body are kept (the route only answers POST). A ``ValueError`` refuses a
    target that is not http(s). Headers that carry a
    credential or identify the page (the nonce above all) never follow to another origin.
    """
    target = urljoin(request.url, location)
    if urlsplit(target).scheme not in ("http", "https"):
        raise ValueError(f"refusing to follow a redirect to {target!r}")
    headers = dict(request.headers)
    if not same_origin(request.url, target):
        headers = {k: v for k, v in headers.items() if k.lower() not in _ORIGIN_BOUND_HEADERS}
    return HTTPRequest(request.method, target, headers, request.body)
