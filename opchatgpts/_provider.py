"""The face a person meets first: ``Opchatgpts`` (gpt4free's provider shape), ``ask``."""

from __future__ import annotations

import dataclasses
import ssl
from typing import (
    Any,
    AsyncGenerator,
    Callable,
    ClassVar,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
)
from urllib.parse import urljoin, urlsplit

from ._conversation import Conversation
from ._credentials import site_auth
from ._engine import MAX_PAGE_BYTES, CallOptions, fetch, stream_batches
from ._exceptions import DiscoveryError
from ._models import ChatResult, Event, MessageLike, TextDelta, Timeout
from ._protocol.decoder import DEFAULT_MAX_LINE_BYTES
from ._protocol.discovery import ChatbotConfig, find_chatbots, looks_like_html
from ._protocol.request import USER_AGENT, HTTPRequest, new_chat_id, split_messages
from ._protocol.retry import RetryPolicy
from ._site import Site
from ._stream import AsyncChatStream, ChatStream
from ._sync import BlockingIterator, SyncStream, loop_thread
from ._transports.aiohttp import close_transport, get_transport
from ._transports.base import AsyncTransport, ConnectOptions

__all__ = ["Opchatgpts", "ask", "ask_async", "aclose", "SITE_PRESETS"]

T = TypeVar("T")

#: Settings of known sites, keyed by site URL. The defaults of any other site are the
#: plugin's: bot ``"default"``, no context id, session ``"N/A"``.
SITE_PRESETS: Mapping[str, Mapping[str, Any]] = {
    "https://opchatgpts.net": {
        "bot_id": "default",
        "custom_id": None,
        "context_id": 28,
        "session": "N/A",
        "referer": "https://opchatgpts.net/chatgpt-free-use/",
    },
}

_SITE_KEYS = ("rest_url", "bot_id", "custom_id", "context_id", "session", "referer")
_CALL_KEYS = frozenset(
    {
        "url",
        *_SITE_KEYS,
        "chat_id",
        "timeout",
        "max_retries",
        "retry",
        "verify",
        "max_line_bytes",
        "extra_body",
        "headers",
        "nonce",
        "transport",
    }
)
TRANSPORTS = ("aiohttp", "requests")


