"""The face a person meets first: ``Opchatgpts`` (gpt4free's provider shape), ``ask``."""

from __future__ import annotations

import ssl
from typing import Any, AsyncGenerator, ClassVar, Dict, List, Mapping, Optional, Sequence, Union

from ._aiohttp import close_transport, get_transport
from ._decoder import DEFAULT_MAX_LINE_BYTES
from ._engine import CallOptions, stream_batches
from ._models import Message, TextDelta, Timeout
from ._request import Site, new_chat_id, split_messages
from ._retry import RetryPolicy
from ._sync import SyncStream

__all__ = ["Opchatgpts", "ask", "ask_async", "aclose", "SITE_PRESETS"]

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
    }
)


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

    @classmethod
    def call_options(cls, *, stream: bool = True, proxy: Optional[str] = None, **kwargs: Any) -> CallOptions:
        """Turn per-call keyword arguments into ``CallOptions``; unknown ones are an error."""
        unknown = sorted(set(kwargs) - _CALL_KEYS)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        url = kwargs.get("url") or cls.url
        site_settings: Dict[str, Any] = dict(SITE_PRESETS.get(url.rstrip("/"), {}))
        site_settings.update({k: kwargs[k] for k in _SITE_KEYS if k in kwargs})
        retry = kwargs.get("retry") or RetryPolicy()
        if "max_retries" in kwargs:
            retry = RetryPolicy(**{**retry.__dict__, "max_retries": kwargs["max_retries"]})
        verify: Union[bool, ssl.SSLContext] = kwargs.get("verify", True)
        if not isinstance(verify, (bool, ssl.SSLContext)):
            raise TypeError("verify must be True, False or an ssl.SSLContext")
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
            max_line_bytes=kwargs.get("max_line_bytes") or DEFAULT_MAX_LINE_BYTES,
            nonce=kwargs.get("nonce"),
            extra_body=kwargs.get("extra_body"),
            extra_headers=kwargs.get("headers"),
        )

    @classmethod
    def create_async_generator(
        cls,
        model: Optional[str],
        messages: Sequence[Message],
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> AsyncGenerator[str, None]:
        """Stream the answer to ``messages`` as text deltas (an async generator).

        The messages are checked at once, before any I/O.
        """
        stream = kwargs.pop("stream", True)
        options = cls.call_options(stream=stream, proxy=proxy, **kwargs)
        split_messages(messages)
        return _text(messages, options)

    @classmethod
    def create_completion(
        cls,
        model: Optional[str],
        messages: Sequence[Message],
        stream: bool = True,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> SyncStream[str]:
        """Stream the answer as a plain iterator of text deltas, from any thread.

        With ``stream=False`` the server sends one JSON answer, and the iterator yields the
        whole text once. Use it in a ``with`` block, or ``break`` out of it: either closes
        the connection at once.
        """
        options = cls.call_options(stream=stream, proxy=proxy, **kwargs)
        split_messages(messages)
        return SyncStream(lambda: _text(messages, options))


async def _text(messages: Sequence[Message], options: CallOptions) -> AsyncGenerator[str, None]:
    transport = await get_transport()
    batches = stream_batches(transport, messages, options)
    try:
        async for batch in batches:
            for event in batch:
                if event.__class__ is TextDelta:
                    yield event.text
    finally:
        await batches.aclose()


def _as_messages(prompt_or_messages: Union[str, Sequence[Message]]) -> Sequence[Message]:
    if isinstance(prompt_or_messages, str):
        return [{"role": "user", "content": prompt_or_messages}]
    return prompt_or_messages


def ask(prompt_or_messages: Union[str, Sequence[Message]], **kwargs: Any) -> str:
    """Send a prompt (or a message list) and return the whole answer.

    Takes the keyword arguments of ``Opchatgpts.create_completion``, plus ``provider`` (a
    subclass of ``Opchatgpts``) and ``model``.
    """
    provider = kwargs.pop("provider", Opchatgpts)
    model = kwargs.pop("model", None)
    with provider.create_completion(model, _as_messages(prompt_or_messages), **kwargs) as parts:
        return "".join(parts)


async def ask_async(prompt_or_messages: Union[str, Sequence[Message]], **kwargs: Any) -> str:
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
