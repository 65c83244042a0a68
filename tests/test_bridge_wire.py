"""The bridge on the wire, driven with plain HTTP: the exact bytes, the timing of a stream,
the errors of every route, and shutting down with answers under way."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any, Dict, List

import aiohttp
import pytest
from aiohttp import web

import opchatgpts
from opchatgpts.bridge import create_app, end_open_answers
from opchatgpts.bridge._app import QUEUED_TEXTS, _Arrivals
from opchatgpts.testing import serve_bridge_async, serve_emulator_async

CHAT = "/v1/chat/completions"


def body(text: str, **extra: Any) -> Dict[str, Any]:
    return {"model": "wire-test", "messages": [{"role": "user", "content": text}], **extra}


async def test_stream_bytes_on_the_wire():
    async with serve_emulator_async("open") as site, serve_bridge_async(site.url) as bridge:
        async with aiohttp.ClientSession() as http:
            request = body("hello wire", stream=True, stream_options={"include_usage": True})
            async with http.post(bridge.url + CHAT, json=request) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
                assert response.headers["Cache-Control"] == "no-cache"
                assert response.headers["Transfer-Encoding"] == "chunked"
                raw = await response.read()
    first = json.loads(raw.split(b"\n\n")[0][len(b"data: ") :])
    head = '{"id":"%s","object":"chat.completion.chunk","created":%d,"model":"wire-test",' % (
        first["id"],
        first["created"],
    )
    text = '"choices":[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}],"usage":null}'
    expected = "".join(
        "data: " + line + "\n\n"
        for line in [
            head + '"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
            '"logprobs":null,"finish_reason":null}],"usage":null}',
            head + text % '"Echo:"',
            head + text % '" hello"',
            head + text % '" wire"',
            head + '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}',
            # The emulator's usage: 11 words of instructions and 2 of the message; 3 deltas.
            head + '"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":3,"total_tokens":16}}',
            "[DONE]",
        ]
    ).encode()
    assert raw == expected
    assert first["id"].startswith("chatcmpl-") and abs(first["created"] - time.time()) < 60


async def test_whole_answer_bytes_on_the_wire():
    async with serve_emulator_async("session") as site, serve_bridge_async(site.url) as bridge:
        async with aiohttp.ClientSession() as http:
            async with http.post(bridge.url + CHAT, json=body("hello")) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/json; charset=utf-8"
                answer = await response.json()
    assert answer == {
        "id": answer["id"],
        "object": "chat.completion",
        "created": answer["created"],
        "model": "wire-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Echo: hello", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
    }


async def test_each_delta_is_sent_as_it_arrives():
    # SLOW: the model takes half a second per word.
    async with serve_emulator_async("open") as site, serve_bridge_async(site.url) as bridge:
        async with aiohttp.ClientSession() as http:
            start = time.monotonic()
            arrivals: List[float] = []
            async with http.post(bridge.url + CHAT, json=body("SLOW one two", stream=True)) as response:
                async for line in response.content:
                    if b'"content":"' in line and b'"content":""' not in line:
                        arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 4  # "Echo:", " SLOW", " one", " two"
    assert arrivals[0] < 1.0
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert all(gap > 0.3 for gap in gaps), arrivals


async def test_error_event_ends_a_started_stream_without_done():
    async with serve_emulator_async("nonce") as site, serve_bridge_async(site.url) as bridge:
        async with aiohttp.ClientSession() as http:
            async with http.post(bridge.url + CHAT, json=body("x FAIL_MIDSTREAM", stream=True)) as response:
                assert response.status == 200
                raw = await response.read()
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    error = json.loads(events[-2][len(b"data: ") :])
    assert error == {
        "error": {
            "message": "From OpenAI: cURL error 18: transfer closed with outstanding read data remaining",
            "type": "upstream_error",
            "param": None,
            "code": "server_reported_error",
        }
    }
    assert b"[DONE]" not in raw
    assert b'"finish_reason":"stop"' not in raw


@pytest.mark.parametrize(
    "method, path, payload, status, expected",
    [
        ("POST", CHAT, b"{not json", 400, {"type": "invalid_request_error", "code": "invalid_json"}),
        ("POST", CHAT, b"[]", 400, {"type": "invalid_request_error", "param": None}),
        ("POST", CHAT, b'{"model": "m"}', 400, {"param": "messages", "code": "missing_required_parameter"}),
        ("POST", CHAT, b'{"messages": [], "stream": "yes"}', 400, {"param": "stream"}),
        ("GET", CHAT, b"", 405, {"type": "invalid_request_error"}),
        ("GET", "/v1/nowhere", b"", 404, {"type": "not_found_error"}),
        ("GET", "/v1/models/some/model", b"", 404, {"code": "model_not_found", "param": "model"}),
    ],
    ids=[
        "bad-json", "not-an-object", "no-messages", "stream-not-bool", "wrong-method", "no-route", "no-model"
    ],  # fmt: skip
)
async def test_errors_are_in_openais_shape(method, path, payload, status, expected):
    async with serve_emulator_async("open") as site, serve_bridge_async(site.url) as bridge:
        async with aiohttp.ClientSession() as http:
            headers = {"Content-Type": "application/json"}
            async with http.request(method, bridge.url + path, data=payload, headers=headers) as response:
                assert response.status == status
                assert response.headers["Content-Type"].startswith("application/json")
                answer = await response.json()
    assert set(answer) == {"error"}
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert answer["error"].items() >= expected.items()


async def test_api_key_over_plain_http():
    async with serve_emulator_async("open") as site, serve_bridge_async(site.url, api_key="s3cret") as bridge:
        async with aiohttp.ClientSession() as http:
            wrong = ["Basic czNjcmV0", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Bearer s3cr\u00e9t"]
            for headers in [{}, *({"Authorization": value} for value in wrong)]:
                async with http.get(bridge.url + "/v1/models", headers=headers) as response:
                    assert response.status == 401
                    assert response.headers["WWW-Authenticate"] == "Bearer"
                    assert (await response.json())["error"]["code"] == "invalid_api_key"
            async with http.get(bridge.url + "/v1/nowhere") as response:
                assert response.status == 401  # unknown routes tell nothing either
            good = {"Authorization": "bearer  s3cret "}
            async with http.get(bridge.url + "/v1/models", headers=good) as response:
                assert response.status == 200


async def test_shutdown_lets_short_answers_finish():
    async with serve_emulator_async("open") as site:
        async with opchatgpts.AsyncClient(url=site.url) as client:
            runner = web.AppRunner(create_app(client, drain_timeout=5.0), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}{CHAT}"
            async with aiohttp.ClientSession() as http:
                async with http.post(url, json=body("SLOW a", stream=True)) as response:
                    await response.content.readline()  # the stream has started
                    stopping = asyncio.ensure_future(runner.cleanup())
                    raw = await response.read()
                await stopping
    assert raw.endswith(b"data: [DONE]\n\n")
    assert b'"content":" a"' in raw


async def test_shutdown_ends_long_answers_with_an_error_event():
    async with serve_emulator_async("open") as site:
        async with opchatgpts.AsyncClient(url=site.url) as client:
            app = create_app(client, drain_timeout=0.3)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}{CHAT}"
            async with aiohttp.ClientSession() as http:
                streamed = await http.post(url, json=body("SLOW a b c d e f g h", stream=True))
                whole = asyncio.ensure_future(http.post(url, json=body("SLOW a b c d")))
                await streamed.content.readline()
                while site.emulator.submit_count() < 2:  # both calls have reached the site
                    await asyncio.sleep(0.01)
                start = time.monotonic()
                await runner.cleanup()
                elapsed = time.monotonic() - start
                raw = await streamed.read()
                streamed.release()
                answer = await whole
                assert answer.status == 503
                assert (await answer.json())["error"]["code"] == "shutting_down"
                answer.release()
            for _ in range(100):  # both upstream calls were closed (the emulator notices soon)
                if site.emulator.disconnects == 2:
                    break
                await asyncio.sleep(0.01)
            assert site.emulator.disconnects == 2
    assert elapsed < 2.0
    last = json.loads(raw.split(b"\n\n")[-2][len(b"data: ") :])
    assert last["error"]["code"] == "shutting_down"
    assert b"[DONE]" not in raw


async def test_end_open_answers_does_not_wait():
    async with serve_emulator_async("open") as site, serve_bridge_async(site.url) as bridge:
        async with aiohttp.ClientSession() as http:
            async with http.post(bridge.url + CHAT, json=body("SLOW a b c d e f", stream=True)) as response:
                await response.content.readline()
                end_open_answers(bridge.app)
                raw = await response.read()
    assert b'"code":"shutting_down"' in raw


async def test_requests_after_shutdown_began_are_refused():
    async with serve_emulator_async("open") as site:
        async with opchatgpts.AsyncClient(url=site.url) as client:
            app = create_app(client)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            async with aiohttp.ClientSession() as http:
                async with http.get(url + "/v1/models") as response:  # a kept-alive connection
                    assert response.status == 200
                await app.shutdown()
                async with http.post(url + CHAT, json=body("hello")) as response:
                    assert response.status == 503
            await runner.cleanup()


# -- how a streamed answer is read from the site ----------------------------------------------


class FakeStream:
    """Stands in for ``AsyncChatStream``: yields ``TextDelta``s, in bursts, then maybe fails."""

    def __init__(self, bursts: List[List[str]], error: Any = None, pause: float = 0.05) -> None:
        self.bursts, self.error, self.pause = bursts, error, pause
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> Any:
        try:
            for burst in self.bursts:
                await asyncio.sleep(self.pause)  # the next network read
                for text in burst:
                    self.read += 1
                    yield opchatgpts.TextDelta(text)
            if self.error is not None:
                raise self.error
            yield opchatgpts.Done(opchatgpts.ChatResult(reply=""))
        finally:
            self.closed = True


async def test_texts_are_handed_over_in_the_groups_in_which_they_arrived():
    arrivals = _Arrivals(FakeStream([["a", "b", "c"], ["d"], ["e", "f"]]))  # type: ignore[arg-type]
    try:
        groups = [await arrivals.get() for _ in range(4)]
    finally:
        await arrivals.aclose()
    assert groups == [["a", "b", "c"], ["d"], ["e", "f"], []]


async def test_the_error_comes_after_the_text_before_it():
    failure = opchatgpts.ServerReportedError("cut")
    arrivals = _Arrivals(FakeStream([["a"], ["b", "c"]], error=failure))  # type: ignore[arg-type]
    try:
        assert await arrivals.get() == ["a"]
        assert await arrivals.get() == ["b", "c"]
        with pytest.raises(opchatgpts.ServerReportedError):
            await arrivals.get()
    finally:
        await arrivals.aclose()


async def test_a_slow_caller_pauses_the_reading():
    stream = FakeStream([["x"] * (3 * QUEUED_TEXTS)], pause=0)
    arrivals = _Arrivals(stream)  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.05)
        assert stream.read == QUEUED_TEXTS  # and no further until the caller takes some
        assert len(await arrivals.get()) == QUEUED_TEXTS
        await asyncio.sleep(0.05)
        assert stream.read == 2 * QUEUED_TEXTS
    finally:
        await arrivals.aclose()
    assert stream.closed


async def test_closing_stops_the_reading_at_once():
    stream = FakeStream([["a"], ["b"]], pause=10)
    arrivals = _Arrivals(stream)  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    await asyncio.wait_for(arrivals.aclose(), 1)
    assert stream.closed and stream.read == 0


def test_create_app_needs_an_async_client():
    with opchatgpts.Client(url="http://127.0.0.1:9") as client:
        with pytest.raises(TypeError, match="AsyncClient"):
            create_app(client)  # type: ignore[arg-type]


def test_importing_opchatgpts_does_not_import_the_bridge():
    code = "import sys, opchatgpts; print(sorted(m for m in sys.modules if 'bridge' in m or m == 'openai'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