class Opchatgpts:
    """The chatbot that opchatgpts.net served, or any AI Engine site (``url=...``).

    A subclass that sets ``url`` targets another site. Every call takes these keyword
    arguments:

    * ``url``, ``rest_url``, ``bot_id``, ``custom_id``, ``context_id``, ``session``,
      ``referer``: the site and the bot (see ``Site``);
    * ``chat_id``: the conversation id (a fresh random one per call by default);
    * ``timeout``: a number (connect and read timeouts) or a ``Timeout``;
    * ``max_retries`` (default 2) or a whole ``retry=RetryPolicy(...)``;
    * ``verify``: ``True`` (default), ``False``, or an ``ssl.SSLContext``;
    * ``max_line_bytes``: the safety cap on one line of the answer (default 16 MiB);
    * ``extra_body``: extra JSON keys for the request (the server merges them over the bot's
      settings, e.g. ``{"temperature": 0.2}``); ``headers``: extra HTTP headers.

    ``model`` is accepted for compatibility and not sent: the site's bot settings choose
    the model.
    """

    url: ClassVar[str] = "https://opchatgpts.net"
    working: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    supports_gpt_35_turbo: ClassVar[bool] = True
    #: How blocking calls reach the network: ``"aiohttp"`` on the shared loop thread, or
    #: ``"requests"``, thread-free in the calling thread. Async calls always use aiohttp.
    transport: ClassVar[str] = "aiohttp"
    #: Settings read from a chatbot page by ``from_page`` (empty for the plain class).
    site_defaults: ClassVar[Mapping[str, Any]] = {}
    #: The chatbot that ``from_page`` found, if this class came from it.
    chatbot: ClassVar[Optional[ChatbotConfig]] = None

    @classmethod
    def call_options(cls, *, stream: bool = True, proxy: Optional[str] = None, **kwargs: Any) -> CallOptions:
        """Turn per-call keyword arguments into ``CallOptions``; unknown ones are an error."""
        unknown = sorted(set(kwargs) - _CALL_KEYS)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        url = kwargs.get("url") or cls.url
        site_settings: Dict[str, Any] = dict(SITE_PRESETS.get(url.rstrip("/"), {}))
        if "url" not in kwargs or kwargs["url"] == cls.url:
            site_settings.update(cls.site_defaults)
        site_settings.update({k: kwargs[k] for k in _SITE_KEYS if k in kwargs})
        retry = kwargs.get("retry") or RetryPolicy()
        if not isinstance(retry, RetryPolicy):
            raise TypeError("retry must be a RetryPolicy")
        if "max_retries" in kwargs:
            retry = dataclasses.replace(retry, max_retries=kwargs["max_retries"])
        for name in ("extra_body", "headers"):
            if kwargs.get(name) is not None and not isinstance(kwargs[name], Mapping):
                raise TypeError(f"{name} must be a mapping")
        max_line_bytes = kwargs.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)
        if isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, int) or max_line_bytes <= 0:
            raise ValueError("max_line_bytes must be a positive int")
        verify: Union[bool, ssl.SSLContext] = kwargs.get("verify", True)
        if not isinstance(verify, (bool, ssl.SSLContext)):
            raise TypeError("verify must be True, False or an ssl.SSLContext")
        transport = kwargs.get("transport", cls.transport)
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        if proxy is not None and not isinstance(proxy, str):
            raise TypeError("proxy must be a URL string such as 'http://host:3128'")
        return CallOptions(
            site=Site(url=url, **site_settings),
            chat_id=kwargs.get("chat_id") or new_chat_id(),
            stream=bool(stream),
            timeout=Timeout.coerce(kwargs.get("timeout")),
            retry=retry,
            proxy=proxy,
            verify=verify,
            max_line_bytes=max_line_bytes,
            nonce=kwargs.get("nonce"),
            transport=transport,
            extra_body=kwargs.get("extra_body"),
            extra_headers=kwargs.get("headers"),
        )

    @classmethod
    def create_async_generator(
        cls,
        model: Optional[str],
        messages: Sequence[MessageLike],
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> AsyncGenerator[str, None]:
        """Stream the answer to ``messages`` as text deltas (an async generator).

        The messages are checked at once, before any I/O.
        """
        stream = kwargs.pop("stream", True)
        options = cls.call_options(stream=stream, proxy=proxy, **_async_kwargs(kwargs))
        split_messages(messages)
        return _text(messages, options)

    @classmethod
    def create_completion(
        cls,
        model: Optional[str],
        messages: Sequence[MessageLike],
        stream: bool = True,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> BlockingIterator[str]:
        """Stream the answer as a plain iterator of text deltas, from any thread.

        With ``stream=False`` the server sends one JSON answer, and the iterator yields the
        whole text once. Use it in a ``with`` block, or ``break`` out of it: either closes
        the connection at once.
        """
        options = cls.call_options(stream=stream, proxy=proxy, **kwargs)
        split_messages(messages)
        return _blocking_iterator(lambda: _batches(messages, options, text_only=True), options)

    @classmethod
    def stream_events(
        cls,
        messages: Sequence[MessageLike],
        *,
        text: bool = False,
        on_result: Optional[Callable[[ChatResult], None]] = None,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> ChatStream[Any]:
        """Stream the answer as typed events: ``TextDelta``, ``LiveEvent`` (thinking, tool
        calls, status...) and ``Done``; ``result`` holds the final ``ChatResult`` afterwards.

        With ``text=True`` it yields text only, still keeping ``result``.
        """
        stream = kwargs.pop("stream", True)
        options = cls.call_options(stream=stream, proxy=proxy, **kwargs)
        split_messages(messages)
        events = _blocking_iterator(lambda: _batches(messages, options, text_only=False), options)
        return ChatStream(events, text_only=text, on_result=on_result)

    @classmethod
    def stream_events_async(
        cls,
        messages: Sequence[MessageLike],
        *,
        text: bool = False,
        on_result: Optional[Callable[[ChatResult], None]] = None,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> AsyncChatStream[Any]:
        """The async twin of ``stream_events``."""
        stream = kwargs.pop("stream", True)
        options = cls.call_options(stream=stream, proxy=proxy, **_async_kwargs(kwargs))
        split_messages(messages)
        return AsyncChatStream(_events(messages, options), text_only=text, on_result=on_result)

    @classmethod
    def conversation(cls, messages: Sequence[MessageLike] = (), **kwargs: Any) -> Conversation:
        """A ``Conversation`` with this site: one chat id and a growing history."""
        return Conversation(cls, messages, **kwargs)

    @classmethod
    def from_page(cls, page_url: str, **kwargs: Any) -> Type["Opchatgpts"]:
        """A provider for the site whose chatbot page is ``page_url``.

        Reads the settings the plugin prints into the page (bot id, custom id, context id,
        REST root, nonce, session). ``bot_id=`` picks one chatbot when the page has several.
        Other keyword arguments (``timeout``, ``proxy``, ``verify``...) apply to the page
        request. Raises ``DiscoveryError`` if the page is not HTML or shows no chatbot.
        """
        if kwargs.get("transport", cls.transport) == "requests":
            from ._blocking import run_blocking

            return run_blocking(cls._from_page(page_url, **kwargs))
        return loop_thread.run(cls._from_page(page_url, **kwargs))

    @classmethod
    async def from_page_async(
        cls, page_url: str, *, bot_id: Optional[str] = None, proxy: Optional[str] = None, **kwargs: Any
    ) -> Type["Opchatgpts"]:
        """The async twin of ``from_page``."""
        return await cls._from_page(page_url, bot_id=bot_id, proxy=proxy, **_async_kwargs(kwargs))

    @classmethod
    async def _from_page(
        cls, page_url: str, *, bot_id: Optional[str] = None, proxy: Optional[str] = None, **kwargs: Any
    ) -> Type["Opchatgpts"]:
        parts = urlsplit(page_url) if isinstance(page_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"page_url must be an http(s) URL, got {page_url!r}")
        origin = f"{parts.scheme}://{parts.netloc}"
        options = cls.call_options(url=origin, proxy=proxy, **kwargs)
        connect = ConnectOptions(options.timeout, None, options.proxy, options.verify)
        headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"}
        _, response_headers, body = await fetch(
            await _transport_for(options), HTTPRequest("GET", page_url, headers), connect, options.retry,
            limit=MAX_PAGE_BYTES,
        )
        content_type = next((v for k, v in response_headers.items() if k.lower() == "content-type"), "")
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
        defaults: Dict[str, Any] = {
            "rest_url": urljoin(page_url, bot.rest_url) if bot.rest_url else None,
            "bot_id": bot.bot_id if bot.bot_id else (None if bot.custom_id else "default"),
            "custom_id": bot.custom_id,
            "context_id": bot.context_id,
            "session": bot.session_id or "N/A",
            "referer": page_url,
        }
        site = Site(url=origin, **defaults)
        site_auth(site.rest_root).remember(nonce=bot.rest_nonce, session_id=bot.session_id)
        name = f"{cls.__name__}FromPage"
        return type(name, (cls,), {"url": origin, "site_defaults": defaults, "chatbot": bot})


async def _batches(
    messages: Sequence[MessageLike], options: CallOptions, text_only: bool
) -> AsyncGenerator[List[Any], None]:
    """The answer in the batches in which it arrived: its text deltas, or all its events."""
    batches = stream_batches(await _transport_for(options), messages, options)
    try:
        async for batch in batches:
            if text_only:
                texts = [event.text for event in batch if type(event) is TextDelta]
                if texts:
                    yield texts
            else:
                yield batch
    finally:
        await batches.aclose()


async def _flat(batches: AsyncGenerator[List[T], None]) -> AsyncGenerator[T, None]:
    try:
        async for batch in batches:
            for item in batch:
                yield item
    finally:
        await batches.aclose()


def _text(messages: Sequence[MessageLike], options: CallOptions) -> AsyncGenerator[str, None]:
    return _flat(_batches(messages, options, text_only=True))


def _events(messages: Sequence[MessageLike], options: CallOptions) -> AsyncGenerator[Event, None]:
    return _flat(_batches(messages, options, text_only=False))


async def _transport_for(options: CallOptions) -> AsyncTransport:
    if options.transport == "requests":
        from ._transports.requests import requests_transport

        return requests_transport()
    return await get_transport()


def _blocking_iterator(
    start: Callable[[], AsyncGenerator[List[T], None]], options: CallOptions
) -> BlockingIterator[T]:
    """Run an async source of batches for a blocking caller, one item at a time: on the loop
    thread, or, with the requests transport, right here in the calling thread. Whole batches
    cross over, so the cost of the hand-off is paid per network read, not per token."""
    if options.transport == "requests":
        from ._blocking import BlockingStream

        return BlockingStream(start)
    return SyncStream(start)


def _async_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if kwargs.get("transport", "aiohttp") != "aiohttp":
        raise ValueError("the async API runs on aiohttp; transport='requests' is for blocking calls")
    return {**kwargs, "transport": "aiohttp"}  # whatever the class's default for blocking calls


def _as_messages(prompt_or_messages: Union[str, Sequence[MessageLike]]) -> Sequence[MessageLike]:
    if isinstance(prompt_or_messages, str):
        return [{"role": "user", "content": prompt_or_messages}]
    return prompt_or_messages


def ask(prompt_or_messages: Union[str, Sequence[MessageLike]], **kwargs: Any) -> str:
    """Send a prompt (or a message list) and return the whole answer.

    Takes the keyword arguments of ``Opchatgpts.create_completion``, plus ``provider`` (a
    subclass of ``Opchatgpts``) and ``model``.
    """
    provider = kwargs.pop("provider", Opchatgpts)
    model = kwargs.pop("model", None)
    with provider.create_completion(model, _as_messages(prompt_or_messages), **kwargs) as parts:
        return "".join(parts)


async def ask_async(prompt_or_messages: Union[str, Sequence[MessageLike]], **kwargs: Any) -> str:
    """The async twin of ``ask``."""
    provider = kwargs.pop("provider", Opchatgpts)
    model = kwargs.pop("model", None)
    parts: List[str] = []
    agen = provider.create_async_generator(model, _as_messages(prompt_or_messages), **kwargs)
    try:
        async for part in agen:
            parts.append(part)
    finally:
        await agen.aclose()
    return "".join(parts)


async def aclose() -> None:
    """Close the running event loop's pooled HTTP session (``asyncio.run`` does it for you)."""
    await close_transport()
