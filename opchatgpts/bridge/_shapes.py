"""The OpenAI Chat Completions API's shapes, as the bridge reads and writes them. No I/O.

A request body in (``parse_chat_request``), and out: the ``chat.completion`` object, the
``chat.completion.chunk`` events of a stream, the model list, and errors in OpenAI's shape
(``{"error": {"message", "type", "param", "code"}}``), including the mapping from the SDK's
typed errors (``error_for``). The field names follow the OpenAI API reference for
``POST /v1/chat/completions`` and ``GET /v1/models``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    IncompleteStreamError,
    InternalServerError,
    InvalidMessagesError,
    InvalidMessagesTypeError,
    OpchatgptsError,
    QueryRejectedError,
    RateLimitError,
    ServerReportedError,
    StreamInterruptedError,
    StreamTimeoutError,
    TLSVerificationError,
)
from .._models import ChatResult

__all__ = [
    "BridgeError",
    "ChatRequest",
    "ChunkEncoder",
    "DONE",
    "HONOURED_PARAMETERS",
    "CHARS_PER_TOKEN",
    "parse_chat_request",
    "to_sdk_messages",
    "completion",
    "usage_of",
    "estimate_tokens",
    "error_for",
    "error_event",
    "model_object",
    "model_list",
]

#: The line that ends a successful stream.
DONE = b"data: [DONE]\n\n"

#: The rough size of a token, used when the plugin reports no usage.
CHARS_PER_TOKEN = 4

#: The parameters the bridge reads; it ignores every other one (``temperature``, ``tools``...).
HONOURED_PARAMETERS = frozenset({"model", "messages", "stream", "stream_options", "n"})

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_TEXT_PARTS = {"text": "text", "refusal": "refusal"}


class BridgeError(Exception):
    """An error the bridge answers with, in OpenAI's shape.

    ``status`` is the HTTP status before the stream started; ``headers`` go with it
    (``Retry-After``, ``x-should-retry``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: Optional[str] = None,
        code: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers: Dict[str, str] = dict(headers or {})

    def body(self) -> Dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _invalid(message: str, param: Optional[str], code: Optional[str] = None) -> BridgeError:
    return BridgeError(400, message, type="invalid_request_error", param=param, code=code)


# -- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    """What the bridge takes from a ``POST /v1/chat/completions`` body."""

    model: str
    """The model the caller named, echoed in the answer."""
    messages: List[Dict[str, str]]
    """The conversation as the SDK takes it: ``{"role", "content"}`` with string content."""
    stream: bool = False
    include_usage: bool = False
    """``stream_options.include_usage``: a usage chunk before ``[DONE]``."""
    ignored: Tuple[str, ...] = field(default=())
    """The parameters given that the bridge ignores (``temperature``, ``tools``...)."""


def parse_chat_request(body: Any, default_model: str) -> ChatRequest:
    """Check a chat completion request body; raise ``BridgeError`` (400) for a bad one.

    ``default_model`` stands in for a missing ``model``. The messages are converted
    (``to_sdk_messages``) but not split: the SDK checks that the last one is the user's.
    """
    if not isinstance(body, dict):
        raise _invalid("the request body must be a JSON object", None)
    model = body.get("model", default_model)
    if model is None:
        model = default_model
    if not isinstance(model, str):
        raise _invalid("'model' must be a string", "model")
    if "messages" not in body:
        raise _invalid("'messages' is a required property", "messages", "missing_required_parameter")
    messages = to_sdk_messages(body["messages"])
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object", "stream_options")
    include_usage = (options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _invalid("'stream_options.include_usage' must be a boolean", "stream_options.include_usage")
    n = body.get("n")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise _invalid("'n' must be a whole number of at least 1", "n")
        if n > 1:
            raise _invalid(
                "n > 1 is not supported: an AI Engine chatbot gives one answer per message",
                "n",
                "unsupported_parameter",
            )
    tool_choice = body.get("tool_choice")
    if tool_choice == "required" or isinstance(tool_choice, dict):
        raise _invalid(
            "the bridge cannot call tools: an AI Engine chatbot answers with text only",
            "tool_choice",
            "unsupported_parameter",
        )
    ignored = tuple(sorted(name for name in body if name not in HONOURED_PARAMETERS))
    return ChatRequest(model, messages, bool(stream), bool(stream and include_usage), ignored)


def to_sdk_messages(messages: Any) -> List[Dict[str, Any]]:
    """OpenAI messages as the SDK takes them: ``system`` and ``developer`` become ``system``,
    ``user`` and ``assistant`` stay; content parts of type ``text`` are joined by newlines.
    A user turn with ``image_url`` parts keeps its parts: the SDK sends the last turn's
    images as attachments (an earlier turn's keep their text).

    A ``tool`` or ``function`` message, or an audio or file part, is a 400: the plugin has
    no way to carry them, and dropping them would change the question.
    """
    if not isinstance(messages, list):
        raise _invalid("'messages' must be an array of messages", "messages")
    converted = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid(f"{where} must be an object", where)
        role = message.get("role")
        if role not in _ROLES:
            if isinstance(role, str) and role in ("tool", "function"):
                raise _invalid(
                    f"{where} has role {role!r}: the bridge cannot carry tool results "
                    "(an AI Engine chatbot has no tools)",
                    f"{where}.role",
                    "unsupported_value",
                )
            raise _invalid(
                f"{where}.role must be one of 'system', 'developer', 'user', 'assistant'",
                f"{where}.role",
            )
        content = _content(message.get("content"), where, images=role == "user")
        converted.append({"role": _ROLES[role], "content": content})
    return converted


def _content(content: Any, where: str, images: bool) -> Any:
    """A message's content: its text, or (a user turn with images) its text and image parts."""
    if isinstance(content, str):
        return content
    if content is None:  # an assistant turn that only called tools
        return ""
    if not isinstance(content, list):
        raise _invalid(f"{where}.content must be a string or an array of content parts", f"{where}.content")
    texts: List[str] = []
    pictures: List[Dict[str, Any]] = []
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url" and images:
            pictures.append({"type": "image_url", "image_url": part.get("image_url")})
            continue
        key = _TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if key is None:
            carried = "text and image parts" if images else "text parts"
            raise _invalid(
                f"{at} is of type {kind!r}: the bridge carries {carried} only",
                f"{at}.type",
                "unsupported_value",
            )
        text = part.get(key)
        if not isinstance(text, str):
            raise _invalid(f"{at}.{key} must be a string", f"{at}.{key}")
        texts.append(text)
    if not pictures:
        return "\n".join(texts)
    return [{"type": "text", "text": "\n".join(texts)}, *pictures]


# -- the answer -------------------------------------------------------------------------------


#: Compact JSON in UTF-8, made once (``json.dumps`` with options builds an encoder per call).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def estimate_tokens(text: str) -> int:
    """A rough token count: one per ``CHARS_PER_TOKEN`` characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def usage_of(
    result: Optional[ChatResult], messages: Sequence[Mapping[str, str]], text: str
) -> Dict[str, int]:
    """The ``usage`` object: the plugin's, from its end payload, when it gives
    ``prompt_tokens`` and ``completion_tokens``; else an estimate from the characters of
    the conversation and of the answer."""
    reported = result.usage if result is not None and result.usage else {}
    prompt, answer = _tokens(reported.get("prompt_tokens")), _tokens(reported.get("completion_tokens"))
    if prompt is None or answer is None:
        prompt = sum(estimate_tokens(m["content"]) for m in messages)
        answer = estimate_tokens(text)
        total = None
    else:
        total = _tokens(reported.get("total_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": answer,
        "total_tokens": prompt + answer if total is None else total,
    }


def _tokens(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def completion(
    completion_id: str, created: int, model: str, text: str, usage: Mapping[str, int]
) -> Dict[str, Any]:
    """The ``chat.completion`` object of a whole answer."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": dict(usage),
    }


class ChunkEncoder:
    """The ``data: {...}`` lines of one streamed answer, all with the same ``id``.

    ``role()`` first, ``text(delta)`` for each piece of the answer, ``stop()``, then
    ``usage(...)`` if the caller asked for it, then ``DONE``. With ``include_usage`` every
    chunk carries ``"usage": null`` but the usage chunk, as OpenAI sends them.
    """

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool = False) -> None:
        self.id = completion_id
        self.created = created
        self.model = model
        self.include_usage = include_usage
        # A text chunk is the same bytes around the JSON string of its delta: build them once.
        mark = "\x00delta\x00"
        head, _, tail = self.line(self.chunk({"content": mark})).rpartition(_dumps(mark).encode())
        self._head, self._tail = head, tail

    def chunk(self, delta: Mapping[str, Any], finish_reason: Optional[str] = None) -> Dict[str, Any]:
        """A ``chat.completion.chunk`` object with one choice."""
        chunk: Dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    @staticmethod
    def line(value: Any) -> bytes:
        """One server-sent event: ``data: <json>`` and a blank line."""
        return b"data: " + _dumps(value).encode("utf-8") + b"\n\n"

    def role(self) -> bytes:
        """The first chunk: the assistant's role."""
        return self.line(self.chunk({"role": "assistant", "content": "", "refusal": None}))

    def text(self, delta: str) -> bytes:
        """A chunk with one piece of the answer's text."""
        return self._head + _dumps(delta).encode("utf-8") + self._tail

    def texts(self, deltas: Sequence[str]) -> bytes:
        """The chunks of several pieces of text, one after the other."""
        head, tail = self._head, self._tail
        return b"".join([head + _dumps(delta).encode("utf-8") + tail for delta in deltas])

    def stop(self) -> bytes:
        """The chunk that ends the choice: ``finish_reason: "stop"``."""
        return self.line(self.chunk({}, "stop"))

    def usage(self, usage: Mapping[str, int]) -> bytes:
        """The usage chunk (``stream_options.include_usage``): empty ``choices``."""
        chunk = self.chunk({})
        chunk["choices"] = []
        chunk["usage"] = dict(usage)
        return self.line(chunk)


