"""The bridge as an aiohttp application: OpenAI's routes over one shared ``AsyncClient``.

Every request is answered by a call of the same client, so all of them share its connection
pool, cookies and nonces. A call runs in a task of its own while the handler watches the
caller: if the caller goes away, the task is cancelled, which closes the upstream call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional
from urllib.parse import urlsplit

from aiohttp import web

from .._client import AsyncClient
from .._exceptions import OpchatgptsError
from .._models import Event, TextDelta
from .._stream import AsyncChatStream
from ._shapes import (
    DONE,
    BridgeError,
    ChatRequest,
    ChunkEncoder,
    completion,
    error_event,
    error_for,
    model_list,
    model_object,
    parse_chat_request,
    usage_of,
)

__all__ = ["create_app", "end_open_answers", "DRAIN_TIMEOUT"]

log = logging.getLogger("opchatgpts.bridge")

#: How long shutting down waits for open answers before ending them (seconds).
DRAIN_TIMEOUT = 5.0
#: How often an answer under way checks that its caller is still connected (seconds).
DISCONNECT_POLL = 0.1
#: The largest request body accepted (a long conversation).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: How many pieces of text may wait for a slow caller before reading from the site pauses.
QUEUED_TEXTS = 1024
_END = object()

_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tells a proxy in front not to buffer the stream
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _shutting_down() -> BridgeError:
    # A new one each time: an exception raised again keeps growing its traceback.
    return BridgeError(503, "the bridge is shutting down", type="server_error", code="shutting_down")


def create_app(
    client: AsyncClient, *, api_key: Optional[str] = None, drain_timeout: float = DRAIN_TIMEOUT
) -> web.Application:
    """An aiohttp application that serves ``client``'s chatbot as an OpenAI-compatible API.

    Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{id}``.
    With ``api_key``, every request needs ``Authorization: Bearer <api_key>``; without it,
    any key (or none) is accepted. On shutdown the application stops taking chat requests,
    waits up to ``drain_timeout`` seconds for the answers under way, then ends the rest
    with an error. The client stays the caller's to close.

    Run it with ``aiohttp.web.run_app(create_app(client))``, or mount it in your own
    application with ``add_subapp``.
    """
    if not isinstance(client, AsyncClient):
        raise TypeError(f"create_app needs an opchatgpts.AsyncClient, not {type(client).__name__}")
    bridge = _Bridge(client, api_key, drain_timeout)
    app = web.Application(middlewares=[bridge.middleware], client_max_size=MAX_BODY_BYTES)
    app[_BRIDGE] = bridge
    app.router.add_post("/v1/chat/completions", bridge.chat_completions)
    app.router.add_get("/v1/models", bridge.list_models)
    app.router.add_get("/v1/models/{model:.+}", bridge.get_model)
    app.on_shutdown.append(bridge.drain)
    return app


def end_open_answers(app: web.Application) -> None:
    """End every answer under way now, with an error event (or a 503 if it had not started)."""
    app[_BRIDGE].end_all()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _json_response(value: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> web.Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return web.Response(
        body=body, status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def _error_response(error: BridgeError) -> web.Response:
    return _json_response(error.body(), error.status, error.headers)


def _caller_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class _Bridge:
    """The state behind the routes: the client, the key, and the answers under way."""

    def __init__(self, client: AsyncClient, api_key: Optional[str], drain_timeout: float) -> None:
        self.client = client
        self._key = _digest(api_key) if api_key else None
        self._drain_timeout = drain_timeout
        site = client.site
        self.model_id = site.custom_id or site.bot_id or "default"
        owner = urlsplit(site.url).hostname or "ai-engine"
        self._model = model_object(self.model_id, int(time.time()), owner)
        self._answers: Dict["asyncio.Task[web.StreamResponse]", _Answer] = {}
        self.closing = False

    # -- every route ------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The API key check, and OpenAI-shaped errors for every failure of a route."""
        try:
            self._authorize(request)
            return await handler(request)
        except BridgeError as exc:
            return _error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = f"{exc.reason} ({request.method} {request.path})"
            kind = "not_found_error" if exc.status == 404 else "invalid_request_error"
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return _error_response(BridgeError(exc.status, message, type=kind, headers=headers))

    def _authorize(self, request: web.Request) -> None:
        if self._key is None:
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token.strip():
            raise BridgeError(
                401,
                "You didn't provide an API key: send it as 'Authorization: Bearer <key>'",
                type="invalid_request_error", code="invalid_api_key", headers=challenge,
            )  # fmt: skip
        # Digests of equal length, compared in constant time: neither the key nor its
        # length leaks through timing.
        if not hmac.compare_digest(_digest(token.strip()), self._key):
            raise BridgeError(
                401, "Incorrect API key provided", type="invalid_request_error", code="invalid_api_key",
                headers=challenge,
            )  # fmt: skip

    # -- models -----------------------------------------------------------------------------

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models``: the bot this bridge serves."""
        return _json_response(model_list([self._model]))

    async def get_model(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models/{id}``."""
        model = request.match_info["model"]
        if model != self.model_id:
            raise BridgeError(
                404, f"The model '{model}' does not exist; this bridge serves '{self.model_id}'",
                type="invalid_request_error", param="model", code="model_not_found",
            )  # fmt: skip
        return _json_response(self._model)

    # -- chat completions -------------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``, streamed or not."""
        if self.closing:
            raise _shutting_down()
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):
            raise BridgeError(400, "the request body is not valid JSON", code="invalid_json") from None
        chat = parse_chat_request(body, self.model_id)
        if chat.ignored:
            log.debug("ignoring the parameters %s", ", ".join(chat.ignored))
        answer = _Answer(self.client, request, chat)
        task = asyncio.ensure_future(answer.run())
        self._answers[task] = answer
        try:
            return await answer.wait(task)
        finally:
            del self._answers[task]

    async def drain(self, app: web.Application) -> None:
        """On shutdown: refuse new chat requests, wait a while for the open ones, end the rest."""
        self.closing = True
        tasks = list(self._answers)
        if tasks:
            log.info("waiting up to %gs for %d open answer(s)", self._drain_timeout, len(tasks))
            await asyncio.wait(tasks, timeout=self._drain_timeout)
        self.end_all()

    def end_all(self) -> None:
        """End every answer under way (see ``end_open_answers``)."""
        for task in list(self._answers):
            task.cancel()  # its handler ends what the caller was sent (_Answer.wait)


