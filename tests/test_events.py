"""One event's JSON in, one typed event out (no I/O): every field a caller can see."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from opchatgpts import ChatResult, Done, LiveEvent, RemoteProtocolError, ServerReportedError, TextDelta
from opchatgpts._protocol.events import parse_event, result_from_payload


def end_event(payload: Any) -> str:
    return json.dumps({"type": "end", "data": json.dumps(payload)})


def result_of(payload: Any, chat_id: Any = None) -> ChatResult:
    done = parse_event(end_event(payload), chat_id)
    assert isinstance(done, Done)
    return done.result


def test_a_3x_end_payload_with_every_field():
    actions = [{"type": "function", "data": {"name": "open_page", "args": {"url": "/pricing"}}}]
    images = ["https://e.com/a.png"]
    usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14, "price": 0.0001}
    payload = {
        "success": True, "reply": "Echo: hi", "images": images, "actions": actions,
        "usage": usage, "shortcuts": [{"type": "message", "data": {"label": "More"}}],
        "blocks": [], "responseId": "chatcmpl-1", "new_token": "f44b4f4fcc",
    }
    result = result_of(payload, chat_id="c0ffee1234")
    assert result.reply == "Echo: hi" and result.chat_id == "c0ffee1234"
    assert result.actions == actions and result.images == images and result.usage == usage
    assert result.new_token == "f44b4f4fcc"
    assert result.raw == payload and result.raw["shortcuts"][0]["data"]["label"] == "More"


def test_a_1_9_end_payload():
    result = result_of({"success": True, "reply": "r", "images": None, "usage": {"total_tokens": 3}})
    assert (result.reply, result.images, result.actions, result.new_token) == ("r", None, [], None)
    assert result.usage == {"total_tokens": 3} and result.chat_id is None


@pytest.mark.parametrize("odd", [None, "x", 7, {"a": 1}, [1]])
def test_fields_of_the_wrong_type_are_ignored(odd):
    payload = {"reply": odd, "usage": odd, "images": odd, "actions": odd, "new_token": odd}
    result = result_from_payload(payload)
    assert result.reply == ("x" if odd == "x" else "")
    assert result.usage == (odd if isinstance(odd, dict) else None)
    assert result.images == (odd if isinstance(odd, list) else None)
    assert result.actions == (odd if isinstance(odd, list) else [])
    assert result.new_token == ("x" if odd == "x" else None)
    assert result.raw == payload and result.raw is not payload


def test_an_empty_new_token_is_no_token():
    assert result_from_payload({"reply": "r", "new_token": ""}).new_token is None


def test_an_end_event_whose_data_is_already_an_object():
    done = parse_event(json.dumps({"type": "end", "data": {"success": True, "reply": "r"}}))
    assert isinstance(done, Done) and done.result.reply == "r"


@pytest.mark.parametrize("data", ["[1]", "7", "null", '"text"', 7, None, [1]])
def test_end_data_that_is_not_an_object_is_a_protocol_error(data):
    with pytest.raises(RemoteProtocolError, match="the end event's data is not a JSON object"):
        parse_event(json.dumps({"type": "end", "data": data}))


def test_end_data_that_is_not_json_is_a_protocol_error():
    with pytest.raises(RemoteProtocolError, match="the end event's data is not JSON: '{oops'"):
        parse_event(json.dumps({"type": "end", "data": "{oops"}))
    with pytest.raises(RemoteProtocolError, match="the end event's data is not JSON"):
        parse_event(json.dumps({"type": "end", "data": "[" * 100_000}))


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"success": False, "message": "You have reached the limit."}, "You have reached the limit."),
        ({"success": False}, "the server reported a failure"),
        ({"success": False, "message": ""}, "the server reported a failure"),
    ],
)
def test_an_end_event_that_reports_failure(payload, message):
    with pytest.raises(ServerReportedError) as info:
        parse_event(end_event(payload))
    assert str(info.value) == message


@pytest.mark.parametrize("success", [None, 0, "", True, "false"])
def test_only_success_false_is_a_failure(success):
    assert result_of({"success": success, "reply": "r"}).reply == "r"
    assert result_of({"reply": "r"}).reply == "r"


@pytest.mark.parametrize(
    "data, message", [("From OpenAI: boom", "From OpenAI: boom"), (None, "the server reported an error"),
                      ("", "the server reported an error"), (42, "42")],
)
def test_error_events(data, message):
    with pytest.raises(ServerReportedError) as info:
        parse_event(json.dumps({"type": "error", "data": data}))
    assert str(info.value) == message


@pytest.mark.parametrize("data, text", [("hi", "hi"), (None, ""), (5, "5"), ("", "")])
def test_live_text(data, text):
    assert parse_event(json.dumps({"type": "live", "data": data})) == TextDelta(text)
    assert parse_event(json.dumps({"type": "live", "subtype": "content", "data": data})) == TextDelta(text)


def test_a_live_event_with_no_data_is_no_text():
    assert parse_event('{"type":"live"}') == TextDelta("")


def test_rich_live_events_keep_every_field():
    event = parse_event(json.dumps({
        "type": "live", "subtype": "tool_call", "data": {"name": "search"}, "visibility": "hidden",
        "timestamp": 1700000000, "metadata": {"id": "t1"},
    }))
    assert event == LiveEvent("tool_call", {"name": "search"}, "hidden", 1700000000, {"id": "t1"})
    bare = parse_event('{"type":"live","subtype":"heartbeat","metadata":null}')
    assert bare == LiveEvent("heartbeat", None, None, None, {})


@pytest.mark.parametrize("kind", ["ping", "begin", "", "a_future_type", "zzz"])
def test_unknown_event_types_are_none_and_logged(caplog, kind):
    caplog.set_level(logging.DEBUG, logger="opchatgpts")
    assert parse_event(json.dumps({"type": kind, "data": "x"})) is None
    assert caplog.messages == [f"ignoring an event of unknown type {kind!r}"]


@pytest.mark.parametrize("subtype", ["annotation", "citation", "zzz"])
def test_subtypes_a_future_version_may_add_are_not_text(subtype):
    event = parse_event(json.dumps({"type": "live", "subtype": subtype, "data": "x"}))
    assert event == LiveEvent(subtype, "x")


@pytest.mark.parametrize(
    "payload, message",
    [
        ('{"type":"live","data":"a"} trailing', "malformed event, not JSON"),
        ('{"type":"live"', "malformed event, not JSON"),
        ("[" * 100_000, "malformed event, not JSON"),
        ('["live"]', "malformed event, not a JSON object"),
        ('{"data":"x"}', "malformed event, no type"),
        ('{"type":null}', "malformed event, no type"),
    ],
)
def test_what_is_not_an_event(payload, message):
    with pytest.raises(RemoteProtocolError, match=message):
        parse_event(payload)


def test_whitespace_around_the_json_is_fine():
    assert parse_event(' {"type":"live","data":"a"}') == TextDelta("a")
    assert parse_event('{"type":"live","data":"a"}\t ') == TextDelta("a")


def test_long_payloads_are_clipped_in_error_messages():
    exact = json.dumps("a" * 118)  # 120 characters
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(exact)
    assert str(info.value) == f"malformed event, not a JSON object: {exact!r}"
    longer = json.dumps("a" * 119)  # 121 characters
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(longer)
    assert str(info.value) == f"malformed event, not a JSON object: {longer[:120] + '...'!r}"


def test_the_result_names_the_site_and_types_the_usage() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14, "price": 1}
    payload = {"reply": "r", "usage": usage}
    done = parse_event(end_event(payload), "c", "https://e.com")
    assert isinstance(done, Done)
    result = done.result
    assert (result.chat_id, result.site) == ("c", "https://e.com")
    assert result.usage is not None
    counts = (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens)
    assert counts == (9, 5, 14)
    assert result.usage.extras == {"price": 1}
    assert result_from_payload(payload, "c", "https://e.com").site == "https://e.com"
    assert result_from_payload(payload).site is None and result_of(payload).site is None
