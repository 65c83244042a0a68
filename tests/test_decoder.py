"""The SSE decoder and the event parser, fed hand-split bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from capturefile import parse as parse_capture

from opchatgpts import (
    ChatResult,
    Done,
    IncompleteStreamError,
    LiveEvent,
    QueryRejectedError,
    RemoteProtocolError,
    ResponseTooLargeError,
    ServerReportedError,
    TextDelta,
)
from opchatgpts._protocol.decoder import SSEDecoder
from opchatgpts._protocol.response import ResponseReader

CAPTURES = Path(__file__).parent / "captures"


def decode_all(chunks, max_line_bytes=16 * 1024 * 1024):
    decoder = SSEDecoder(max_line_bytes)
    out = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


def read_all(chunks, chat_id=None):
    reader = ResponseReader(chat_id=chat_id)
    events = []
    for chunk in chunks:
        events += reader.feed(chunk)
    return events + reader.close()


def live(text: str) -> bytes:
    return b"data: " + json.dumps({"type": "live", "data": text}).encode() + b"\n\n"


def end(reply: str, **extra) -> bytes:
    payload = json.dumps({"success": True, "reply": reply, **extra})
    return b"data: " + json.dumps({"type": "end", "data": payload}).encode() + b"\n\n"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_gives_the_same_events(newline):
    body = b"data: one\n\ndata: two\n\n".replace(b"\n", newline)
    assert decode_all([body]) == ["one", "two"]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_line_endings_split_at_every_position(newline):
    body = b"data: a\n\ndata: b\ndata: c\n\n".replace(b"\n", newline)
    for cut in range(len(body) + 1):
        assert decode_all([body[:cut], body[cut:]]) == ["a", "b\nc"], cut


def test_crlf_split_across_chunks_does_not_end_an_event_early():
    # "data: x\r" | "\ndata: y\r\n\r\n": a spurious blank line would split the event in two.
    assert decode_all([b"data: x\r", b"\ndata: y\r\n\r\n"]) == ["x\ny"]


def test_multibyte_character_split_at_every_byte():
    text = "h\u00e9llo \u4e16\u754c \U0001f600"
    body = b"data: " + json.dumps({"type": "live", "data": text}, ensure_ascii=False).encode()
    body += b"\n\n"
    for cut in range(len(body) + 1):
        for cut2 in range(cut, len(body) + 1, 3):
            events = read_all([body[:cut], body[cut:cut2], body[cut2:], end(text)])
            assert events[0] == TextDelta(text)


def test_one_byte_at_a_time():
    body = live("Echo:") + live(" hi") + end("Echo: hi")
    events = read_all([body[i : i + 1] for i in range(len(body))])
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Echo:", " hi"]
    assert isinstance(events[-1], Done) and events[-1].result.reply == "Echo: hi"


def test_space_after_colon_is_optional_and_only_one_is_removed():
    assert decode_all([b"data:x\n\ndata:  y\n\n"]) == ["x", " y"]


def test_comments_and_other_fields_are_ignored():
    assert decode_all([b": keep-alive\n\nevent: foo\nid: 3\nretry: 10\ndata: z\n\n"]) == ["z"]


def test_blank_lines_alone_produce_nothing():
    assert decode_all([b"\n\n\r\n\r\r\n"]) == []


def test_event_without_final_blank_line_is_kept_at_close():
    assert decode_all([b"data: last"]) == ["last"]


def test_line_cap_applies_to_unfinished_lines():
    decoder = SSEDecoder(max_line_bytes=100)
    decoder.feed(b"data: " + b"x" * 50)
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b"x" * 60)


def test_line_cap_applies_to_complete_lines_in_one_chunk():
    with pytest.raises(ResponseTooLargeError):
        decode_all([b"data: " + b"x" * 200 + b"\n\n"], max_line_bytes=100)


def test_long_line_below_cap_is_fine_and_linear():
    text = "y" * (5 * 1024 * 1024)
    body = live(text)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert read_all(chunks + [end(text)])[0] == TextDelta(text)


def test_invalid_utf8_is_a_protocol_error():
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        read_all([b'data: {"type":"live","data":"\xff\xfe"}\n\n', end("")])


def test_rich_live_events_are_not_text():
    capture = parse_capture(CAPTURES / "3.6.2" / "stream_rich_events.txt")
    events = read_all([capture.response_body])
    status = events[0]
    assert isinstance(status, LiveEvent)
    assert status.subtype == "status" and status.visibility == "collapsed"
    assert status.data == "Starting stream..." and status.metadata["model"] == "fake-echo-1"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Echo: hello big world"


def test_content_subtype_is_text():
    body = b'data: {"type":"live","subtype":"content","data":"x"}\n\n' + end("x")
    assert read_all([body])[0] == TextDelta("x")


@pytest.mark.parametrize("version", ["1.9.99", "2.4.3", "3.6.2"])
def test_captured_streams_decode_to_their_reply(version):
    capture = parse_capture(CAPTURES / version / "stream_success.txt")
    events = read_all([capture.response_body], chat_id="c1")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    result = events[-1].result
    assert isinstance(result, ChatResult)
    assert text == result.reply == "Echo: hello big world"
    assert result.chat_id == "c1"
    assert result.usage["total_tokens"] > 0


def test_end_payload_new_token_is_exposed():
    capture = parse_capture(CAPTURES / "3.6.2" / "stream_new_token.txt")
    result = read_all([capture.response_body])[-1].result
    assert result.new_token == "f44b4f4fcc"
    assert result.raw["responseId"] == "chatcmpl-fake000011"


@pytest.mark.parametrize(
    "path, message, error",
    [
        # Some text, then the error: the answer started and broke.
        ("1.9.99/upstream_cut_midstream.txt", "cURL error 18", ServerReportedError),
        # The error before any text: the plugin refused the query.
        ("3.6.2/upstream_error_stream.txt", "FAIL_UPSTREAM", QueryRejectedError),
        # The plugin's quirk: application/json content type, yet an event body.
        ("1.9.99/unknown_botId_stream.txt", "rejected", QueryRejectedError),
        ("3.6.2/long_message_600_over_bot_limit_512_stream.txt", "rejected", QueryRejectedError),
    ],
)
def test_error_events_raise_with_the_server_message(path, message, error):
    capture = parse_capture(CAPTURES / path)
    reader = ResponseReader()
    with pytest.raises(error, match=message) as info:
        reader.feed(capture.response_body)
        reader.close()
    if error is QueryRejectedError:
        assert info.value.status_code == 200 and not isinstance(info.value, ServerReportedError)


def test_text_before_an_error_event_is_delivered_first():
    capture = parse_capture(CAPTURES / "3.6.2" / "upstream_cut_midstream.txt")
    body = capture.response_body
    cut = body.index(b'data: {"type":"error"')
    reader = ResponseReader()
    assert reader.feed(body[:cut]) == [TextDelta("Echo:"), TextDelta(" a")]
    with pytest.raises(ServerReportedError):
        reader.feed(body[cut:])


@pytest.mark.parametrize("version", ["1.9.99", "3.6.2"])
def test_non_streamed_json_answer_is_an_answer(version):
    capture = parse_capture(CAPTURES / version / "nonstream_success.txt")
    events = read_all([capture.response_body])
    assert events[0] == TextDelta("Echo: hello big world")
    assert events[1].result.reply == "Echo: hello big world"


def test_json_rejection_at_200_is_a_query_rejection():
    with pytest.raises(QueryRejectedError, match="rejected"):
        read_all([b'{"success":false,"message":"Sorry, your query has been rejected."}'])


def test_stream_without_end_is_incomplete():
    with pytest.raises(IncompleteStreamError):
        read_all([live("a") + live("b")])


def test_empty_body_is_incomplete():
    with pytest.raises(IncompleteStreamError):
        read_all([b""])


def test_html_page_is_a_protocol_error_naming_the_page():
    with pytest.raises(RemoteProtocolError, match="Just a moment"):
        read_all([b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"])


@pytest.mark.parametrize(
    "line, match",
    [
        (b"data: {not json\n\n", "not JSON"),
        (b'data: ["a"]\n\n', "not a JSON object"),
        (b'data: {"data":"x"}\n\n', "no type"),
        (b'data: {"type":"end","data":"{oops"}\n\n', "end event"),
    ],
)
def test_malformed_events_are_protocol_errors(line, match):
    with pytest.raises(RemoteProtocolError, match=match):
        read_all([line])


def test_unknown_event_types_are_skipped():
    events = read_all([b'data: {"type":"ping"}\n\n' + live("a") + end("a")])
    assert events[0] == TextDelta("a")


def test_nothing_after_end_is_read():
    events = read_all([end("a") + live("late")])
    assert len(events) == 1 and isinstance(events[0], Done)