class _Answer:
    """One chat completion: the upstream call in a task, and what the caller has been sent."""

    def __init__(self, client: AsyncClient, request: web.Request, chat: ChatRequest) -> None:
        self.client = client
        self.request = request
        self.chat = chat
        self.response: Optional[web.StreamResponse] = None  # once the stream started

    async def wait(self, task: "asyncio.Task[web.StreamResponse]") -> web.StreamResponse:
        """Wait for ``task`` while watching the caller; cancel it when the caller leaves."""
        try:
            while not task.done():
                await asyncio.wait((task,), timeout=DISCONNECT_POLL)
                if not task.done() and _caller_gone(self.request):
                    log.debug("the caller left: closing its upstream call")
                    task.cancel()
                    await asyncio.wait((task,))
                    return self.response or web.Response()
        except asyncio.CancelledError:  # the server cancelled this handler
            task.cancel()
            await asyncio.wait((task,))
            raise
        if task.cancelled():  # by end_all: the bridge is shutting down
            return await self._shut()
        error = task.exception()
        if error is None:
            return task.result()
        if isinstance(error, ConnectionError) or self.response is not None:
            raise error  # the caller left, or the stream had started: aiohttp closes it
        log.error("the bridge failed", exc_info=error)
        return _error_response(error_for(error))

    async def _shut(self) -> web.StreamResponse:
        response = self.response
        if response is None:
            return _error_response(_shutting_down())
        if not _caller_gone(self.request):
            await response.write(ChunkEncoder.line(_shutting_down().body()))
            await response.write_eof()
        return response

    async def run(self) -> web.StreamResponse:
        """The task: call the site and answer the caller."""
        try:
            events = self.client.stream_events(self.chat.messages)
        except OpchatgptsError as exc:  # the messages, or a closed client: before any I/O
            return _error_response(error_for(exc))
        async with events:
            if self.chat.stream:
                return await self._stream(events)
            return await self._whole(events)

    async def _whole(self, events: AsyncChatStream[Event]) -> web.StreamResponse:
        try:
            async for _ in events:
                pass
        except OpchatgptsError as exc:
            log.info("the site failed: %s: %s", type(exc).__name__, exc)
            return _error_response(error_for(exc))
        chat = self.chat
        usage = usage_of(events.result, chat.messages, events.text)
        return _json_response(completion(_new_id(), int(time.time()), chat.model, events.text, usage))

    async def _stream(self, events: AsyncChatStream[Event]) -> web.StreamResponse:
        arrivals = _Arrivals(events)
        try:
            return await self._relay(arrivals, events)
        finally:
            await arrivals.aclose()

    async def _relay(self, arrivals: "_Arrivals", events: AsyncChatStream[Event]) -> web.StreamResponse:
        chat = self.chat
        # Nothing is sent before the first text: until then, a failure gets its HTTP status.
        try:
            texts = await arrivals.get()
        except OpchatgptsError as exc:
            log.info("the site failed: %s: %s", type(exc).__name__, exc)
            return _error_response(error_for(exc))
        encoder = ChunkEncoder(_new_id(), int(time.time()), chat.model, chat.include_usage)
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(self.request)
        self.response = response
        data = encoder.role()
        try:
            while texts:
                # One chunk per piece of text, all the pieces that have arrived in one write.
                await response.write(data + encoder.texts(texts))
                data = b""
                texts = await arrivals.get()
        except OpchatgptsError as exc:
            log.info("the answer broke: %s: %s", type(exc).__name__, exc)
            await response.write(data + error_event(exc))  # and no [DONE]: the answer is not complete
            await response.write_eof()
            return response
        data += encoder.stop()
        if chat.include_usage:
            data += encoder.usage(usage_of(events.result, chat.messages, events.text))
        await response.write(data + DONE)
        await response.write_eof()
        return response


