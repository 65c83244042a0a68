"""The SSE decoder and the event parser, fed hand-split bytes."""

from __future__ import annotations

import json
import time
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


def read_all(chunks, chat_id=None, max_line_bytes=16 * 1024 * 1024):
    reader = ResponseReader(chat_id=chat_id, max_line_bytes=max_line_bytes)
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


def test_only_an_lf_right_after_a_cr_is_dropped():
    # A chunk ending in LF (after a CR earlier in it), then one starting with LF: a blank line.
    assert decode_all([b"data: x\r\n", b"\ndata: y\n\n"]) == ["x", "y"]
    # After a CR, a chunk starting with another control byte keeps it.
    assert decode_all([b"data: a\r", b"\tdata: b\r\r"]) == ["a"]


def test_after_a_failure_the_decoder_fails_again():
    # With no event before it in its chunk, the failure is raised by that very call...
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        SSEDecoder().feed(b"data: \xff\n\n")
    # ...otherwise the events come first, and every later call raises it.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: \xff\n\n") == ["a"]
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        decoder.feed(b"data: b\n\n")
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        decoder.close()


def test_lf_after_a_chunk_that_ends_on_text_is_a_line_end():
    # The first chunk holds a CR but ends on "y": the LF that starts the next chunk ends the
    # line "data: y" and the blank line after it ends the event; it is not half of a CRLF.
    assert decode_all([b"data: x\rdata: y", b"\n\ndata: z\n\n"]) == ["x\ny", "z"]
    assert decode_all([b"data: x\r\r", b"\ndata: z\n\n"]) == ["x", "z"]


def test_empty_chunks_change_nothing():
    # Not even between the two halves of a CRLF.
    assert decode_all([b"", b"data: x\r", b"", b"\n", b"", b"data: y\r\n\r\n", b""]) == ["x\ny"]


def test_close_gives_the_last_event_once():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == ["a"]
    assert decoder.close() == ["b"]
    assert decoder.close() == []


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


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 4, 8])
def test_a_byte_order_mark_that_starts_the_body_is_dropped(cut: int) -> None:
    body = BOM + b"data: a\n\ndata: b\n\n"
    assert decode_all([body[:cut], body[cut:]]) == ["a", "b"]
    assert decode_all([bytes([byte]) for byte in body]) == ["a", "b"]


def test_a_byte_order_mark_alone_is_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(BOM) == [] and decoder.feed(b"data: a\n\n") == ["a"]
    assert decode_all([BOM]) == []
    assert decode_all([BOM], max_line_bytes=1) == []  # it is no part of a line
    assert decode_all([BOM[:1], BOM[1:2]]) == []  # the body ended inside it


def test_only_the_first_byte_order_mark_is_dropped() -> None:
    # Only the body's first character: a later one (or a second one) is text.
    assert decode_all([BOM + BOM + b"data: a\n\n"]) == []  # "\ufeffdata: a" is no field
    assert decode_all([BOM + b"data: " + BOM + b"a\n\n"]) == ["\ufeffa"]
    assert decode_all([b"data: a\n\n", BOM + b"data: b\n\n"]) == ["a"]
    assert decode_all([b"da", b"ta: a\n\n"]) == ["a"]  # short, but no BOM
    assert decode_all([b"\xef", b"\xbb", b"data: a\n\n"]) == []  # two thirds of one is no field


def test_a_body_cut_inside_a_byte_order_mark_is_a_line_like_any_other() -> None:
    with pytest.raises(ResponseTooLargeError):
        decode_all([BOM[:2]], max_line_bytes=1)
    assert decode_all([BOM[:2]], max_line_bytes=2) == []


def test_space_after_colon_is_optional_and_only_one_is_removed():
    assert decode_all([b"data:x\n\ndata:  y\n\n"]) == ["x", " y"]
    assert decode_all([b"data:\tx\n\ndata:\x01y\n\n"]) == ["\tx", "\x01y"]  # only a space


