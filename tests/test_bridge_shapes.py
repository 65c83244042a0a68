"""The bridge's OpenAI shapes, without any I/O: requests in, answers, chunks and errors out."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

import opchatgpts
from opchatgpts import ChatResult
from opchatgpts.bridge._shapes import (
    DONE,
    BridgeError,
    ChunkEncoder,
    completion,
    error_event,
    error_for,
    estimate_tokens,
    parse_chat_request,
    to_sdk_messages,
    usage_of,
)

HI = [{"role": "user", "content": "hi"}]


def refused(body: Any) -> BridgeError:
    with pytest.raises(BridgeError) as caught:
        parse_chat_request(body, "default")
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    return caught.value


# -- requests ---------------------------------------------------------------------------------


def test_a_minimal_request():
    chat = parse_chat_request({"model": "gpt-4o", "messages": HI}, "default")
    assert (chat.model, chat.messages, chat.stream, chat.include_usage, chat.ignored) == (
        "gpt-4o", HI, False, False, ()
    )  # fmt: skip


def test_model_defaults_to_the_bot():
    assert parse_chat_request({"messages": HI}, "my-bot").model == "my-bot"
    assert parse_chat_request({"messages": HI, "model": None}, "my-bot").model == "my-bot"
    assert refused({"messages": HI, "model": 4}).param == "model"


def test_stream_and_usage():
    streamed = {"messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    chat = parse_chat_request(streamed, "m")
    assert chat.stream and chat.include_usage
    # include_usage means nothing without stream
    chat = parse_chat_request({"messages": HI, "stream_options": {"include_usage": True}}, "m")
    assert not chat.stream and not chat.include_usage
    assert refused({"messages": HI, "stream": 1}).param == "stream"
    assert refused({"messages": HI, "stream_options": []}).param == "stream_options"
    assert refused({"messages": HI, "stream_options": {"include_usage": "y"}}).param == (
        "stream_options.include_usage"
    )


def test_parameters_the_plugin_cannot_honour_are_ignored():
    body = {
        "messages": HI, "temperature": 0.1, "max_tokens": 9, "top_p": 1, "stop": ["x"], "seed": 1,
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
        "response_format": {"type": "json_object"}, "user": "u", "logprobs": True, "n": 1,
    }  # fmt: skip
    chat = parse_chat_request(body, "m")
    assert chat.ignored == (
        "logprobs", "max_tokens", "response_format", "seed", "stop", "temperature", "tool_choice", "tools",
        "top_p", "user",
    )  # fmt: skip


@pytest.mark.parametrize("n", [0, -1, 1.0, True, "2"])
def test_n_must_be_a_positive_int(n):
    assert refused({"messages": HI, "n": n}).param == "n"


def test_n_above_one_is_refused():
    error = refused({"messages": HI, "n": 3})
    assert (error.param, error.code) == ("n", "unsupported_parameter")


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "f"}}])
def test_forcing_a_tool_call_is_refused(choice):
    assert refused({"messages": HI, "tool_choice": choice}).param == "tool_choice"


def test_not_an_object():
    assert refused([]).param is None
    assert refused({"model": "m"}).param == "messages"


def test_roles_and_parts():
    messages = [
        {"role": "developer", "content": "d"},
        {"role": "system", "content": [{"type": "text", "text": "s"}]},
        {"role": "user", "content": "u", "name": "ann"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    assert to_sdk_messages(messages) == [
        {"role": "system", "content": "d"},
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "no"},
        {"role": "user", "content": "a\nb"},
    ]


@pytest.mark.parametrize(
    "messages, param",
    [
        ("hi", "messages"),
        (["hi"], "messages[0]"),
        ([{"content": "hi"}], "messages[0].role"),
        ([{"role": "robot", "content": "hi"}], "messages[0].role"),
        ([{"role": "function", "name": "f", "content": "1"}], "messages[0].role"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": ["text"]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [{"type": "text", "text": None}]}], "messages[0].content[0].text"),
    ],
)
def test_messages_the_bridge_cannot_carry(messages, param):
    with pytest.raises(BridgeError) as caught:
        to_sdk_messages(messages)
    assert caught.value.param == param


# -- answers ----------------------------------------------------------------------------------


def test_estimate_tokens():
    assert [estimate_tokens(t) for t in ("", "abcd", "abcde", "x" * 400)] == [0, 1, 2, 100]


def test_usage_from_the_plugin():
    result = ChatResult(reply="", usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9})
    assert usage_of(result, HI, "whatever") == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    result = ChatResult(reply="", usage={"prompt_tokens": 7, "completion_tokens": 2})
    assert usage_of(result, HI, "whatever")["total_tokens"] == 9


@pytest.mark.parametrize(
    "usage",
    [None, {}, {"total_tokens": 5}, {"prompt_tokens": True, "completion_tokens": 1}, {"prompt_tokens": "7"}],
)
def test_usage_estimated_when_the_plugin_gives_none(usage: Optional[Dict[str, Any]]):
    messages = [{"role": "system", "content": "12345678"}, {"role": "user", "content": "123"}]
    expected = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert usage_of(ChatResult(reply="x", usage=usage), messages, "1234567") == expected
    assert usage_of(None, messages, "1234567") == expected


def test_completion_object():
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    answer = completion("chatcmpl-1", 5, "m", "hello", usage)
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert (answer["object"], answer["usage"]) == ("chat.completion", usage)


def sse(line: bytes) -> Any:
    assert line.startswith(b"data: ") and line.endswith(b"\n\n") and line.count(b"\n") == 2
    return json.loads(line[len(b"data: ") :])


@given(text=st.text(), model=st.text(), include_usage=st.booleans())
def test_a_text_chunk_is_the_json_of_its_object(text, model, include_usage):
    encoder = ChunkEncoder("chatcmpl-x", 1, model + "\x00delta\x00", include_usage)
    assert sse(encoder.text(text)) == encoder.chunk({"content": text})


@given(texts=st.lists(st.text()))
def test_several_text_chunks_are_the_chunks_one_after_the_other(texts):
    encoder = ChunkEncoder("chatcmpl-x", 1, "m")
    assert encoder.texts(texts) == b"".join(encoder.text(text) for text in texts)


def test_the_chunks_of_a_stream():
    encoder = ChunkEncoder("chatcmpl-x", 7, "m", include_usage=True)
    role, stop = sse(encoder.role()), sse(encoder.stop())
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert stop["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert role["usage"] is None and stop["usage"] is None
    usage = sse(encoder.usage({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}))
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 2
    assert {role["id"], stop["id"], usage["id"]} == {"chatcmpl-x"}
    assert "usage" not in sse(ChunkEncoder("chatcmpl-x", 7, "m").role())
    assert DONE == b"data: [DONE]\n\n"


# -- errors -----------------------------------------------------------------------------------


def status_error(cls: type, status: int, **kwargs: Any) -> Exception:
    error: Exception = cls("the site's words", status_code=status, **kwargs)
    return error


UP = "upstream_error"


@pytest.mark.parametrize(
    "exc, status, kind, code, retry",
    [
        (opchatgpts.InvalidMessagesError("no user turn"), 400, "invalid_request_error",
         "invalid_messages_error", None),
        (opchatgpts.InvalidMessagesTypeError("bad type"), 400, "invalid_request_error",
         "invalid_messages_type_error", None),
        (opchatgpts.APIConnectionError("refused"), 502, UP, "api_connection_error", None),
        (opchatgpts.TLSVerificationError("bad cert"), 502, UP, "tls_verification_error", "false"),
        (opchatgpts.APITimeoutError("slow"), 504, UP, "api_timeout_error", None),
        (opchatgpts.StreamTimeoutError("quiet"), 504, UP, "stream_timeout_error", None),
        (status_error(opchatgpts.QueryRejectedError, 500), 502, UP, "query_rejected_error", "false"),
        (opchatgpts.ServerReportedError("From OpenAI: down"), 502, UP, "server_reported_error", "false"),
        (status_error(opchatgpts.AuthenticationError, 401), 502, UP, "authentication_error", "false"),
        (status_error(opchatgpts.PermissionDeniedError, 403), 502, UP, "permission_denied_error", "false"),
        (status_error(opchatgpts.NotFoundError, 404), 502, UP, "not_found_error", "false"),
        (status_error(opchatgpts.InternalServerError, 503), 502, UP, "internal_server_error", None),
        (opchatgpts.StreamInterruptedError("reset"), 502, UP, "stream_interrupted_error", None),
        (opchatgpts.IncompleteStreamError("no end"), 502, UP, "incomplete_stream_error", None),
        (opchatgpts.RemoteProtocolError("html"), 502, UP, "remote_protocol_error", "false"),
        (opchatgpts.ClientClosedError("closed"), 503, "server_error", "client_closed_error", None),
        (status_error(opchatgpts.RateLimitError, 429), 429, "rate_limit_error", "rate_limit_error", None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)  # fmt: skip
def test_error_mapping(exc, status, kind, code, retry):
    error = error_for(exc)
    assert (error.status, error.type, error.code) == (status, kind, code)
    assert error.headers.get("x-should-retry") == retry
    assert error.message


def test_the_plugins_own_words_are_the_message():
    assert error_for(status_error(opchatgpts.QueryRejectedError, 500)).message == "the site's words"
    assert error_for(opchatgpts.ServerReportedError("From OpenAI: down")).message == "From OpenAI: down"
    refused = error_for(status_error(opchatgpts.PermissionDeniedError, 403))
    assert refused.message == "HTTP 403: the site's words"


def test_retry_after_is_passed_on():
    limited = opchatgpts.RateLimitError("slow down", status_code=429, retry_after=6.2)
    assert error_for(limited).headers == {"Retry-After": "7"}
    assert "Retry-After" not in error_for(opchatgpts.RateLimitError("slow down", status_code=429)).headers


def test_an_error_of_the_bridge_itself_names_only_its_class():
    error = error_for(KeyError("secret detail"))
    assert (error.status, error.type, error.message) == (500, "server_error", "the bridge failed: KeyError")


def test_error_event():
    event = sse(error_event(opchatgpts.ServerReportedError("From Azure: cut")))
    assert event == {
        "error": {"message": "From Azure: cut", "type": "upstream_error", "param": None,
                  "code": "server_reported_error"}
    }  # fmt: skip