# -- models -----------------------------------------------------------------------------------


def model_object(model_id: str, created: int, owned_by: str) -> Dict[str, Any]:
    """A ``model`` object."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def model_list(models: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """The answer to ``GET /v1/models``."""
    return {"object": "list", "data": [dict(m) for m in models]}


# -- errors -----------------------------------------------------------------------------------

#: Failures worth another try, which the ``openai`` client retries on its own (5xx, 429).
#: Every other upstream failure says ``x-should-retry: false``: the same query would fail again.
_TRANSIENT = (
    APIConnectionError, InternalServerError, RateLimitError, StreamInterruptedError,
    StreamTimeoutError, IncompleteStreamError,
)  # fmt: skip


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _message(exc: BaseException) -> str:
    """The plugin's own text where it sent one, else the SDK's description."""
    if isinstance(exc, (QueryRejectedError, ServerReportedError)) and exc.message:
        return exc.message
    return str(exc) or type(exc).__name__


def error_for(exc: BaseException) -> BridgeError:
    """The OpenAI-shaped error for an SDK error raised before the answer's first byte.

    ``code`` is the SDK's error class in snake case (``query_rejected_error``...). An error
    that is not the SDK's is the bridge's own failure: a 500 that names only its class.
    """
    if not isinstance(exc, OpchatgptsError):
        return BridgeError(500, f"the bridge failed: {type(exc).__name__}", type="server_error")
    code = _snake(type(exc).__name__)
    if isinstance(exc, (InvalidMessagesError, InvalidMessagesTypeError)):
        return _invalid(str(exc), "messages", code)
    if isinstance(exc, ClientClosedError):
        return BridgeError(503, "the bridge is shutting down", type="server_error", code=code)
    headers = {}
    if not isinstance(exc, _TRANSIENT) or isinstance(exc, TLSVerificationError):
        headers["x-should-retry"] = "false"
    if isinstance(exc, RateLimitError):
        if exc.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return BridgeError(429, _message(exc), type="rate_limit_error", code=code, headers=headers)
    status = 504 if isinstance(exc, (APITimeoutError, StreamTimeoutError)) else 502
    return BridgeError(status, _message(exc), type="upstream_error", code=code, headers=headers)


def error_event(exc: BaseException) -> bytes:
    """The event that ends a stream that already started, for an error: ``data: {"error":
    {...}}``, which the ``openai`` client raises as ``APIError``. No ``[DONE]`` follows."""
    return ChunkEncoder.line(error_for(exc).body())