class _Arrivals:
    """An answer's text, read from the site by a task of its own and handed over in the groups
    in which it arrived: what one network read brought goes out in one write, not in a write
    (and a system call) per piece. Nothing waits for more to come."""

    def __init__(self, events: AsyncChatStream[Event]) -> None:
        self._items: Deque[object] = deque()  # texts, then _END or the error that ended the answer
        self._end: object = None
        self._ready: Optional["asyncio.Future[None]"] = None  # the caller waits for items
        self._room: Optional["asyncio.Future[None]"] = None  # the reader waits for a slow caller
        self._reader = asyncio.ensure_future(self._read(events))

    def _put(self, item: object) -> None:
        self._items.append(item)
        ready = self._ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    async def _read(self, events: AsyncChatStream[Event]) -> None:
        try:
            async for event in events:
                if type(event) is TextDelta and event.text:
                    self._put(event.text)
                    if len(self._items) >= QUEUED_TEXTS:
                        self._room = asyncio.get_running_loop().create_future()
                        await self._room
        except Exception as exc:  # the caller's to raise, after the text before it
            self._put(exc)
        else:
            self._put(_END)

    async def get(self) -> List[str]:
        """The texts that arrived since the last call, waiting for one; ``[]`` once the answer
        is complete. Raises the error that ended the answer, after the texts before it."""
        if not self._items and self._end is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._ready
            finally:
                self._ready = None
        texts: List[Any] = list(self._items)
        self._items.clear()
        if texts and type(texts[-1]) is not str:
            self._end = texts.pop()
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)
        if not texts and isinstance(self._end, BaseException):
            raise self._end
        return texts

    async def aclose(self) -> None:
        """Stop reading (the answer's stream then closes its connection)."""
        self._reader.cancel()
        await asyncio.wait((self._reader,))


def _new_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


_BRIDGE = web.AppKey("opchatgpts_bridge", _Bridge)
