"""A local emulator of the AI Engine WordPress plugin's chat REST protocol.

It answers like the recorded plugin versions in ``tests/captures/`` do, one
*generation* at a time:

- ``"open"``: 1.9.x, no nonce needed (what opchatgpts.net ran);
- ``"nonce"``: 2.0.1-2.4.3, the guest nonce is printed into the chatbot page;
- ``"session"``: 2.4.4+ and 3.x, ``POST mwai/v1/start_session`` hands out the nonce.

The stand-in model answers ``Echo: <newMessage>``, one word per ``live`` event,
and fails on purpose when the message contains ``FAIL_UPSTREAM``, ``FAIL_429`` or
``FAIL_MIDSTREAM``; ``SLOW`` makes it stream one word every half second.

This module depends on the standard library and aiohttp only, so that it can be
used to test any client, not just this package's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from aiohttp import web
from multidict import CIMultiDict

__all__ = ["GENERATIONS", "Emulator", "Faults", "RecordedRequest"]

GENERATIONS = ("open", "nonce", "session")
"""The plugin generations the emulator can play: 1.9.x, 2.0.1-2.4.3, 2.4.4+/3.x."""

SUBMIT_ROUTE = "/mwai-ui/v1/chats/submit"
"""The chat route, below the REST root."""
START_SESSION_ROUTE = "/mwai/v1/start_session"
"""The route that hands a guest its nonce, session generation only."""

REJECTED = "Sorry, your query has been rejected."
"""The plugin's refusal text."""
SLOW_DELTA_DELAY = 0.5
"""Seconds between deltas when the message contains ``SLOW`` (as recorded)."""
BOT_MESSAGE_LIMIT = 512
"""The bot's ``textInputMaxLength``, enforced by the server on 3.x only."""
SERVER_MESSAGE_LIMIT = 65536
"""The plugin's hard cap on ``newMessage``, in bytes."""

_INSTRUCTIONS = "Converse as if you were an AI assistant. Be friendly, creative."

# WordPress core's REST answers, byte for byte as recorded.
_INVALID_NONCE = {
    "code": "rest_cookie_invalid_nonce",
    "message": "Cookie check failed",
    "data": {"status": 403},
}
_NOT_ALLOWED = {
    "code": "rest_forbidden",
    "message": "Sorry, you are not allowed to do that.",
    "data": {"status": 401},
}
_INVALID_JSON = {
    "code": "rest_invalid_json",
    "message": "Invalid JSON body passed.",
    "data": {"status": 400, "json_error_code": 4, "json_error_message": "Syntax error"},
}
_NO_ROUTE = {
    "code": "rest_no_route",
    "message": "No route was found matching the URL and request method.",
    "data": {"status": 404},
}

_JSON_TYPE = "application/json; charset=UTF-8"
_EVENT_STREAM_TYPE = "text/event-stream;charset=UTF-8"
_HTML_TYPE = "text/html; charset=UTF-8"

# Stand-in upstream failures: trigger -> (message, code, type).
_UPSTREAM_FAILURES = {
    "FAIL_UPSTREAM": (
        "The server had an error while processing your request. (fake upstream: FAIL_UPSTREAM)",
        "fake_upstream_failure",
        "server_error",
    ),
    "FAIL_429": (
        "Rate limit reached for requests (fake upstream: FAIL_429)",
        "rate_limit_exceeded",
        "requests",
    ),
}
_MIDSTREAM_TRIGGER = "FAIL_MIDSTREAM"
_MIDSTREAM_ERROR = "cURL error 18: transfer closed with outstanding read data remaining"
_MIDSTREAM_DELTAS = 2  # live events sent before the recorded upstream cut
# How each generation names the upstream in its error texts (as recorded).
_UPSTREAM_PREFIX = {
    "open": "From Azure: ",
    "nonce": "From OpenAI: ",
    "session": "RealPeer: ",
}

_EMULATED_FAILURE = "Emulated failure"
_MALFORMED_EVENT = b'data: {"type":"live","da\n\n'


