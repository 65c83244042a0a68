"""Property tests of the protocol core (no I/O): the decoder and the response reader.

* Any chunking of any valid event stream gives exactly the same events and text.
* The events delivered before a failure do not depend on the chunking either.
* Any bytes at all end in events or in a typed ``OpchatgptsError``: never another
  exception, never a hang.

Example counts stay modest so that the suite stays fast. CI draws the same examples on every
run (the ``ci`` profile, tests/conftest.py), and each case that a property or a mutant once
exposed is an ``@example``, replayed on every run.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opchatgpts import (
    Done,
    LiveEvent,
    OpchatgptsError,
    RemoteProtocolError,
    ResponseTooLargeError,
    TextDelta,
)
from opchatgpts._protocol.decoder import SSEDecoder
from opchatgpts._protocol.response import ResponseReader

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])
SUBTYPES = st.sampled_from(["thinking", "tool_call", "status", "debug", "heartbeat", "warning"])


# -- valid streams -----------------------------------------------------------------------------


@st.composite
def live_events(draw: Any) -> Dict[str, Any]:
    text = draw(st.text(max_size=20))
    kind = draw(st.sampled_from(["plain", "content", "rich", "unknown"]))
    if kind == "plain":
        return {"type": "live", "data": text}
    if kind == "content":
        return {"type": "live", "subtype": "content", "data": text}
    if kind == "rich":
        return {
            "type": "live",
            "subtype": draw(SUBTYPES),
            "data": text,
            "visibility": draw(st.sampled_from(["visible", "hidden", "collapsed"])),
        }
    return {"type": "some_future_type", "data": text}


@st.composite
def event_text(draw: Any, payload: Dict[str, Any]) -> str:
    """One event as the server may frame it: ``data:`` with or without its space, any line
    ending, comments and extra blank lines around it."""
    newline = draw(NEWLINES)
    body = json.dumps(payload, ensure_ascii=draw(st.booleans()))
    text = ""
    if draw(st.booleans()):
        text += ": keep-alive" + newline
    if draw(st.booleans()):
        text += "id: 7" + newline
    text += ("data: " if draw(st.booleans()) else "data:") + body + newline + newline
    text += newline * draw(st.integers(0, 2))
    return text


@st.composite
def valid_streams(draw: Any) -> Tuple[bytes, List[Dict[str, Any]], str]:
    """(body, the live events in it, the reply of its end event)."""
    events = draw(st.lists(live_events(), max_size=12))
    reply = "".join(e["data"] for e in events if e["type"] == "live" and "visibility" not in e)
    end = {"type": "end", "data": json.dumps({"success": True, "reply": reply})}
    text = "".join(draw(event_text(e)) for e in events + [end])
    return text.encode("utf-8"), events, reply


# How a body is cut into chunks: "bytes" (one byte each, for short bodies) or cut points,
# taken modulo the body's length. Drawn as a value, not with st.data(), so @example can name one.
CUTS = st.one_of(st.just("bytes"), st.lists(st.integers(0, 1 << 16), max_size=24))


def split(body: bytes, cuts: Any) -> List[bytes]:
    """Cut ``body`` where ``cuts`` says."""
    if cuts == "bytes":
        return [body[i : i + 1] for i in range(len(body))] if len(body) < 200 else [body]
    bounds = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    return [body[a:b] for a, b in zip(bounds, bounds[1:])]


def stream_of(*payloads: Dict[str, Any], newline: str = "\n") -> Tuple[bytes, List[Dict[str, Any]], str]:
    """A ``valid_streams`` value, for @example: these live events, then the end event."""
    reply = "".join(p["data"] for p in payloads if p["type"] == "live" and "visibility" not in p)
    end = {"type": "end", "data": json.dumps({"success": True, "reply": reply})}
    text = "".join(f"data: {json.dumps(p)}{newline}{newline}" for p in [*payloads, end])
    return text.encode("utf-8"), list(payloads), reply


def read(chunks: Sequence[bytes], max_line_bytes: int = 16 * 1024 * 1024) -> List[Any]:
    reader = ResponseReader(chat_id="c", max_line_bytes=max_line_bytes)
    events: List[Any] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    return events + reader.close()


def read_until_error(
    chunks: Sequence[bytes], max_line_bytes: int = 16 * 1024 * 1024
) -> Tuple[List[Any], Optional[BaseException]]:
    """The events delivered, and the error that ended the reading (if any); as the engine
    does, it stops at the first error."""
    reader = ResponseReader(chat_id="c", max_line_bytes=max_line_bytes)
    events: List[Any] = []
    try:
        for chunk in chunks:
            events += reader.feed(chunk)
            if reader.done:
                break
        events += reader.close()
    except OpchatgptsError as exc:
        return events, exc
    return events, None


def expected_event(payload: Dict[str, Any]) -> Any:
    if payload["type"] != "live":
        return None
    if "visibility" in payload:
        return LiveEvent(payload["subtype"], payload["data"], payload["visibility"])
    return TextDelta(payload["data"])


LIVE_A = {"type": "live", "data": "a"}
LIVE_B = {"type": "live", "data": "b"}
CRLF_STREAM = stream_of(LIVE_A, LIVE_B, newline="\r\n")
# A chunk that holds a CR but ends on text, then a chunk that starts with LF.
CR_THEN_LF = (
    b'data: {"type":"live","data":"a"}\r\rdata: {"type":"live","data":"b"}\n\n'
    b'data: {"type":"end","data":"{\\"reply\\":\\"ab\\"}"}\n\n'
)


@SETTINGS
@given(valid_streams(), CUTS)
# A CRLF cut between its CR and its LF is one line end, not two (an early blank line).
@example(CRLF_STREAM, [CRLF_STREAM[0].index(b"\n")])
# The LF that starts a chunk after one that ends on text ends a line of its own: it is not the
# second half of a CRLF (taking it for one once merged two events).
@example((CR_THEN_LF, [LIVE_A, LIVE_B], "ab"), [CR_THEN_LF.index(b"\n")])
def test_any_chunking_gives_the_same_events(stream: Any, cuts: Any) -> None:
    body, payloads, reply = stream
    whole = read([body])
    *answer, done = whole
    assert answer == [e for e in map(expected_event, payloads) if e is not None]
    assert isinstance(done, Done) and done.result.reply == reply
    assert read(split(body, cuts)) == whole


@SETTINGS
@given(valid_streams(), CUTS)
def test_any_chunking_gives_the_same_payloads(stream: Any, cuts: Any) -> None:
    body, _, _ = stream
    decoder = SSEDecoder()
    whole = decoder.feed(body) + decoder.close()
    decoder = SSEDecoder()
    pieces: List[str] = []
    for chunk in split(body, cuts):
        pieces += decoder.feed(chunk)
    assert pieces + decoder.close() == whole
    assert len(whole) == len(stream[1]) + 1


@SETTINGS
@given(valid_streams(), st.lists(st.booleans(), min_size=1))
@example(CRLF_STREAM, [True])
@example(stream_of(LIVE_A, LIVE_B, newline="\r"), [True])
def test_cuts_at_line_ends_give_the_same_events(stream: Any, mask: List[bool]) -> None:
    """The chunk boundaries that matter most, on purpose: right after a CR and right before an
    LF (so between the two halves of every CRLF). ``mask`` picks which of them are cut."""
    body, _, _ = stream
    ends = [i for i in range(1, len(body)) if body[i - 1 : i] == b"\r" or body[i : i + 1] == b"\n"]
    cuts = [i for n, i in enumerate(ends) if mask[n % len(mask)]]
    assert read(split(body, cuts)) == read([body])


BAD_TAILS = {
    "invalid UTF-8": (b'data: {"type":"live","data":"\xff"}\n\n', RemoteProtocolError),
    "malformed JSON": (b'data: {"type":"live","data":\n\n', RemoteProtocolError),
    "no type": (b'data: {"data":"x"}\n\n', RemoteProtocolError),
    "too long": (b"data: " + b"x" * 600 + b"\n\n", ResponseTooLargeError),
}


@SETTINGS
@given(st.lists(st.text(max_size=10), max_size=8), st.sampled_from(sorted(BAD_TAILS)), CUTS)
# Every line cut in two under the small cap: the cap is per line, not on the whole answer.
@example(["a", "b", "c", "d", "e", "f", "g", "h"], "no type", list(range(0, 400, 5)))
def test_what_arrived_before_a_failure_is_delivered_whatever_the_chunking(
    texts: List[str], tail: str, cuts: Any
) -> None:
    bad, error = BAD_TAILS[tail]
    body = b"".join(
        b"data: " + json.dumps({"type": "live", "data": t}).encode() + b"\n\n" for t in texts
    )
    # A cap above every good line (at most ~150 bytes) and below the long one.
    events, raised = read_until_error(split(body + bad, cuts), max_line_bytes=200)
    assert events == [TextDelta(t) for t in texts]
    assert type(raised) is error


AFTER_END = [b"data: \xff\n\n", b"data: {oops\n\n", b"data: {oops", b"x" * 300, b"\r",
             b'data: {"type":"live","data":"late"}', b'data: {"type":"live","data":"late"}\n\n']


@SETTINGS
@given(valid_streams(), st.sampled_from(AFTER_END), CUTS)
@example(stream_of(LIVE_A), b"data: \xff\n\n", [])  # the bad line in the end event's chunk
def test_nothing_after_the_end_event_is_read(stream: Any, junk: bytes, cuts: Any) -> None:
    body, _, _ = stream
    events, raised = read_until_error(split(body + junk, cuts))
    assert raised is None and events == read([body])


# -- any bytes at all --------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        b"data: ", b"data:", b"\n", b"\r", b"\r\n", b"\n\n", b": ping\n", b"event: x\n",
        b'{"type":"live","data":"hi"}', b'{"type":"live","subtype":"status","data":{}}',
        b'{"type":"end","data":"{\\"success\\":true,\\"reply\\":\\"r\\"}"}',
        b'{"type":"end","data":"{\\"success\\":false,\\"message\\":\\"m\\"}"}',
        b'{"type":"end","data":"[1]"}', b'{"type":"end","data":7}',
        b'{"type":"error","data":"boom"}', b'{"type":"error"}', b'{"type":null}',
        b'{"type":["live"]}', b'{"type":"live","data":[1,{"a":null}]}',
        b'{"success":false,"message":"no"}', b'{"reply":"r"}', b'{"code":"rest_forbidden"}',
        b"[", b"]", b"{", b"}", b'"', b"null", b"1e999999", b"9" * 5000, b"[" * 3000,
        b"\xff", b"\xe2\x82", b"\xc3\xa9", b"\x00", b"\xef\xbb\xbf",
        b"<html><title>x</title>", b"  ", b"\t",
        # Whole events that nest too deep for the JSON parser.
        b"data: " + b"[" * 3000 + b"\n\n",
        b'data: {"type":"end","data":"' + b"[" * 3000 + b'"}\n\n',
    ]
)
ANY_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(FRAGMENTS, st.binary(max_size=6)), max_size=30).map(b"".join),
)


@pytest.mark.timeout(60)
@SETTINGS
@given(ANY_BYTES, st.sampled_from([16 * 1024 * 1024, 4096, 40, 1]), CUTS)
# End payloads that are JSON but not an object; a live event whose data is null.
@example(b'data: {"type":"end","data":"[1]"}\n\n', 4096, [])
@example(b'data: {"type":"end","data":7}\n\n', 4096, [])
@example(b'data: {"type":"live","data":null}\n\ndata: {"type":"end","data":"{}"}\n\n', 4096, [30])
def test_any_bytes_end_in_events_or_a_typed_error(body: bytes, cap: int, cuts: Any) -> None:
    reader = ResponseReader(chat_id="c", max_line_bytes=cap)
    events: List[Any] = []
    try:
        for chunk in split(body, cuts):
            events += reader.feed(chunk)
        events += reader.close()
    except OpchatgptsError:
        return
    # No error: a complete answer, ending with its one Done.
    assert events and isinstance(events[-1], Done)
    assert not any(isinstance(e, Done) for e in events[:-1])
    assert all(isinstance(e, (TextDelta, LiveEvent, Done)) for e in events)


@pytest.mark.timeout(60)
@SETTINGS
@given(ANY_BYTES, CUTS)
def test_any_bytes_give_the_same_outcome_whatever_the_chunking(body: bytes, cuts: Any) -> None:
    whole = read_until_error([body])
    pieces = read_until_error(split(body, cuts))
    assert type(pieces[1]) is type(whole[1])
    assert pieces[0] == whole[0]
