"""The rich event API: typed events while streaming, the final result afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import List

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from capturefile import parse as parse_capture

import opchatgpts
from opchatgpts import ChatResult, Done, LiveEvent, Opchatgpts, TextDelta

CAPTURES = Path(__file__).parent / "captures"


def replay(capture_name: str) -> web.Application:
    """A site that answers chats/submit with a recorded body, byte for byte."""
    capture = parse_capture(CAPTURES / capture_name)

    async def submit(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": capture.response_header("Content-Type") or "text/event-stream"}
        )
        await response.prepare(request)
        await response.write(capture.response_body)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/wp-json/mwai-ui/v1/chats/submit", submit)
    return app


def user(text: str) -> list:
    return [{"role": "user", "content": text}]


async def test_rich_events_then_the_result():
    async with TestServer(replay("3.6.2/stream_rich_events.txt"), host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        stream = Opchatgpts.stream_events_async(user("hello big world"), url=url, chat_id="c0ffee1234")
        events = [event async for event in stream]
        await stream.aclose()
    status = events[0]
    assert isinstance(status, LiveEvent)
    assert (status.subtype, status.visibility, status.data) == ("status", "collapsed", "Starting stream...")
    assert status.metadata == {"model": "fake-echo-1", "id": "chatcmpl-fake000007"}
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Echo:", " hello", " big", " world"]
    assert isinstance(events[-1], Done)
    result = stream.result
    assert isinstance(result, ChatResult)
    assert result.reply == "Echo: hello big world" == stream.text
    assert result.usage["total_tokens"] == 14
    assert result.images is None and result.actions == []
    assert result.chat_id == "c0ffee1234"
    assert result.raw["responseId"] == "chatcmpl-fake000007"


def test_sync_event_stream_and_text_only_mode():
    async def serve_and(run):
        async with TestServer(replay("3.6.2/stream_rich_events.txt"), host="127.0.0.1") as server:
            url = str(server.make_url("")).rstrip("/")
            return await asyncio.get_running_loop().run_in_executor(None, run, url)

    def events_of(url: str) -> List[object]:
        with Opchatgpts.stream_events(user("hello big world"), url=url) as stream:
            events = list(stream)
            assert stream.result is not None and stream.result.reply == "Echo: hello big world"
            return events

    def text_of(url: str) -> List[str]:
        stream = Opchatgpts.stream_events(user("hello big world"), url=url, text=True)
        parts = list(stream)
        assert stream.result is not None
        return parts

    events = asyncio.run(serve_and(events_of))
    assert isinstance(events[0], LiveEvent) and isinstance(events[-1], Done)
    # The plain APIs and text mode never show the status event.
    assert asyncio.run(serve_and(text_of)) == ["Echo:", " hello", " big", " world"]
    plain = asyncio.run(serve_and(lambda url: list(Opchatgpts.create_completion(None, user("x"), url=url))))
    assert plain == ["Echo:", " hello", " big", " world"]


def test_until_done_returns_the_result(emulator):
    stream = Opchatgpts.stream_events(user("a b"), url=emulator.url)
    result = stream.until_done()
    assert result.reply == "Echo: a b" and result.usage is not None


def test_non_streamed_answer_has_a_result_too(emulator):
    stream = Opchatgpts.stream_events(user("once"), url=emulator.url, stream=False)
    events = list(stream)
    assert events[0] == TextDelta("Echo: once")
    assert stream.result is not None and stream.result.reply == "Echo: once"


def test_a_rotated_nonce_is_the_results_new_token():
    from opchatgpts.testing import serve_emulator

    with serve_emulator("session") as site:
        opchatgpts.ask("warm", url=site.url)
        site.emulator.rotate_nonce()
        result = Opchatgpts.stream_events(user("x"), url=site.url).until_done()
        assert result.new_token == site.emulator.current_nonce


async def test_actions_and_the_other_end_fields_reach_the_caller():
    actions = [{"type": "function", "data": {"name": "open_page", "args": {"url": "/pricing"}}}]
    shortcuts = [{"type": "message", "data": {"label": "Tell me more", "message": "More"}}]
    payload = {
        "success": True, "reply": "Opening it", "images": ["https://e.com/a.png"], "actions": actions,
        "shortcuts": shortcuts, "blocks": [], "usage": {"total_tokens": 7}, "new_token": "0123abcd",
    }
    body = (
        'data: {"type":"live","data":"Opening it"}\n\n'
        f"data: {json.dumps({'type': 'end', 'data': json.dumps(payload)})}\n\n"
    )

    async def submit(request: web.Request) -> web.Response:
        return web.Response(body=body.encode(), content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/wp-json/mwai-ui/v1/chats/submit", submit)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        stream = Opchatgpts.stream_events_async(user("open the pricing page"), url=url)
        events = [event async for event in stream]
        await stream.aclose()
    assert events[0] == TextDelta("Opening it")
    result = stream.result
    assert result is not None and result.actions == actions and result.images == ["https://e.com/a.png"]
    assert result.new_token == "0123abcd" and result.usage == {"total_tokens": 7}
    assert result.raw["shortcuts"] == shortcuts


def test_until_done_after_an_early_close_is_a_clear_error(emulator):
    emulator.emulator.delta_delay = 0.05
    stream = Opchatgpts.stream_events(user("a b c d e f"), url=emulator.url)
    next(stream)
    stream.close()
    with pytest.raises(opchatgpts.IncompleteStreamError, match="closed before"):
        stream.until_done()
