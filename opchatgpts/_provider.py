"""The faces people already use: ``Opchatgpts`` (gpt4free's provider shape) and ``ask``.

They are thin layers over one default ``Client``, created on first use and closed at
interpreter exit. Its pool and nonces serve every face call, blocking and async.
"""

from __future__ import annotations

import atexit
import functools
import threading
from typing import (
    Any,
    AsyncGenerator,
    Callable,
    ClassVar,
    Dict,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

from . import _conversation
from ._client import Client, PromptOrMessages
from ._conversation import Conversation
from ._models import ChatResult, MessageLike
from ._options import (
    AsyncCallKwargs,
    CallKwargs,
    CallOptions,
    CompletionKwargs,
    GeneratorKwargs,
    TransportName,
    Unpack,
)
from ._protocol.discovery import ChatbotConfig
from ._protocol.request import as_messages
from ._site import PUBLIC_URL, Site, default_url
from ._stream import Answer, AsyncChatStream, ChatStream
from ._sync import BlockingIterator

__all__ = ["Opchatgpts", "ask", "ask_async", "aclose"]

T = TypeVar("T")
P = TypeVar("P", bound="Opchatgpts")


class _DefaultClient:
    """The client behind the faces: one per process, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Optional[Client] = None

    def get(self) -> Client:
        client = self._client
        if client is None or client.closed:
            with self._lock:
                client = self._client
                if client is None or client.closed:
                    client = self._client = Client(PUBLIC_URL)
                    atexit.register(client.close)
        return client


_default = _DefaultClient()
_conversation.default_client = _default.get


class _ClassProperty:
    """A read-only property of the class (``@classmethod`` stacked on ``@property`` is
    gone in Python 3.13)."""

    def __init__(self, getter: Callable[[Any], str]) -> None:
        self._getter = getter

    def __get__(self, instance: Any, owner: Any) -> str:
        return self._getter(owner)


class Opchatgpts:
    """The chatbot that opchatgpts.net served, or any AI Engine site (``url=...``), in
    gpt4free's provider shape.

    A subclass that sets ``url`` targets another site. Every call takes the keyword
    arguments of ``CallKwargs`` (README.rst, Configuration), ``files=`` among them.
    ``model`` is accepted for compatibility and not sent: the site's bot settings choose
    the model. The last user message may be OpenAI's list of text and image parts.
    """

    url: ClassVar[str] = PUBLIC_URL
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    supports_gpt_35_turbo: ClassVar[bool] = True
    supports_gpt_4: ClassVar[bool] = False
    #: How blocking calls reach the network: ``"aiohttp"`` on the shared loop thread, or
    #: ``"requests"``, thread-free in the calling thread. Async calls always use aiohttp.
    transport: ClassVar[TransportName] = "aiohttp"
    #: Settings read from a chatbot page by ``from_page`` (empty for the plain class).
    site_defaults: ClassVar[Mapping[str, Any]] = {}
    #: The chatbot that ``from_page`` found, if this class came from it.
    chatbot: ClassVar[Optional[ChatbotConfig]] = None

    @_ClassProperty
    def params(cls) -> str:  # noqa: N805 - a property of the class
        """What the provider takes, in gpt4free's words (as g4f 0.1.x's own Opchatgpts said it)."""
        names = ("model: str", "messages: list[dict[str, str]]", "stream: bool", "proxy: str")
        return f"g4f.provider.{getattr(cls, '__name__', 'Opchatgpts')} supports: ({', '.join(names)})"

    @classmethod
    def _site(cls) -> Site:
        url = default_url() if cls.url == PUBLIC_URL else cls.url  # $OPCHATGPTS_URL first
        return Site.for_url(url, **cls.site_defaults) if url == cls.url else Site.for_url(url)

    @classmethod
    def call_options(cls, **kwargs: Unpack[CallKwargs]) -> CallOptions:
        """The checked settings of one call: the class's site, then these keywords.

        An unknown keyword is a ``TypeError`` that lists the valid ones.
        """
        if kwargs.get("files") is None:  # files are read anew by each call
            # The same keywords give the same options: they are checked once. A value's type
            # is part of the key (True == 1, but timeout=True is an error).
            keywords = tuple((name, type(value), value) for name, value in kwargs.items())
            key = (cls, cls.url, cls.transport, tuple(cls.site_defaults.items()), default_url(), keywords)
            try:
                hash(key)
            except TypeError:  # a mapping among the values (headers=...): checked each time
                pass
            else:
                return _checked_options(key)
        return cls._checked_options(kwargs)

    @classmethod
    def _checked_options(cls, kwargs: Mapping[str, Any]) -> CallOptions:
        return CallOptions(site=cls._site(), transport=cls.transport).merge(kwargs)

    @classmethod
    def create_async_generator(
        cls,
        model: Optional[str],
        messages: Sequence[MessageLike],
        proxy: Optional[str] = None,
        **kwargs: Unpack[GeneratorKwargs],
    ) -> AsyncGenerator[str, None]:
        """Stream the answer to ``messages`` as text deltas (an async generator).

        The messages are checked at once, before any I/O.
        """
        options = cls.call_options(**_async({**kwargs, "proxy": proxy}))
        return _default.get()._async_items(messages, (options,), Answer(), True)

    @classmethod
    def create_completion(
        cls,
        model: Optional[str],
        messages: Sequence[MessageLike],
        stream: bool = True,
        proxy: Optional[str] = None,
        **kwargs: Unpack[CompletionKwargs],
    ) -> BlockingIterator[str]:
        """Stream the answer as a plain iterator of text deltas, from any thread.

        With ``stream=False`` the server sends one JSON answer, and the iterator yields the
        whole text once. Use it in a ``with`` block, or ``break`` out of it: either closes
        the connection at once.
        """
        options = cls.call_options(stream=stream, proxy=proxy, **kwargs)
        items: BlockingIterator[str] = _default.get()._blocking_items(messages, (options,), Answer(), True)
        return items

    @classmethod
    async def create_async(
        cls,
        model: Optional[str],
        messages: Sequence[MessageLike],
        proxy: Optional[str] = None,
        **kwargs: Unpack[GeneratorKwargs],
    ) -> str:
        """The whole answer to ``messages``, awaited (gpt4free's ``create_async``)."""
        parts = [part async for part in cls.create_async_generator(model, messages, proxy, **kwargs)]
        return "".join(parts)

    @classmethod
    def stream_events(
        cls,
        messages: Sequence[MessageLike],
        *,
        text: bool = False,
        on_result: Optional[Callable[[ChatResult], None]] = None,
        **kwargs: Unpack[CallKwargs],
    ) -> ChatStream[Any]:
        """Stream the answer as typed events: ``TextDelta``, ``LiveEvent`` (thinking, tool
        calls, status...) and ``Done``; ``result`` holds the final ``ChatResult`` afterwards.

        With ``text=True`` it yields text only, still keeping ``result``.
        """
        options = cls.call_options(**kwargs)
        answer = Answer()
        items = _default.get()._blocking_items(messages, (options,), answer, text)
        return ChatStream(items, answer, on_result)

    @classmethod
    def stream_events_async(
        cls,
        messages: Sequence[MessageLike],
        *,
        text: bool = False,
        on_result: Optional[Callable[[ChatResult], None]] = None,
        **kwargs: Unpack[AsyncCallKwargs],
    ) -> AsyncChatStream[Any]:
        """The async twin of ``stream_events``."""
        options = cls.call_options(**_async(kwargs))
        answer = Answer()
        items = _default.get()._async_items(messages, (options,), answer, text)
        return AsyncChatStream(items, answer, on_result)

    @classmethod
    def conversation(cls, messages: Sequence[MessageLike] = (), **kwargs: Unpack[CallKwargs]) -> Conversation:
        """A ``Conversation`` with this site: one chat id and a growing history."""
        if "stream" in kwargs:
            raise TypeError("a Conversation manages streaming itself")
        if "files" in kwargs:
            raise TypeError("files= goes with one turn: conversation.send(text, files=[...])")
        return Conversation._with(_default.get(), cls.call_options(**kwargs), messages, kwargs.get("chat_id"))

    @classmethod
    def from_page(cls: Type[P], page_url: str, **kwargs: Unpack[CallKwargs]) -> Type[P]:
        """A provider class for the site whose chatbot page is ``page_url``.

        Reads the settings the plugin prints into the page (bot id, custom id, context id,
        REST root, nonce, session). ``bot_id=`` picks one chatbot when the page has several.
        Other keyword arguments (``timeout``, ``proxy``, ``verify``...) apply to the page
        request. Raises ``DiscoveryError`` if the page is not HTML or shows no chatbot.
        """
        bot_id = kwargs.pop("bot_id", None)
        _no_files(kwargs)
        options = cls.call_options(**kwargs)
        client = _default.get()
        found = client._run(client._discover(page_url, options, bot_id), options.transport)
        return cls._for_page(*found)

    @classmethod
    async def from_page_async(cls: Type[P], page_url: str, **kwargs: Unpack[AsyncCallKwargs]) -> Type[P]:
        """The async twin of ``from_page``."""
        bot_id = kwargs.pop("bot_id", None)
        _no_files(kwargs)
        options = cls.call_options(**_async(kwargs))
        client = _default.get()
        found = await client._discover(page_url, options, bot_id)
        return cls._for_page(*found)

    @classmethod
    def _for_page(cls: Type[P], site: Site, bot: ChatbotConfig) -> Type[P]:
        defaults = {
            "rest_url": site.rest_url,
            "bot_id": site.bot_id,
            "custom_id": site.custom_id,
            "context_id": site.context_id,
            "session": site.session,
            "referer": site.referer,
            "max_message_length": site.max_message_length,
        }
        name = f"{cls.__name__}FromPage"
        return type(name, (cls,), {"url": site.url, "site_defaults": defaults, "chatbot": bot})


@functools.lru_cache(maxsize=64)
def _checked_options(key: Tuple[Any, ...]) -> CallOptions:
    """``call_options`` of a class and keywords: ``key`` is ``(class, ..., keywords)``."""
    cls, keywords = key[0], key[-1]
    options: CallOptions = cls._checked_options({name: value for name, _, value in keywords})
    return options


def _no_files(kwargs: Mapping[str, Any]) -> None:
    if "files" in kwargs:
        raise TypeError("files= goes with a call that sends a message, not with from_page")


def _async(kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """Keywords for an async call: on aiohttp, whatever the class's ``transport`` (that is
    for blocking calls)."""
    if kwargs.get("transport", "aiohttp") != "aiohttp":
        raise ValueError("the async API runs on aiohttp; transport='requests' is for blocking calls")
    return {**kwargs, "transport": "aiohttp"}


def ask(
    prompt_or_messages: PromptOrMessages,
    *,
    provider: Type[Opchatgpts] = Opchatgpts,
    model: Optional[str] = None,
    **kwargs: Unpack[CallKwargs],
) -> str:
    """Send a prompt (or a message list) and return the whole answer.

    Takes the keyword arguments of ``Opchatgpts.create_completion``, plus ``provider`` (a
    subclass of ``Opchatgpts``) and ``model``. ``files=["cat.png"]`` sends files with the
    message (README.rst, Images and files).
    """
    options = provider.call_options(**kwargs)
    with _default.get()._blocking_items(as_messages(prompt_or_messages), (options,), Answer(), True) as parts:
        return "".join(parts)


async def ask_async(
    prompt_or_messages: PromptOrMessages,
    *,
    provider: Type[Opchatgpts] = Opchatgpts,
    model: Optional[str] = None,
    **kwargs: Unpack[CallKwargs],
) -> str:
    """The async twin of ``ask``."""
    options = provider.call_options(**_async(kwargs))
    return await _default.get()._collect(as_messages(prompt_or_messages), (options,))


async def aclose() -> None:
    """Close the running event loop's pooled HTTP session of the default client
    (``asyncio.run`` does it for you)."""
    client = _default._client
    if client is not None:
        await client._pool.aiohttp.aclose_loop()