@dataclass
class Faults:
    """Misbehaviour knobs; all off by default. Apply to chats/submit only.

    The event knobs (``delay``, ``drop_after``, ``omit_end``, ``malformed_after``,
    ``error_after``) act on ``text/event-stream`` answers. On a one-shot JSON
    answer, ``delay`` sleeps once before answering and ``drop_after=0`` resets the
    connection instead of answering; the others do nothing.
    """

    delay: float = 0.0
    """Seconds to sleep before each streamed event."""
    drop_after: int | None = None
    """After k events, abort the TCP connection (a reset, no chunked terminator)."""
    omit_end: bool = False
    """Finish the body cleanly but never send the ``end`` event."""
    malformed_after: int | None = None
    """After k events, send a truncated ``data:`` line, then end the body."""
    error_after: int | None = None
    """After k live events, send an ``error`` event ("Emulated failure") and end the body."""
    status: int | None = None
    """Answer chats/submit with this HTTP status instead (a proxy or CDN in front) ..."""
    body: bytes | str = b""
    """... and this body ..."""
    content_type: str = _JSON_TYPE
    """... of this content type."""
    retry_after: str | None = None
    """Adds a ``Retry-After`` header to the status answer."""
    times: int | None = None
    """The status fault applies to this many requests, then the server behaves (None = always)."""


@dataclass
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header values by name; lookups ignore case, repeated headers are joined with ", "."""
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


_T = TypeVar("_T")


class _Headers(dict[str, str]):
    """A dict of header values keyed by lower-case name, whose lookups ignore case."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for name, value in items:
            key = name.lower()
            self[key] = f"{self[key]}, {value}" if key in self else value

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    @overload
    def get(self, key: str, default: None = None, /) -> str | None: ...

    @overload
    def get(self, key: str, default: str, /) -> str: ...

    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...

    def get(self, key: str, default: object = None, /) -> object:
        return super().get(key.lower(), default)


@dataclass
class _Event:
    """One event of a planned stream, and how long the model takes to produce it."""

    data: dict[str, Any]
    pause: float = 0.0

    @property
    def kind(self) -> str:
        return str(self.data["type"])


@dataclass
class _Context:
    """What the checks before the plugin's code learned about a REST request."""

    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    """Headers every answer carries from here on (X-WP-Nonce, Set-Cookie, Link)."""
    new_token: str | None = None
    """The nonce to hand back as ``new_token`` (session generation, previous-tick nonce)."""


def _php_json(value: Any) -> str:
    """Encode ``value`` like PHP's ``json_encode`` with default flags.

    Compact separators, ``/`` escaped as ``\\/`` and non-ASCII as ``\\uXXXX``.
    """
    # "/" only ever occurs inside JSON strings, so a plain replace is safe.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace(
        "/", "\\/"
    )


def _html_attr(text: str) -> str:
    """Escape ``text`` for a single-quoted HTML attribute like WordPress's esc_attr."""
    for raw, escaped in (
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ('"', "&quot;"),
        ("'", "&#039;"),
    ):
        text = text.replace(raw, escaped)
    return text


def _php_truthy(value: Any) -> bool:
    """PHP's idea of truth: "" and "0" are false, so are null, 0, false and []."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _php_string(value: Any) -> str:
    """PHP's string conversion for the scalar values a JSON body can hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, (int, float)):
        return str(value)
    return ""


def _is_json_content_type(value: str) -> bool:
    """Whether WordPress would parse a body of this Content-Type as JSON."""
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _reject_constant(name: str) -> Any:
    # PHP's json_decode rejects NaN and Infinity, which Python's json accepts.
    raise ValueError(f"not JSON: {name}")


def _deltas(reply: str) -> list[str]:
    """Split a reply into the stand-in model's deltas: "Echo:", " hello", " world"."""
    first, *rest = reply.split(" ")
    return [first] + [" " + word for word in rest]


def _word_count(value: Any) -> int:
    return len(value.split()) if isinstance(value, str) else 0


def _new_nonce(*taken: str) -> str:
    """A fresh 10-hex-digit nonce, different from the ones in ``taken``."""
    while True:
        nonce = secrets.token_hex(5)
        if nonce not in taken:
            return nonce


def _event_line(data: dict[str, Any]) -> bytes:
    return f"data: {_php_json(data)}\n\n".encode("ascii")


