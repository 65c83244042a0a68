"""One HTTP response in, events or one typed error out. No I/O.

Any transport drives it: ``error_from_response`` for a refusal, ``ResponseReader`` for a
successful answer, fed with body bytes as they arrive.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any, List, Mapping, Optional

from multidict import CIMultiDict

from .._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QueryRejectedError,
    RateLimitError,
    RemoteProtocolError,
    ServerReportedError,
    StreamError,
)
from .._models import ChatResult, Done, Event, TextDelta
from .decoder import DEFAULT_MAX_LINE_BYTES, SSEDecoder
from .events import parse_event, result_from_payload

__all__ = [
    "ResponseReader",
    "error_from_response",
    "parse_retry_after",
    "NONCE_ERROR_CODES",
    "MAX_ERROR_BODY_BYTES",
    "unescape_html",
]

#: WordPress core's answers to a missing (401) or a bad or expired (403) nonce.
NONCE_ERROR_CODES = frozenset({"rest_forbidden", "rest_cookie_invalid_nonce"})

#: How much of a refusal's body is read to explain it.
MAX_ERROR_BODY_BYTES = 64 * 1024


class ResponseReader:
    """Decodes the body of a 2xx answer to ``chats/submit``.

    The body is an event stream, whatever the ``Content-Type`` says (the plugin sends
    ``application/json`` for errors decided before streaming began). A body without any
    ``data:`` line is a one-shot JSON answer, which is how ``stream: false`` is answered.
    """

    def __init__(
        self,
        *,
        chat_id: Optional[str] = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        site: Optional[str] = None,
    ) -> None:
        self._sse = SSEDecoder(max_line_bytes)
        self._chat_id = chat_id
        self._site = site
        self._head: List[bytes] = []  # the body so far, until it shows itself as a stream
        self._head_size = 0
        self.result: Optional[ChatResult] = None
        #: Whether any of the answer's text has arrived: an ``error`` event before it is
        #: the plugin refusing the query (``QueryRejectedError``), after it a broken answer.
        self.answer_started = False
        self._error: Optional[Exception] = None  # raised once the events before it are out

    @property
    def finished(self) -> bool:
        """Whether the ``end`` event (or the JSON answer) has been read."""
        return self.result is not None

    @property
    def done(self) -> bool:
        """Whether the answer is over: finished, or failed. ``close()`` tells which."""
        return self.result is not None or self._error is not None

    def feed(self, chunk: bytes) -> List[Event]:
        """Take the next bytes of the body; return the events they complete."""
        if self._error is not None:
            raise self._error
        sse = self._sse
        payloads = sse.feed(chunk)
        if sse.saw_data:
            if self._head:
                self._head = []
                self._head_size = 0
        else:
            # No event so far: keep the body for a JSON answer, within the cap.
            self._head.append(chunk)
            self._head_size += len(chunk)
            sse.check_size(self._head_size)
        events = self._to_events(payloads) if payloads else []
        if sse.error is not None and not self.done:
            self._error = sse.error  # the events before it go out first
        return events

    def close(self) -> List[Event]:
        """The body ended. Returns the last events, or raises if the answer is incomplete."""
        if self._error is not None:
            raise self._error
        if self.result is not None:
            return []
        events = self._to_events(self._sse.close())
        if self.result is not None:
            return events
        if not self._sse.saw_data:
            return self._json_answer(b"".join(self._head))
        raise IncompleteStreamError("the answer ended without its end event")

    def _to_events(self, payloads: List[str]) -> List[Event]:
        events: List[Event] = []
        failure: Optional[Exception] = None
        try:
            for payload in payloads:
                event = parse_event(payload, self._chat_id, self._site)
                if event is None:
                    continue
                events.append(event)
                if event.__class__ is Done:
                    self.result = event.result
                    break  # nothing follows the end event
        except ServerReportedError as exc:
            failure = exc if self._text_seen(events) else _refusal(exc)
        except StreamError as exc:
            failure = exc
        if not self.answer_started:
            self.answer_started = self._text_seen(events)
        if failure is not None:
            if not events:
                raise failure
            self._error = failure  # the events before the failure go out first
        return events

    def _text_seen(self, events: List[Event]) -> bool:
        return self.answer_started or any(event.__class__ is TextDelta for event in events)

    def _json_answer(self, body: bytes) -> List[Event]:
        if not body.strip():
            raise IncompleteStreamError("the server closed the answer without sending anything")
        parsed = _json_or_none(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("reply"), str):
            if parsed.get("success") is not False:
                self.result = result_from_payload(parsed, self._chat_id, self._site)
                return [TextDelta(self.result.reply), Done(self.result)]
        if isinstance(parsed, dict) and ("success" in parsed or "code" in parsed):
            raise error_from_response(200, {}, body)
        raise RemoteProtocolError(f"expected an AI Engine answer, got {_describe(body)}")


def _refusal(error: ServerReportedError) -> QueryRejectedError:
    """An ``error`` event before any text: the plugin refused the query before it started
    answering (PROTOCOL.md section 4: a message over the bot's limit, an unknown bot...)."""
    refusal = QueryRejectedError(
        error.message, status_code=200, body={"type": "error", "data": error.message}
    )
    refusal.__cause__ = error
    return refusal


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, url: str = ""
) -> APIStatusError:
    """Map a refusal (status and body) to its typed error. Never raises itself."""
    parsed = _json_or_none(body)
    fields: Mapping[str, Any] = parsed if isinstance(parsed, dict) else {}
    code = fields.get("code") if isinstance(fields.get("code"), str) else None
    message = fields.get("message")
    if not isinstance(message, str) or not message:
        message = _describe(body) if body.strip() else "(empty body)"
    kwargs: Any = dict(
        status_code=status, code=code, body=parsed if fields else _text(body),
        headers=headers, url=url,
    )
    if status == 401 or (code in NONCE_ERROR_CODES and status in (401, 403)):
        return AuthenticationError(message, **kwargs)
    if fields.get("success") is False:
        return QueryRejectedError(message, **kwargs)  # the plugin's refusal, whatever the status
    if status == 429:
        return RateLimitError(
            message, retry_after=parse_retry_after(CIMultiDict(headers).get("Retry-After")), **kwargs
        )
    if status == 400:
        return BadRequestError(message, **kwargs)
    if status == 403:
        return PermissionDeniedError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status >= 500:
        return InternalServerError(message, **kwargs)
    return APIStatusError(message, **kwargs)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: absurd nesting
        return None


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _describe(body: bytes) -> str:
    """A one-line summary of a body that is not the expected JSON, for error messages."""
    title = _TITLE.search(body[:MAX_ERROR_BODY_BYTES])
    if title:
        text = unescape_html(_text(title.group(1))).strip()
        return f"an HTML page titled {text[:100]!r}"
    text = " ".join(_text(body[:200]).split())
    return f"{text[:120]!r}" + ("..." if len(body) > 120 else "")


def unescape_html(text: str) -> str:
    """``html.unescape``."""
    # html (with its entity tables) is imported on first use: it is a tenth of the
    # package's import time, and only pages and error pages need it.
    import html

    return html.unescape(text)
