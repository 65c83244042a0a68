"""``Client`` and ``AsyncClient``: a site (or several), settings, and the state of talking to it.

A client is built once, configured, shared, and closed. It owns what calls share: the
connection pool, the cookies, and the nonces it learned (``_Pool``); ``with_options`` copies
share them too. Its settings are checked once, in the constructor, into ``CallOptions``; a
call's own keywords are merged over them.
"""

from __future__ import annotations

import dataclasses
import ssl
import threading
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncGenerator,
    Callable,
    Coroutine,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from ._blocking import BlockingStream, run_blocking
from ._conversation import Conversation
from ._credentials import CredentialStore
from ._engine import discover, stream_batches
from ._exceptions import ClientClosedError
from ._failover import DEFAULT_COOLDOWN, SiteHealth, failover_batches
from ._models import ChatResult, Event, MessageLike, Timeout
from ._options import (
    SITE_KEYS,
    AsyncCallKwargs,
    AsyncClientSettings,
    CallKwargs,
    CallOptions,
    ClientSettings,
    TransportName,
    Unpack,
    with_files_loaded,
)
from ._protocol.decoder import DEFAULT_MAX_LINE_BYTES
from ._protocol.discovery import ChatbotConfig
from ._protocol.request import as_messages, split_messages
from ._protocol.retry import RetryPolicy
from ._protocol.uploads import DEFAULT_MAX_FILE_BYTES, split_image_parts
from ._site import Site, SiteLike, default_url
from ._stream import Answer, AsyncChatStream, ChatStream, answer_batches, answer_items
from ._sync import BlockingIterator, SyncStream, loop_thread
from ._transports.aiohttp import AiohttpPool
from ._transports.base import AsyncTransport

if TYPE_CHECKING:
    from ._transports.requests import RequestsTransport

__all__ = ["Client", "AsyncClient", "PromptOrMessages"]

T = TypeVar("T")
B = TypeVar("B", bound="_BaseClient")

#: A prompt (one user message) or a whole conversation whose last message is the user's.
PromptOrMessages = Union[str, Sequence[MessageLike]]

_CLOSED_DURING_CALL = "the client was closed while this call was under way"

#: The sites one call may try, in order, each with its settings.
Plan = Tuple[CallOptions, ...]
#: What a call's stream hands out: ``answer_batches`` or ``answer_items``.
Shape = Callable[[AsyncGenerator[List[Event], None], Answer, bool], AsyncGenerator[Any, None]]


class _Pool:
    """What a client shares with its ``with_options`` copies: connections, cookies, nonces."""

    def __init__(self, max_connections: int, failover_cooldown: float = DEFAULT_COOLDOWN) -> None:
        self.credentials = CredentialStore()
        self.health = SiteHealth(failover_cooldown)
        self.aiohttp = AiohttpPool(max_connections)
        self._max_connections = max_connections
        self._requests: Optional[RequestsTransport] = None
        self._lock = threading.Lock()
        self._uses_loop_thread = False
        self._streams: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self.closed = False

    def transport(self, name: TransportName) -> AsyncTransport:
        """The transport that carries calls of kind ``name``."""
        if name == "aiohttp":
            return self.aiohttp
        with self._lock:
            if self._requests is None:
                from ._transports.requests import RequestsTransport  # imports requests: on first use

                self._requests = RequestsTransport(self._max_connections)
            return self._requests

    def use_loop_thread(self) -> None:
        """Take this pool's share of the shared loop thread (once)."""
        with self._lock:
            if self._uses_loop_thread:
                return
            self._uses_loop_thread = True
        loop_thread.acquire()

    def track(self, stream: Any) -> None:
        self._streams.add(stream)

    def _closing(self) -> Tuple[bool, Optional[RequestsTransport]]:
        with self._lock:
            uses_loop_thread, self._uses_loop_thread = self._uses_loop_thread, False
            requests, self._requests = self._requests, None
            streams, self._streams = list(self._streams), weakref.WeakSet()
            self.closed = True
        for stream in streams:
            stream.interrupt(ClientClosedError(_CLOSED_DURING_CALL))
        if requests is not None:
            requests.close()
        return uses_loop_thread, requests

    def close(self) -> None:
        uses_loop_thread, _ = self._closing()
        self.aiohttp.close()
        if uses_loop_thread:
            loop_thread.release()

    async def aclose(self) -> None:
        uses_loop_thread, _ = self._closing()
        await self.aiohttp.aclose()
        if uses_loop_thread:
            loop_thread.release()