def test_comments_and_other_fields_are_ignored():
    assert decode_all([b": keep-alive\n\nevent: foo\nid: 3\nretry: 10\ndata: z\n\n"]) == ["z"]


def test_blank_lines_alone_produce_nothing():
    assert decode_all([b"\n\n\r\n\r\r\n"]) == []


def test_event_without_final_blank_line_is_kept_at_close():
    assert decode_all([b"data: last"]) == ["last"]


@pytest.mark.parametrize("cap", [0, -1])
def test_the_cap_must_be_positive(cap):
    with pytest.raises(ValueError, match="max_line_bytes must be positive"):
        SSEDecoder(max_line_bytes=cap)
    assert decode_all([b"data: \n\n"], max_line_bytes=6) == [""]


def test_the_default_cap_is_16_mib():
    decoder = SSEDecoder()
    assert decoder.feed(b"x" * (16 * 1024 * 1024)) == []
    with pytest.raises(ResponseTooLargeError, match="max_line_bytes=16777216"):
        decoder.feed(b"x")


@pytest.mark.parametrize("where", ["one chunk", "split", "unfinished", "after a split line"])
def test_a_line_of_exactly_the_cap_passes_and_one_byte_more_fails(where):
    def feed(line: bytes) -> list:
        if where == "one chunk":
            return decode_all([line + b"\n\n"], max_line_bytes=20)
        if where == "split":
            return decode_all([line[:7], line[7:], b"\n\n"], max_line_bytes=20)
        if where == "after a split line":  # it starts in the chunk that ends the line before
            return decode_all([b"data: a", b"\n\n" + line[:7], line[7:]], max_line_bytes=20)[1:]
        return decode_all([line[:7], line[7:]], max_line_bytes=20)  # ended by close()

    assert feed(b"data: " + b"x" * 14) == ["x" * 14]  # 20 bytes
    with pytest.raises(ResponseTooLargeError, match="max_line_bytes=20"):
        feed(b"data: " + b"x" * 15)


def test_the_cap_is_per_line_not_per_answer():
    # Hundreds of lines, each cut in two by the chunking, under a cap just above one line:
    # the whole answer is far over the cap, and that is fine.
    body = b"".join(b"data: event %03d\n\n" % i for i in range(300))
    chunks = [body[i : i + 9] for i in range(0, len(body), 9)]
    assert decode_all(chunks, max_line_bytes=16) == [f"event {i:03d}" for i in range(300)]
    body = b"".join(live(f"t{i}") for i in range(200)) + end("")
    chunks = [body[i : i + 25] for i in range(0, len(body), 25)]
    events = read_all(chunks, max_line_bytes=80)
    assert len(events) == 201 and isinstance(events[-1], Done)


def test_line_cap_applies_to_unfinished_lines():
    decoder = SSEDecoder(max_line_bytes=100)
    decoder.feed(b"data: " + b"x" * 50)
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b"x" * 60)


def test_line_cap_applies_to_complete_lines_in_one_chunk():
    with pytest.raises(ResponseTooLargeError):
        decode_all([b"data: " + b"x" * 200 + b"\n\n"], max_line_bytes=100)


def test_a_long_line_costs_no_more_in_many_chunks_than_in_one():
    # An 8 MiB line in 2,048 chunks of 4 KiB: the work per chunk must not grow with the line
    # already held. A decoder that joined the pieces again on every chunk (quadratic) takes
    # 20-50 times as long here as for the line in one chunk; this one takes about the same.
    text = "y" * (8 * 1024 * 1024)
    body = live(text)

    def seconds(chunks: list) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            events = read_all(chunks + [end("")])
            best = min(best, time.perf_counter() - start)
            assert events[0] == TextDelta(text)
        return best

    one = seconds([body])
    many = seconds([body[i : i + 4096] for i in range(0, len(body), 4096)])
    assert many / one < 8, (one, many)


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