class Emulator:
    """The AI Engine plugin of one generation, as an aiohttp application.

    State lives here and is shared by every application :meth:`make_app` returns:

    - ``faults``: the :class:`Faults` applied to chats/submit; assign a new one
      at any time;
    - ``requests``: every request received, on any route, in order;
    - ``disconnects``: event streams whose client went away before they finished;
    - ``completed_streams``: event streams whose body was finished cleanly;
    - ``current_nonce`` and ``previous_nonce``: the two nonces WordPress accepts
      (10 lowercase hex digits each; see :meth:`rotate_nonce`).
    """

    def __init__(
        self,
        generation: str = "open",
        *,
        rest_prefix: str = "/wp-json",
        page_path: str = "/chatgpt-free-use/",
        bot_ids: Iterable[str] = ("default",),
        context_id: int = 4,
        delta_delay: float = 0.0,
    ) -> None:
        """Configure the emulated site.

        ``rest_prefix`` is the REST root below the site root (``/blog/wp-json`` for
        a sub-directory install); ``page_path`` is the chatbot page; ``bot_ids``
        are the chatbots that exist (the page shows the first); ``delta_delay`` is
        the time the model takes for each delta.
        """
        if generation not in GENERATIONS:
            raise ValueError(
                f"generation must be one of {GENERATIONS}, not {generation!r}"
            )
        self.generation = generation
        if not rest_prefix.strip("/"):
            raise ValueError("rest_prefix must name a path below the site root")
        self.rest_prefix = "/" + rest_prefix.strip("/")
        self.page_path = page_path if page_path.startswith("/") else "/" + page_path
        self.bot_ids: tuple[str, ...] = tuple(bot_ids)
        if not self.bot_ids:
            raise ValueError("bot_ids must name at least one chatbot")
        self.context_id = context_id
        self.delta_delay = delta_delay
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.completed_streams = 0
        self.current_nonce = _new_nonce()
        self.previous_nonce = _new_nonce(self.current_nonce)
        self._submits = 0
        self._responses = 0
        self._last_session_id = ""

    # ---- nonces and counters -------------------------------------------------

    def rotate_nonce(self) -> None:
        """Start a new nonce tick: the current nonce becomes the previous one."""
        self.previous_nonce = self.current_nonce
        self.current_nonce = _new_nonce(self.previous_nonce)

    def expire_nonces(self) -> None:
        """Invalidate both the current and the previous nonce."""
        old = (self.current_nonce, self.previous_nonce)
        self.current_nonce = _new_nonce(*old)
        self.previous_nonce = _new_nonce(self.current_nonce, *old)

    def submit_count(self) -> int:
        """Number of chats/submit requests received."""
        return self._submits

    def _nonce_state(self, nonce: str | None) -> str:
        if nonce is None:
            return "none"
        if nonce == self.current_nonce:
            return "current"
        if nonce == self.previous_nonce:
            return "previous"
        return "invalid"

    def _new_session_id(self) -> str:
        """A 13-hex-digit id in the style of PHP's uniqid()."""
        now = time.time()
        session_id = f"{int(now):08x}{int(now % 1 * 1_000_000):05x}"
        if session_id <= self._last_session_id:
            session_id = f"{int(self._last_session_id, 16) + 1:013x}"
        self._last_session_id = session_id
        return session_id

    # ---- the application -----------------------------------------------------

    def make_app(self) -> web.Application:
        """An aiohttp application serving the page, the REST routes and 404s."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=_Headers(request.headers.items()),
                body=body,
            )
        )
        route = self._rest_route(request)
        if route is not None:
            return await self._rest(request, route, body)
        if request.path == self.page_path and request.method in ("GET", "HEAD"):
            return self._page(request)
        return web.Response(
            status=404,
            body=b"<!DOCTYPE html>\n<html><head><title>Page not found</title></head>"
            b"<body><h1>Not found</h1></body></html>\n",
            headers={"Content-Type": _HTML_TYPE},
        )

    def _rest_route(self, request: web.Request) -> str | None:
        """The REST route a request addresses, from the REST root or ``?rest_route=``."""
        if request.path == "/" and "rest_route" in request.query:
            route = request.query["rest_route"]
        elif request.path == self.rest_prefix or request.path.startswith(
            self.rest_prefix + "/"
        ):
            route = request.path[len(self.rest_prefix) :]
        else:
            return None
        return "/" + route.strip("/")

    def _site_root(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _link_header(self, request: web.Request) -> str:
        return (
            f'<{self._site_root(request)}{self.rest_prefix}/>; rel="https://api.w.org/"'
        )

    async def _rest(
        self, request: web.Request, route: str, body: bytes
    ) -> web.StreamResponse:
        if route == SUBMIT_ROUTE:
            self._submits += 1
            proxied = self._status_fault()
            if proxied is not None:
                return proxied
        context = _Context()
        context.headers["Link"] = self._link_header(request)

        # WordPress core checks a nonce for every REST request that carries one
        # (header or _wpnonce), on every plugin version; a good one is answered
        # with a fresh X-WP-Nonce header.
        nonce = request.query.get("_wpnonce", request.headers.get("X-WP-Nonce"))
        state = self._nonce_state(nonce)
        if state == "invalid":
            context.headers["Expires"] = "Wed, 11 Jan 1984 05:00:00 GMT"
            context.headers["Cache-Control"] = "no-cache, must-revalidate, max-age=0"
            return await self._send_json(request, 403, _INVALID_NONCE, context)
        if state != "none":
            context.headers["X-WP-Nonce"] = self.current_nonce

        if route == SUBMIT_ROUTE and request.method == "POST":
            if self.generation == "session" and state == "previous":
                context.new_token = self.current_nonce
            return await self._submit(request, body, state, context)
        if (
            route == START_SESSION_ROUTE
            and request.method == "POST"
            and self.generation == "session"
        ):
            return await self._start_session(request, context)
        return await self._send_json(request, 404, _NO_ROUTE, context)

    def _status_fault(self) -> web.Response | None:
        faults = self.faults
        if faults.status is None or faults.times == 0:
            return None
        if faults.times is not None:
            faults.times -= 1
        headers = {"Content-Type": faults.content_type}
        if faults.retry_after is not None:
            headers["Retry-After"] = faults.retry_after
        body = (
            faults.body.encode("utf-8") if isinstance(faults.body, str) else faults.body
        )
        return web.Response(status=faults.status, body=body, headers=headers)

    async def _start_session(
        self, request: web.Request, context: _Context
    ) -> web.StreamResponse:
        headers: CIMultiDict[str] = CIMultiDict()
        if "PHPSESSID" not in request.cookies:
            alphabet = "0123456789abcdefghijklmnopqrstuv"
            php_session = "".join(secrets.choice(alphabet) for _ in range(26))
            headers.add("Set-Cookie", f"PHPSESSID={php_session}; path=/")
        headers["Expires"] = "Thu, 19 Nov 1981 08:52:00 GMT"
        headers["Cache-Control"] = "no-store, no-cache, must-revalidate"
        headers["Pragma"] = "no-cache"
        headers.extend(context.headers)
        # The plugin keeps a session id it already gave this browser.
        session_id = request.cookies.get("mwai_session_id") or ""
        if not session_id:
            session_id = self._new_session_id()
            headers.add("Set-Cookie", f"mwai_session_id={session_id}; path=/; HttpOnly")
        headers["Allow"] = "POST"
        context.headers = headers
        answer = {
            "success": True,
            "sessionId": session_id,
            "restNonce": self.current_nonce,
        }
        return await self._send_json(request, 200, answer, context)

    # ---- chats/submit ----------------------------------------------------------

    async def _submit(
        self, request: web.Request, body: bytes, nonce_state: str, context: _Context
    ) -> web.StreamResponse:
        params: dict[str, Any] = {}
        # WordPress parses the body only for a JSON content type; anything else
        # leaves the plugin without parameters, and it rejects the query.
        if (
            _is_json_content_type(request.headers.get("Content-Type", ""))
            and body.strip()
        ):
            try:
                decoded = json.loads(body, parse_constant=_reject_constant)
            except ValueError:
                return await self._send_json(request, 400, _INVALID_JSON, context)
            if isinstance(decoded, dict):
                params = decoded
        if self.generation != "open" and nonce_state == "none":
            return await self._send_json(request, 401, _NOT_ALLOWED, context)

        stream = _php_truthy(params.get("stream"))
        bot_id, custom_id = params.get("botId"), params.get("customId")
        message = _php_string(params.get("newMessage"))
        if (
            not (_php_truthy(bot_id) or _php_truthy(custom_id))
            or not message.strip(" \t\n\r\0\x0b")
            or len(message.encode("utf-8")) > SERVER_MESSAGE_LIMIT
        ):
            return await self._send_error_json(request, 403, REJECTED, context)

        if self.generation == "session" and "mwai_session_id" not in request.cookies:
            set_cookie = f"mwai_session_id={self._new_session_id()}; path=/; HttpOnly"
            context.headers.add("Set-Cookie", set_cookie)

        known_bot = _php_truthy(custom_id) or _php_string(bot_id) in self.bot_ids
        too_long = self.generation == "session" and len(message) > BOT_MESSAGE_LIMIT
        if too_long or (not known_bot and self.generation != "session"):
            # Refused before the plugin switched to streaming: a stream request
            # still gets its error event, but as a 200 application/json body.
            if stream:
                return await self._send(
                    request, 200, _event_line(_error(REJECTED)), _JSON_TYPE, context
                )
            return await self._send_error_json(request, 500, REJECTED, context)

        pause = SLOW_DELTA_DELAY if "SLOW" in message else self.delta_delay
        if stream:
            plan = self._plan(message, params, pause, context.new_token)
            return await self._stream(request, self._apply_event_faults(plan), context)
        return await self._one_shot(request, message, params, pause, context)

    def _plan(
        self, message: str, params: dict[str, Any], pause: float, new_token: str | None
    ) -> list[_Event]:
        """The events the stand-in model and the plugin produce for ``message``."""
        for trigger in _UPSTREAM_FAILURES:
            if trigger in message:
                return [_Event(_error(self._upstream_error(trigger, stream=True)))]
        deltas = _deltas("Echo: " + message)
        if _MIDSTREAM_TRIGGER in message:
            lives = [
                _Event({"type": "live", "data": d}, pause)
                for d in deltas[:_MIDSTREAM_DELTAS]
            ]
            cut = _UPSTREAM_PREFIX[self.generation] + _MIDSTREAM_ERROR
            return lives + [_Event(_error(cut))]
        lives = [_Event({"type": "live", "data": d}, pause) for d in deltas]
        end = {
            "type": "end",
            "data": _php_json(self._payload(message, params, deltas, new_token)),
        }
        return lives + [_Event(end)]

    def _apply_event_faults(self, plan: list[_Event]) -> list[_Event]:
        faults = self.faults
        if faults.error_after is not None:
            lives = 0
            for index, event in enumerate(plan):
                if lives == faults.error_after:
                    plan = plan[:index] + [_Event(_error(_EMULATED_FAILURE))]
                    break
                lives += event.kind == "live"
        if faults.omit_end:
            plan = [event for event in plan if event.kind != "end"]
        return plan

    def _upstream_error(self, trigger: str, *, stream: bool) -> str:
        """The error text the recorded plugin versions give for a failed upstream call."""
        prefix = _UPSTREAM_PREFIX[self.generation]
        if trigger == _MIDSTREAM_TRIGGER:
            return prefix + _MIDSTREAM_ERROR
        message, code, kind = _UPSTREAM_FAILURES[trigger]
        if stream and self.generation == "open":
            return f"{prefix}Error {code}: {message}"
        if stream:
            return f"{prefix}Error: {message} ({code}) ({kind})"
        if self.generation == "session":
            # 3.x quotes the upstream's JSON error body as the stand-in sent it.
            upstream = {
                "error": {"message": message, "type": kind, "param": None, "code": code}
            }
            return prefix + json.dumps(upstream)
        return prefix + message

    def _payload(
        self,
        message: str,
        params: dict[str, Any],
        deltas: list[str],
        new_token: str | None,
    ) -> dict[str, Any]:
        """The final answer object: the ``end`` event's data, or the one-shot JSON.

        ``new_token``, when given, is the last key (3.x nonce rotation).
        """
        history = params.get("messages")
        prompt_tokens = _word_count(_INSTRUCTIONS) + _word_count(message)
        if isinstance(history, list):
            prompt_tokens += sum(
                _word_count(m.get("content")) for m in history if isinstance(m, dict)
            )
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(deltas),
            "total_tokens": prompt_tokens + len(deltas),
        }
        reply = "".join(deltas)
        if self.generation != "session":
            return {"success": True, "reply": reply, "images": None, "usage": usage}
        self._responses += 1
        usage.update({"price": None, "queries": 1, "accuracy": "estimated"})
        payload: dict[str, Any] = {
            "success": True,
            "reply": reply,
            "images": None,
            "actions": [],
            "shortcuts": [],
            "blocks": [],
            "usage": usage,
            "responseId": f"chatcmpl-emu{self._responses:06d}",
        }
        if new_token is not None:
            payload["new_token"] = new_token
        return payload

    async def _one_shot(
        self,
        request: web.Request,
        message: str,
        params: dict[str, Any],
        pause: float,
        context: _Context,
    ) -> web.StreamResponse:
        deltas = _deltas("Echo: " + message)
        # The whole answer is produced before anything is sent.
        if not await _pause(request, self.faults.delay + pause * len(deltas)):
            self.disconnects += 1
            return web.Response()
        if self.faults.drop_after == 0:
            _reset(request)
            return web.Response()
        for trigger in (*_UPSTREAM_FAILURES, _MIDSTREAM_TRIGGER):
            if trigger in message:
                error = self._upstream_error(trigger, stream=False)
                return await self._send_error_json(request, 500, error, context)
        payload = self._payload(message, params, deltas, context.new_token)
        return await self._send_json(request, 200, payload, context)

    async def _stream(
        self, request: web.Request, plan: list[_Event], context: _Context
    ) -> web.StreamResponse:
        """Send ``plan`` as an event stream, flushing each event as it is produced."""
        response = web.StreamResponse(status=200, headers=context.headers)
        response.headers["Content-Type"] = _EVENT_STREAM_TYPE
        response.headers["Cache-Control"] = "no-cache"
        response.enable_chunked_encoding()
        faults = self.faults
        try:
            # The trailing None is the point after the last event, where the
            # drop and malformed faults can still strike.
            for sent, event in enumerate([*plan, None]):
                if sent == faults.drop_after:
                    _reset(request)
                    return response
                if sent == faults.malformed_after:
                    await _write(request, response, _MALFORMED_EVENT)
                    break
                if event is None:
                    break
                if not await _pause(request, faults.delay + event.pause):
                    raise ConnectionResetError("client went away")
                # Headers go out together with the first event, as PHP sends them.
                await _write(request, response, _event_line(event.data))
            await response.write_eof()
        except ConnectionResetError:
            self.disconnects += 1
            return response
        except asyncio.CancelledError:
            if _client_gone(request):
                self.disconnects += 1
            raise
        self.completed_streams += 1
        return response

    # ---- answers -------------------------------------------------------------

    async def _send_error_json(
        self, request: web.Request, status: int, message: str, context: _Context
    ) -> web.StreamResponse:
        answer: dict[str, Any] = {"success": False, "message": message}
        if context.new_token is not None:
            answer["new_token"] = context.new_token
        return await self._send_json(request, status, answer, context)

    async def _send_json(
        self, request: web.Request, status: int, answer: Any, context: _Context
    ) -> web.StreamResponse:
        return await self._send(
            request, status, _php_json(answer).encode("ascii"), _JSON_TYPE, context
        )

    async def _send(
        self,
        request: web.Request,
        status: int,
        body: bytes,
        content_type: str,
        context: _Context,
    ) -> web.StreamResponse:
        """Send a whole answer, chunked like PHP behind nginx does."""
        response = web.StreamResponse(status=status, headers=context.headers)
        response.headers["Content-Type"] = content_type
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            await response.write(body)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left; nothing to answer
        return response

    def _page(self, request: web.Request) -> web.Response:
        root = self._site_root(request)
        rest_url = root + self.rest_prefix
        system = _page_system(
            self.generation,
            self.bot_ids[0],
            self.current_nonce,
            self.context_id,
            root,
            rest_url,
        )
        attributes = (
            ("params", _PAGE_PARAMS[self.generation]),
            ("system", system),
            ("theme", _page_theme(self.generation, root)),
        )
        data = "".join(
            f" data-{name}='{_html_attr(_php_json(value))}'"
            for name, value in attributes
        )
        html = (
            "<!DOCTYPE html>\n"
            '<html lang="en-US">\n'
            "<head>\n"
            '\t<meta charset="UTF-8" />\n'
            "<title>ChatGPT Free Use &#8211; AI Engine emulator</title>\n"
            f'<link rel="https://api.w.org/" href="{_html_attr(rest_url)}/" />\n'
            "</head>\n"
            f'<body class="page-template-default page page-id-{self.context_id}">\n'
            f"<div class=\"entry-content\"><div class='mwai-chatbot-container'{data}></div></div>\n"
            "</body>\n"
            "</html>\n"
        )
        headers = {"Content-Type": _HTML_TYPE, "Link": self._link_header(request)}
        return web.Response(body=html.encode("utf-8"), headers=headers)


def _error(message: str) -> dict[str, Any]:
    return {"type": "error", "data": message}


# The chatbot page's data-params, per generation, as recorded.
# fmt: off
_PAGE_PARAMS: dict[str, dict[str, Any]] = {
    "open": {
        "aiName": "AI: ", "userName": "User: ", "guestName": "Guest: ", "textSend": "Send",
        "textClear": "Clear", "textInputPlaceholder": "Type your message...",
        "textInputMaxLength": BOT_MESSAGE_LIMIT, "textCompliance": "",
        "startSentence": "Hi! How can I help you?", "localMemory": True, "themeId": "chatgpt",
        "window": False, "icon": "", "iconText": "", "iconAlt": "AI Chatbot Avatar",
        "iconPosition": "bottom-right", "fullscreen": False, "copyButton": False,
    },
    "nonce": {
        "aiName": "AI: ", "userName": "User: ", "guestName": "Guest: ", "textSend": "Send",
        "textClear": "Clear", "textInputPlaceholder": "Type your message...",
        "textInputMaxLength": BOT_MESSAGE_LIMIT, "textCompliance": "",
        "startSentence": "Hi! How can I help you?", "localMemory": True, "themeId": "chatgpt",
        "window": False, "icon": "", "iconText": "", "iconTextDelay": 1,
        "iconAlt": "AI Engine Chatbot", "iconPosition": "bottom-right", "iconBubble": False,
        "fullscreen": False, "copyButton": False,
    },
    "session": {
        "aiName": "AI: ", "userName": "User: ", "guestName": "Guest: ", "textSend": "Send",
        "textClear": "Clear", "imageUpload": False, "fileUpload": False, "multiUpload": False,
        "maxUploads": 1, "fileUploads": 0, "mode": "chat",
        "textInputPlaceholder": "Type your message...", "textInputMaxLength": BOT_MESSAGE_LIMIT,
        "textCompliance": "", "startSentence": "Hi! How can I help you?", "localMemory": True,
        "themeId": "chatgpt", "window": False, "icon": "", "iconText": "", "iconTextDelay": 1,
        "iconAlt": "AI Engine Chatbot", "iconPosition": "bottom-right", "centerOpen": False,
        "width": "", "openDelay": "", "iconBubble": False, "windowAnimation": "zoom",
        "fullscreen": False, "copyButton": False, "pdfButton": False,
        "headerSubtitle": "Discuss with", "containerType": "standard", "headerType": "standard",
        "messagesType": "standard", "inputType": "standard", "footerType": "standard",
    },
}
# fmt: on


def _page_system(
    generation: str, bot_id: str, nonce: str, context_id: int, root: str, rest_url: str
) -> dict[str, Any]:
    """The chatbot page's data-system, in the recorded key order of each generation."""
    plugin_url = root + "/wp-content/plugins/ai-engine"
    # fmt: off
    if generation == "session":
        return {
            "botId": bot_id, "customId": None, "userData": None, "sessionId": None,
            "restNonce": None, "contextId": context_id, "pluginUrl": plugin_url,
            "restUrl": rest_url, "stream": True, "debugMode": False, "eventLogs": False,
            "speech_recognition": False, "speech_synthesis": False, "typewriter": False,
            "crossSite": False, "actions": [], "blocks": [], "shortcuts": [],
        }
    return {
        "botId": bot_id, "customId": None, "userData": None, "sessionId": "N/A",
        "restNonce": nonce if generation == "nonce" else None, "contextId": context_id,
        "pluginUrl": plugin_url + "/", "restUrl": rest_url, "debugMode": True,
        "typewriter": False, "speech_recognition": False, "speech_synthesis": False,
        "stream": True,
    }


def _page_theme(generation: str, root: str) -> dict[str, Any]:
    """The chatbot page's data-theme."""
    theme: dict[str, Any] = {
        "type": "internal",
        "name": "ChatGPT",
        "themeId": "chatgpt",
        "settings": [],
        "style": "",
    }
    if generation == "session":
        theme["cssUrl"] = root + "/wp-content/plugins/ai-engine/themes/chatgpt.css"
    return theme


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _pause(request: web.Request, seconds: float) -> bool:
    """Sleep ``seconds``, watching the client; False if it went away meanwhile."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not _client_gone(request):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, 0.05))
    return False


async def _write(
    request: web.Request, response: web.StreamResponse, data: bytes
) -> None:
    if not response.prepared:
        await response.prepare(request)
    await response.write(data)


def _reset(request: web.Request) -> None:
    """Abort the connection with a TCP reset (no FIN, no chunked terminator)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger time 0 makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
