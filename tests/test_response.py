"""One response in, events or one typed error out (no I/O): the refusals and the answers."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from opchatgpts import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Done,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QueryRejectedError,
    RateLimitError,
    RemoteProtocolError,
    ResponseTooLargeError,
    ServerReportedError,
    TextDelta,
)
from opchatgpts._protocol.response import ResponseReader, error_from_response, parse_retry_after

REJECTED = {"success": False, "message": "Sorry, your query has been rejected."}


def wp(code: str, status: int, message: str = "m") -> bytes:
    return json.dumps({"code": code, "message": message, "data": {"status": status}}).encode()


def live(text: str) -> bytes:
    return b"data: " + json.dumps({"type": "live", "data": text}).encode() + b"\n\n"


def end(reply: str) -> bytes:
    payload = json.dumps({"success": True, "reply": reply})
    return b"data: " + json.dumps({"type": "end", "data": payload}).encode() + b"\n\n"


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, error, code",
    [
        (401, wp("rest_forbidden", 401), AuthenticationError, "rest_forbidden"),
        (401, b"", AuthenticationError, None),  # any 401
        (403, wp("rest_cookie_invalid_nonce", 403), AuthenticationError, "rest_cookie_invalid_nonce"),
        (403, wp("rest_forbidden", 403), AuthenticationError, "rest_forbidden"),
        (403, wp("rest_other", 403), PermissionDeniedError, "rest_other"),
        (403, json.dumps(REJECTED).encode(), QueryRejectedError, None),
        (404, wp("rest_forbidden", 404), NotFoundError, "rest_forbidden"),  # not a nonce status
        (400, wp("rest_forbidden", 400), BadRequestError, "rest_forbidden"),
        (402, wp("rest_cookie_invalid_nonce", 402), APIStatusError, "rest_cookie_invalid_nonce"),
        (404, wp("rest_no_route", 404), NotFoundError, "rest_no_route"),
        (400, wp("rest_invalid_json", 400), BadRequestError, "rest_invalid_json"),
        (500, json.dumps(REJECTED).encode(), QueryRejectedError, None),
        (200, json.dumps(REJECTED).encode(), QueryRejectedError, None),
        (500, b"Fatal error", InternalServerError, None),
        (500, json.dumps({"success": 0, "message": "m"}).encode(), InternalServerError, None),
        (503, b"", InternalServerError, None),
        (599, b"", InternalServerError, None),
        (499, b"", APIStatusError, None),
        (418, json.dumps({"success": True, "code": 7}).encode(), APIStatusError, None),
        (302, b"", APIStatusError, None),
    ],
)
def test_each_refusal_has_its_error(status, body, error, code):
    exc = error_from_response(status, {"X-Test": "1"}, body, "https://e.com/x")
    assert type(exc) is error
    assert (exc.status_code, exc.code, exc.url) == (status, code, "https://e.com/x")
    assert exc.headers == {"X-Test": "1"}


@pytest.mark.parametrize(
    "body, message, kept",
    [
        (wp("rest_forbidden", 401, "Sorry, you are not allowed to do that."),
         "Sorry, you are not allowed to do that.", "json"),
        (json.dumps({"code": "x", "message": ""}).encode(), """'{"code": "x", "message": ""}'""", "json"),
        (json.dumps({"code": "x", "message": 5}).encode(), """'{"code": "x", "message": 5}'""", "json"),
        (b"", "(empty body)", ""),
        (b"  \n ", "(empty body)", "  \n "),
        (b"[1, 2]", "'[1, 2]'", "[1, 2]"),
        (b"[" * 100_000, repr("[" * 120) + "...", "[" * 100_000),  # too deep to parse: text
        (b"Bad   gateway\n\nnginx", "'Bad gateway nginx'", "Bad   gateway\n\nnginx"),
        (b"<html><title> Just a moment &amp; wait </title></html>",
         "an HTML page titled 'Just a moment & wait'",
         "<html><title> Just a moment &amp; wait </title></html>"),
    ],
)
def test_the_message_and_body_of_a_refusal(body, message, kept):
    exc = error_from_response(502, {}, body)
    assert exc.message == message
    assert exc.body == (json.loads(body) if kept == "json" else kept)


def test_long_bodies_are_summarised():
    exact = b"a" * 120
    assert error_from_response(500, {}, exact).message == repr("a" * 120)
    assert error_from_response(500, {}, exact + b"b").message == repr("a" * 120) + "..."
    words = b" ".join([b"word"] * 100)  # only the first 200 bytes are looked at
    assert error_from_response(500, {}, words).message == repr(" ".join(["word"] * 40)[:120]) + "..."
    title = b"<title>" + b"T" * 150 + b"</title>"
    assert error_from_response(500, {}, title).message == f"an HTML page titled {'T' * 100!r}"
    # A title past the first 64 KiB is not looked for.
    # Whitespace is collapsed in the first 200 bytes.
    assert error_from_response(500, {}, b" " * 150 + b"x" * 100).message == repr("x" * 50) + "..."
    # Any case, across lines.
    upper = b"<HTML><TITLE>Service\n  Unavailable</TITLE></HTML>"
    assert error_from_response(503, {}, upper).message == "an HTML page titled 'Service\\n  Unavailable'"
    edge = b"<title>edge</title>"
    last = b"x" * (64 * 1024 - len(edge)) + edge  # ends on the 64 KiB boundary
    assert error_from_response(500, {}, last).message == "an HTML page titled 'edge'"
    late = b"x" * (64 * 1024) + b"<title>late</title>"
    assert error_from_response(500, {}, late).message == repr("x" * 120) + "..."
    assert "late" in error_from_response(500, {}, late[100:]).message


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_a_429_carries_its_retry_after(name):
    exc = error_from_response(429, {"Other": "x", "X-Cache": "miss", name: "7"}, b"slow down")
    assert type(exc) is RateLimitError and exc.retry_after == 7.0 and exc.message == "'slow down'"
    assert error_from_response(429, {}, b"").retry_after is None


@pytest.mark.parametrize(
    "value, seconds",
    [("12", 12.0), ("  0 ", 0.0), ("1.5", 1.5), ("-3", 0.0), ("", None), (None, None), ("soon", None),
     ("inf", None), ("-inf", None), ("nan", None), ("1e999", None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0)],
)
def test_retry_after_values(value, seconds):
    assert parse_retry_after(value, now=1445412470.0) == seconds


def test_an_http_date_is_measured_from_now():
    assert 0.0 < parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT") < 4102444800


# -- answers ----------------------------------------------------------------------------------------


def read(*chunks: bytes, **kwargs: Any) -> list:
    reader = ResponseReader(**kwargs)
    events = []
    for chunk in chunks:
        events += reader.feed(chunk)
    return events + reader.close()


def test_a_stream_and_the_readers_state():
    reader = ResponseReader(chat_id="c1")
    assert (reader.finished, reader.done, reader.result) == (False, False, None)
    assert reader.feed(live("a")) == [TextDelta("a")]
    assert (reader.finished, reader.done) == (False, False)
    (done,) = reader.feed(end("a"))
    assert isinstance(done, Done) and done.result.chat_id == "c1"
    assert (reader.finished, reader.done, reader.result) == (True, True, done.result)
    assert reader.close() == [] and reader.close() == []


@pytest.mark.parametrize(
    "bad",
    [b"data: \xff\n\n", b"data: " + b"x" * 200 + b"\n\n", b"data: {oops\n\n", b"data: {oops",
     b'data: {"type":"live","data":"late"}', b'data: {"type":"live","data":"late"}\n\n'],
)
def test_what_follows_the_end_event_in_its_chunk_is_never_read(bad):
    # The answer is complete: a broken line after it must not turn it into an error.
    reader = ResponseReader(max_line_bytes=100)
    (done,) = reader.feed(end("a") + bad)
    assert isinstance(done, Done) and reader.finished
    assert reader.close() == []
    assert reader.result is not None and reader.result.reply == "a"


def test_events_before_a_failure_come_first_then_the_failure_every_time():
    reader = ResponseReader()
    assert reader.feed(live("a") + b"data: \xff\n\n") == [TextDelta("a")]
    assert not reader.finished and reader.done
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        reader.feed(end("a"))
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        reader.close()


def test_an_error_event_after_text_in_one_chunk():
    reader = ResponseReader()
    error = b'data: {"type":"error","data":"From OpenAI: boom"}\n\n'
    assert reader.feed(live("a") + error) == [TextDelta("a")]
    assert reader.done and not reader.finished
    with pytest.raises(ServerReportedError, match="boom"):
        reader.close()


def test_an_error_event_before_any_text_is_a_refusal_caused_by_it() -> None:
    reader = ResponseReader()
    with pytest.raises(QueryRejectedError) as raised:
        reader.feed(b'data: {"type":"error","data":"Unknown bot."}\n\n')
    refusal = raised.value
    assert (str(refusal), refusal.status_code) == ("Unknown bot.", 200)
    assert refusal.body == {"type": "error", "data": "Unknown bot."}
    # A traceback shows the server's error event as the cause.
    assert type(refusal.__cause__) is ServerReportedError and str(refusal.__cause__) == "Unknown bot."


@pytest.mark.parametrize(
    "body, reply",
    [(b'{"success":true,"reply":"Echo: hi"}', "Echo: hi"), (b' {"reply":""} ', ""),
     (b'{"success":null,"reply":"r","usage":{"total_tokens":3}}', "r"), (b'{"success":0,"reply":"r"}', "r")],
)
def test_a_one_shot_json_answer(body, reply):
    events = read(body[:5], body[5:], chat_id="c")
    assert events[0] == TextDelta(reply) and isinstance(events[1], Done) and len(events) == 2
    assert events[1].result.reply == reply and events[1].result.chat_id == "c"


@pytest.mark.parametrize(
    "body, error, message",
    [
        (json.dumps(REJECTED).encode(), QueryRejectedError, "rejected"),
        (b'{"success":false,"reply":"r","message":"no"}', QueryRejectedError, "no"),
        (wp("rest_forbidden", 401, "Sorry"), APIStatusError, "Sorry"),
        (b'{"reply":5}', RemoteProtocolError, "expected an AI Engine answer, got '{\"reply\":5}'"),
        (b'{"hello":"world"}', RemoteProtocolError, "expected an AI Engine answer"),
        (b"[1]", RemoteProtocolError, "expected an AI Engine answer, got '\\[1\\]'"),
        (b"  \r\n", IncompleteStreamError, "closed the answer without sending anything"),
        (b"", IncompleteStreamError, "closed the answer without sending anything"),
    ],
)
def test_a_one_shot_answer_that_is_not_an_answer(body, error, message):
    with pytest.raises(error, match=message) as info:
        read(body)
    if isinstance(info.value, APIStatusError):
        assert info.value.status_code == 200


def test_the_readers_options_are_named():
    with pytest.raises(TypeError):
        ResponseReader("c1")  # type: ignore[misc]


def test_an_end_event_without_its_blank_line_ends_the_answer():
    events = read(live("a") + end("a").rstrip(b"\n"))
    assert events[0] == TextDelta("a") and isinstance(events[1], Done) and len(events) == 2


def test_after_a_bad_event_the_reader_fails_again():
    reader = ResponseReader()
    assert reader.feed(live("a") + b"data: {oops\n\n") == [TextDelta("a")]
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        reader.feed(live("b"))
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        reader.close()


def test_a_pretty_printed_one_shot_answer_is_capped_as_a_whole():
    body = b'{"reply":\n"' + b"r" * 86 + b'"\n}'  # 100 bytes, every line shorter
    assert read(body[:50], body[50:], max_line_bytes=100)[0] == TextDelta("r" * 86)
    with pytest.raises(ResponseTooLargeError):
        read(b" " + body[:50], body[50:], max_line_bytes=100)


def test_a_one_shot_answer_is_capped_like_a_line():
    body = b'{"reply":"' + b"r" * 88 + b'"}'  # 100 bytes
    assert read(body[:50], body[50:], max_line_bytes=100)[0] == TextDelta("r" * 88)
    with pytest.raises(ResponseTooLargeError):
        read(body[:50], body[50:] + b" ", max_line_bytes=100)


def test_the_reader_keeps_no_copy_of_a_long_answer():
    # The start of a body is kept until it shows itself as a stream (it may be a JSON
    # answer); from then on the reader holds nothing of what it already delivered.
    text = "y" * 4_000_000
    body = live(text)
    tracemalloc.start()
    try:
        reader = ResponseReader()
        assert reader.feed(body[:-10]) == []
        events = reader.feed(body[-10:])
        assert events == [TextDelta(text)]
        del events, body
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000
    assert reader.feed(end("")) and reader.finished