class _BaseClient:
    """What both clients share: the settings and the pool."""

    _sites: Tuple[CallOptions, ...]
    _pool: _Pool
    _owns_pool: bool
    #: The chatbot settings ``from_page`` read, if this client came from a page.
    chatbot: Optional[ChatbotConfig]

    def __init__(
        self,
        url: Optional[SiteLike] = None,
        *,
        sites: Optional[Sequence[SiteLike]] = None,
        rest_url: Optional[str] = None,
        bot_id: Optional[str] = None,
        custom_id: Optional[str] = None,
        context_id: Optional[int] = None,
        session: Optional[str] = None,
        referer: Optional[str] = None,
        stream: bool = True,
        timeout: Union[None, float, Timeout] = None,
        max_retries: Optional[int] = None,
        retry: Optional[RetryPolicy] = None,
        proxy: Optional[str] = None,
        verify: Union[bool, ssl.SSLContext] = True,
        headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        nonce: Optional[str] = None,
        trust_env: bool = True,
        transport: TransportName = "aiohttp",
        max_connections: int = 100,
        failover_cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        if url is not None and sites is not None:
            raise TypeError("give url= (one site) or sites= (several), not both")
        entries = _site_list(sites) if sites is not None else [url if url is not None else default_url()]
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive int, got {max_connections!r}")
        if isinstance(failover_cooldown, bool) or not isinstance(failover_cooldown, (int, float)):
            raise TypeError("failover_cooldown must be a number of seconds")
        if failover_cooldown < 0:
            raise ValueError(f"failover_cooldown must be >= 0, got {failover_cooldown!r}")
        given: Dict[str, Any] = {
            "rest_url": rest_url,
            "bot_id": bot_id,
            "custom_id": custom_id,
            "context_id": context_id,
            "session": session,
            "referer": referer,
            "timeout": timeout,
            "max_retries": max_retries,
            "retry": retry,
            "proxy": proxy,
            "headers": headers,
            "extra_body": extra_body,
            "nonce": nonce,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        changes.update(
            stream=stream, verify=verify, max_line_bytes=max_line_bytes, max_file_bytes=max_file_bytes,
            transport=transport, trust_env=trust_env,
        )
        self._sites = tuple(CallOptions(site=_site(entry)).merge(changes) for entry in entries)
        self._pool = _Pool(max_connections, failover_cooldown)
        self._owns_pool = True
        self._closed = False
        self.chatbot = None

    # -- settings -----------------------------------------------------------------------

    @property
    def site(self) -> Site:
        """The site this client talks to (the first, if it has several)."""
        return self._sites[0].site

    @property
    def sites(self) -> Tuple[Site, ...]:
        """Every site of this client, in the order calls try them."""
        return tuple(options.site for options in self._sites)

    @property
    def options(self) -> CallOptions:
        """The settings every call starts from (those of the first site)."""
        return self._sites[0]

    def _copy(self, cls: Type[B], changes: Mapping[str, Any]) -> B:
        """A client of class ``cls`` on this one's pool, with ``changes`` (checked)."""
        if "files" in changes:
            raise TypeError("files= goes with one call (ask, stream...), not with with_options")
        plan = self._plan(changes)
        copy = object.__new__(cls)
        copy._sites = plan
        copy._pool = self._pool
        copy._owns_pool = False
        copy._closed = False
        copy.chatbot = self.chatbot
        return copy

    def _plan(self, changes: Mapping[str, Any]) -> Tuple[CallOptions, ...]:
        """The sites a call tries, each with its settings: ``changes`` merged over this
        client's. A ``url`` among them names the one site to use. ``files`` are read
        here, once."""
        self._check_open()
        if not changes:
            return self._sites
        changes = with_files_loaded(changes, self._sites[0])
        if "url" in changes:
            return (self._sites[0].merge(changes),)
        return tuple(options.merge(changes) for options in self._sites)

    def _check_open(self) -> None:
        if self._closed or self._pool.closed:
            raise ClientClosedError(f"this {type(self).__name__} is closed; create a new one")

    @property
    def closed(self) -> bool:
        """Whether ``close`` (or ``aclose``) ran."""
        return self._closed or self._pool.closed

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        sites = ", ".join(repr(options.site) for options in self._sites)
        return f"<{type(self).__name__} {sites}{state}>"

    # -- the calls ----------------------------------------------------------------------

    def _source(
        self,
        messages: Sequence[MessageLike],
        plan: Plan,
        answer: Answer,
        text_only: bool,
        shape: Shape = answer_batches,
    ) -> Callable[[], AsyncGenerator[Any, None]]:
        """Where a call's batches (or, with ``shape=answer_items``, items) come from, started
        when the stream is first read."""
        pool = self._pool
        if len(plan) == 1:
            options = plan[0]
            transport = pool.transport(options.transport)

            def start() -> AsyncGenerator[Any, None]:
                events = stream_batches(transport, pool.credentials, messages, options)
                return shape(events, answer, text_only)

            return start

        def one_site(options: CallOptions) -> AsyncGenerator[List[Event], None]:
            return stream_batches(pool.transport(options.transport), pool.credentials, messages, options)

        def start_failover() -> AsyncGenerator[Any, None]:
            return shape(failover_batches(one_site, pool.health, plan), answer, text_only)

        return start_failover

    def _blocking_items(
        self, messages: Sequence[MessageLike], plan: Plan, answer: Answer, text_only: bool
    ) -> BlockingIterator[Any]:
        """A blocking iterator over a call's items, on the transport the plan names."""
        messages, plan = _prepare(messages, plan)
        start = self._source(messages, plan, answer, text_only)
        items: BlockingIterator[Any]
        if plan[0].transport == "requests":
            items = BlockingStream(start)
        else:
            self._pool.use_loop_thread()
            items = SyncStream(start)
        self._pool.track(items)
        return items

    def _async_items(
        self, messages: Sequence[MessageLike], plan: Plan, answer: Answer, text_only: bool
    ) -> AsyncGenerator[Any, None]:
        messages, plan = _prepare(messages, plan)
        return self._source(messages, _on_aiohttp(plan), answer, text_only, answer_items)()

    def _converse(
        self, messages: List[Dict[str, str]], plan: Plan, on_result: Callable[[ChatResult], None]
    ) -> ChatStream[str]:
        """A ``Conversation``'s blocking turn."""
        self._check_open()
        answer = Answer()
        return ChatStream(self._blocking_items(messages, plan, answer, True), answer, on_result)

    def _aconverse(
        self, messages: List[Dict[str, str]], plan: Plan, on_result: Callable[[ChatResult], None]
    ) -> AsyncChatStream[str]:
        """A ``Conversation``'s async turn (always on aiohttp)."""
        self._check_open()
        answer = Answer()
        return AsyncChatStream(self._async_items(messages, plan, answer, True), answer, on_result)

    async def _collect(self, messages: Sequence[MessageLike], plan: Plan) -> str:
        """The whole text of one answer, on the running loop."""
        messages, plan = _prepare(messages, plan)
        batches = self._source(messages, _on_aiohttp(plan), Answer(), True)()
        parts: List[str] = []
        try:
            async for texts in batches:
                parts += texts
        finally:
            await batches.aclose()
        return "".join(parts)

    def _discover(
        self, page_url: str, options: CallOptions, bot_id: Optional[str]
    ) -> Coroutine[Any, Any, Tuple[Site, ChatbotConfig]]:
        """Read a chatbot page with this client's pool (its nonce joins the pool's)."""
        transport = self._pool.transport(options.transport)
        return discover(transport, self._pool.credentials, page_url, options, bot_id)

    def _run(self, coro: Any, transport: TransportName) -> Any:
        """Run a coroutine of this client's to its end, blocking, on ``transport``."""
        if transport == "requests":
            return run_blocking(coro)
        self._pool.use_loop_thread()
        return loop_thread.run(coro)


class Client(_BaseClient):
    """A client for blocking code: ask, stream, converse.

    ``url`` names the site (a URL or a ``Site``; default ``$OPCHATGPTS_URL``, else the
    former opchatgpts.net). Every other keyword is also a per-call keyword of each method,
    with the same meaning (see README.rst, Configuration). ``max_connections`` bounds the
    pool. Each call also takes ``files=``, files to send with its message (README.rst,
    Images and files); a message may also be OpenAI's list of text and image parts. Use it
    in a ``with`` block, or call ``close()``::

        with opchatgpts.Client(url="https://example.com") as client:
            print(client.ask("Hello"))
    """

    def with_options(self, **changes: Unpack[CallKwargs]) -> "Client":
        """A copy with some settings changed, sharing this client's connections and nonces.

        Closing the copy does not close the pool; closing this client does (for both).
        """
        return self._copy(Client, changes)

    def ask(self, prompt_or_messages: PromptOrMessages, **options: Unpack[CallKwargs]) -> str:
        """Send a prompt (or a conversation) and return the whole answer."""
        with self.stream(prompt_or_messages, **options) as parts:
            return "".join(parts)

    def stream(self, prompt_or_messages: PromptOrMessages, **options: Unpack[CallKwargs]) -> ChatStream[str]:
        """Stream the answer's text. Iterate it; ``result`` holds the final ``ChatResult``
        afterwards. Nothing is sent until the first item is read."""
        answer = Answer()
        items = self._blocking_items(as_messages(prompt_or_messages), self._plan(options), answer, True)
        return ChatStream(items, answer)

    def stream_events(
        self, prompt_or_messages: PromptOrMessages, **options: Unpack[CallKwargs]
    ) -> ChatStream[Event]:
        """Stream the answer as typed events: ``TextDelta``, ``LiveEvent`` (thinking, tool
        calls, status...) and ``Done``; ``result`` holds the final ``ChatResult``."""
        answer = Answer()
        items = self._blocking_items(as_messages(prompt_or_messages), self._plan(options), answer, False)
        return ChatStream(items, answer)

    def conversation(
        self, messages: Sequence[MessageLike] = (), **options: Unpack[CallKwargs]
    ) -> Conversation:
        """A ``Conversation``: one chat id and the growing history, on this client."""
        return Conversation(self, messages, **options)

    @classmethod
    def from_page(cls, page_url: str, **settings: Unpack[ClientSettings]) -> "Client":
        """A client for the chatbot shown on ``page_url``.

        Reads the settings the plugin prints into the page (bot id, custom id, context id,
        REST root, nonce, session, message limit). ``bot_id=`` picks one chatbot when the
        page has several. The other keywords are the constructor's.
        """
        client = cls(**settings)
        try:
            options = client.options
            site, bot = client._run(
                client._discover(page_url, options, settings.get("bot_id")), options.transport
            )
        except BaseException:
            client.close()
            raise
        client._sites = (_on_page(client.options, site, settings),)
        client.chatbot = bot
        return client

    def close(self) -> None:
        """Release this client's connections (and its share of the loop thread). Calls still
        under way end with ``ClientClosedError``. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()



class AsyncClient(_BaseClient):
    """The client for asyncio: the same settings and methods as ``Client``, awaited.

    ::

        async with opchatgpts.AsyncClient(url="https://example.com") as client:
            print(await client.ask("Hello"))
            async with client.stream("Tell me more") as stream:
                async for text in stream:
                    print(text, end="")
    """

    def __init__(self, url: Optional[SiteLike] = None, **settings: Unpack[AsyncClientSettings]) -> None:
        if "transport" in settings:
            raise TypeError("AsyncClient runs on aiohttp: transport= is for the blocking Client")
        super().__init__(url, **settings)

    def with_options(self, **changes: Unpack[AsyncCallKwargs]) -> "AsyncClient":
        """A copy with some settings changed, sharing this client's connections and nonces.

        Closing the copy does not close the pool; closing this client does (for both).
        """
        if "transport" in changes:
            raise TypeError("AsyncClient runs on aiohttp: transport= is for the blocking Client")
        return self._copy(AsyncClient, changes)

    async def ask(self, prompt_or_messages: PromptOrMessages, **options: Unpack[AsyncCallKwargs]) -> str:
        """Send a prompt (or a conversation) and return the whole answer."""
        return await self._collect(as_messages(prompt_or_messages), self._plan(options))

    def stream(
        self, prompt_or_messages: PromptOrMessages, **options: Unpack[AsyncCallKwargs]
    ) -> AsyncChatStream[str]:
        """Stream the answer's text: ``async for`` it (or ``async with`` it)."""
        answer = Answer()
        items = self._async_items(as_messages(prompt_or_messages), self._plan(options), answer, True)
        return AsyncChatStream(items, answer)

    def stream_events(
        self, prompt_or_messages: PromptOrMessages, **options: Unpack[AsyncCallKwargs]
    ) -> AsyncChatStream[Event]:
        """Stream the answer as typed events; ``result`` holds the final ``ChatResult``."""
        answer = Answer()
        items = self._async_items(as_messages(prompt_or_messages), self._plan(options), answer, False)
        return AsyncChatStream(items, answer)

    def conversation(
        self, messages: Sequence[MessageLike] = (), **options: Unpack[AsyncCallKwargs]
    ) -> Conversation:
        """A ``Conversation`` on this client (``await conversation.ask_async(...)``)."""
        return Conversation(self, messages, **options)

    @classmethod
    async def from_page(cls, page_url: str, **settings: Unpack[AsyncClientSettings]) -> "AsyncClient":
        """The async twin of ``Client.from_page``."""
        client = cls(**settings)
        try:
            site, bot = await client._discover(page_url, client.options, settings.get("bot_id"))
        except BaseException:
            await client.aclose()
            raise
        client._sites = (_on_page(client.options, site, settings),)
        client.chatbot = bot
        return client

    async def aclose(self) -> None:
        """Release this client's connections. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            await self._pool.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()



def _prepare(messages: Sequence[MessageLike], plan: Plan) -> Tuple[Sequence[MessageLike], Plan]:
    """A call's messages and plan, checked before any I/O: the images of the last user
    turn (OpenAI's list-of-parts content) join the call's files, ahead of ``files=``, and
    every message keeps its text only."""
    first = plan[0]
    plain, images = split_image_parts(messages, first.max_file_bytes)
    if images:
        plan = tuple(dataclasses.replace(options, files=images + options.files) for options in plan)
    split_messages(plain, first.site, allow_empty=bool(plan[0].files))
    return plain, plan


def _on_aiohttp(plan: Plan) -> Plan:
    """The plan of an async call: on aiohttp, whatever a blocking client's transport is."""
    if all(options.transport == "aiohttp" for options in plan):
        return plan
    return tuple(dataclasses.replace(options, transport="aiohttp") for options in plan)


def _site(entry: Any) -> Site:
    return entry if isinstance(entry, Site) else Site.for_url(entry)


def _site_list(sites: Sequence[SiteLike]) -> List[SiteLike]:
    if isinstance(sites, (str, Site)) or not isinstance(sites, Sequence):
        raise TypeError("sites must be a list of URLs or Sites")
    if not sites:
        raise ValueError("sites is empty: name at least one site")
    return list(sites)


def _on_page(options: CallOptions, site: Site, settings: Mapping[str, Any]) -> CallOptions:
    """The options of a client from a page: the page's site, then the caller's own site
    keywords over it (``bot_id`` only chose the chatbot)."""
    changes: Dict[str, Any] = {"url": site}
    changes.update({k: settings[k] for k in SITE_KEYS if k != "bot_id" and settings.get(k) is not None})
    return options.merge(changes)

