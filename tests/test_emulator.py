"""The AI Engine emulator: replayed captures, the chatbot page, fault knobs, servers."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from capturefile import Capture, parse
from multidict import CIMultiDictProxy

from opchatgpts.emulator import Emulator, Faults

# The fixture is what ``pytest_plugins = ["opchatgpts.testing"]`` gives a conftest;
# a test module may not declare a plugin that is already imported, so it imports it.
from opchatgpts.testing import (
    RunningEmulator,
    opchatgpts_emulator,  # noqa: F401
    serve_emulator,
    serve_emulator_async,
)

CAPTURES = Path(__file__).parent / "captures"
GENERATION_OF_VERSION = {"1.9.99": "open", "2.4.3": "nonce", "3.6.2": "session"}
# Files that are not chat exchanges.
NOT_REPLAYED = {
    "page",
    "rest_namespace_mwai_v1",
    "new_token_nonces",
}
# Recorded with the plugin's event logs on (the others with them off).
WITH_EVENT_LOGS = {"stream_rich_events"}
REPLAYED = sorted(
    path
    for version in GENERATION_OF_VERSION
    for path in (CAPTURES / version).glob("*.txt")
    if path.stem not in NOT_REPLAYED
)
BAD_NONCE = "0123456789"
SUBMIT = "/mwai-ui/v1/chats/submit"
JSON_TYPE = "application/json; charset=UTF-8"
EVENT_STREAM_TYPE = "text/event-stream;charset=UTF-8"
REJECTED = {"success": False, "message": "Sorry, your query has been rejected."}

# Values that belong to one recording: token counts, response ids, nonces,
# session ids and the site's port.
PER_RECORDING = (
    (re.compile(rb'(_tokens\\?":)\d+'), rb"\1N"),
    (re.compile(rb"chatcmpl-[0-9a-z]+"), b"chatcmpl-ID"),
    (re.compile(rb'((?:new_token|restNonce|sessionId)\\?":\\?")[0-9a-f]+'), rb"\1X"),
    (re.compile(rb"127\.0\.0\.1:\d+"), b"HOST"),
    (re.compile(rb'("timestamp":)[0-9.]+'), rb"\1T"),
)


def normalise(body: bytes) -> bytes:
    """``body`` with the per-recording values replaced by placeholders."""
    for pattern, replacement in PER_RECORDING:
        body = pattern.sub(replacement, body)
    return body


def request_body(capture: Capture, path: Path) -> bytes:
    """The request body as it was sent, rebuilt where the file holds only its start.

    A cut body is the browser's request with ``newMessage`` one letter repeated N
    times, N being the first number in the file name; what follows is the
    ``stream`` flag, whichever of the two gives the stated length.
    """
    if not capture.request_body_truncated:
        return capture.request_body
    number = re.search(r"\d+", path.stem)
    assert number is not None, f"no letter count in the name of {path}"
    count = int(number.group())
    fill = capture.request_body[-1:]
    head = capture.request_body.rstrip(fill)
    for stream in (b"true", b"false"):
        body = head + fill * count + b'", "stream": ' + stream + b"}"
        if len(body) == capture.request_body_length:
            return body
    raise AssertionError(f"cannot rebuild the request body of {path}")


def nonce_to_send(capture: Capture, emulator: Emulator) -> str | None:
    """The emulator's counterpart of the nonce the recorded request carried.

    The recorded answer tells which it was: echoed in X-WP-Nonce, the current
    one; answered with another X-WP-Nonce, the previous tick's; refused, a bad one.
    """
    sent = capture.request_headers.get("X-WP-Nonce")
    if sent is None:
        return None
    answered = capture.response_header("X-WP-Nonce")
    if answered is None:
        return BAD_NONCE
    return emulator.current_nonce if sent == answered else emulator.previous_nonce


def sets_cookie(set_cookies: list[str], name: str) -> bool:
    return any(value.startswith(name + "=") for value in set_cookies)


def chat(message: str, *, stream: bool = True, **overrides: Any) -> dict[str, Any]:
    """A chats/submit body shaped like the browser's."""
    body = {
        "botId": "default",
        "customId": None,
        "session": "N/A",
        "chatId": "emulator-test",
        "contextId": 4,
        "messages": [{"role": "assistant", "content": "Hi! How can I help you?"}],
        "newMessage": message,
        "stream": stream,
    }
    body.update(overrides)
    return body


def events(body: bytes) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` event of a body."""
    return [
        json.loads(block[len(b"data: ") :]) for block in body.split(b"\n\n") if block
    ]


class Answer(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def fetch(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request from a fresh client session (no cookie jar); the whole answer."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.request(method, url, data=data, headers=headers) as response,
    ):
        return Answer(response.status, response.headers, await response.read())


async def submit(
    running: RunningEmulator,
    body: Any,
    *,
    nonce: str | None = None,
    url: str | None = None,
) -> Answer:
    """POST ``body`` (JSON-encoded unless bytes) to chats/submit."""
    headers = {"Content-Type": "application/json"}
    if nonce is not None:
        headers["X-WP-Nonce"] = nonce
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await fetch(
        "POST", url or running.rest_url + SUBMIT, data=data, headers=headers
    )


# ---- the recorded exchanges ------------------------------------------------------


@pytest.mark.parametrize("path", REPLAYED, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_replays_capture(path: Path) -> None:
    capture = parse(path)
    generation = GENERATION_OF_VERSION[path.parent.name]
    options = {"event_logs": path.stem in WITH_EVENT_LOGS} if generation == "session" else {}
    async with serve_emulator_async(generation, **options) as running:
        emulator = running.emulator
        headers = {
            name: capture.request_headers[name]
            for name in ("Content-Type", "Cookie")
            if name in capture.request_headers
        }
        nonce = nonce_to_send(capture, emulator)
        if nonce is not None:
            headers["X-WP-Nonce"] = nonce
        answer = await fetch(
            capture.request_method,
            running.url + capture.request_path,
            data=request_body(capture, path) or None,
            headers=headers,
        )

    assert answer.status == capture.status
    for name in ("Content-Type", "Cache-Control", "Transfer-Encoding"):
        assert answer.headers.get(name) == capture.response_header(name), name
    recorded_nonce_header = capture.response_header("X-WP-Nonce")
    expected_nonce_header = emulator.current_nonce if recorded_nonce_header else None
    assert answer.headers.get("X-WP-Nonce") == expected_nonce_header
    for cookie in ("mwai_session_id", "PHPSESSID"):
        sent = sets_cookie(answer.headers.getall("Set-Cookie", []), cookie)
        recorded = sets_cookie(capture.response_header_values("Set-Cookie"), cookie)
        assert sent == recorded, cookie
    if b"new_token" in capture.response_body or b"restNonce" in capture.response_body:
        assert emulator.current_nonce.encode() in answer.body
    assert normalise(answer.body) == normalise(capture.response_body)


def container_attributes(page: bytes) -> dict[str, str]:
    """The data-* attributes of the page's chatbot container, still HTML-escaped."""
    pattern = r"<div class='mwai-chatbot-container'((?: data-\w+='[^']*')+)>"
    match = re.search(pattern, page.decode("utf-8"))
    assert match is not None, "no chatbot container"
    return dict(re.findall(r" data-(\w+)='([^']*)'", match.group(1)))


def data_system(page: bytes) -> dict[str, Any]:
    """The decoded data-system attribute of the page's chatbot."""
    return json.loads(html.unescape(container_attributes(page)["system"]))  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", sorted(GENERATION_OF_VERSION))
async def test_page_matches_capture(version: str) -> None:
    generation = GENERATION_OF_VERSION[version]
    capture = parse(CAPTURES / version / "page.txt")
    options = {"event_logs": False} if generation == "session" else {}  # recorded with them off
    async with serve_emulator_async(generation, **options) as running:
        answer = await fetch("GET", running.page_url)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == capture.response_header("Content-Type")

    system = data_system(answer.body)
    assert system["botId"] == "default"
    assert system["customId"] is None
    assert system["contextId"] == 4
    assert system["restUrl"] == running.rest_url
    assert system["stream"] is True
    assert system["sessionId"] == (None if generation == "session" else "N/A")
    nonce = running.emulator.current_nonce
    assert system["restNonce"] == (nonce if generation == "nonce" else None)

    # Byte for byte the recorded attributes, but for the site's address and nonce.
    attributes = container_attributes(answer.body)
    recorded_nonce = data_system(capture.response_body)["restNonce"]
    host = running.url.split("//", 1)[1]
    for name, value in container_attributes(capture.response_body).items():
        value = re.sub(r"127\.0\.0\.1:\d+", host, value)
        if recorded_nonce:
            value = value.replace(recorded_nonce, nonce)
        assert attributes[name] == value, name


# ---- behaviour beyond the captures -----------------------------------------------


async def test_json_is_encoded_like_php() -> None:
    async with serve_emulator_async("open") as running:
        stream = await submit(running, chat("h\u00e9llo a/b"))
        one_shot = await submit(running, chat("h\u00e9llo a/b", stream=False))
    assert stream.status == 200
    assert stream.headers["Content-Type"] == EVENT_STREAM_TYPE
    assert stream.body.startswith(
        b'data: {"type":"live","data":"Echo:"}\n\n'
        b'data: {"type":"live","data":" h\\u00e9llo"}\n\n'
        b'data: {"type":"live","data":" a\\/b"}\n\n'
        b'data: {"type":"end","data":"{\\"success\\":true,'
        b'\\"reply\\":\\"Echo: h\\\\u00e9llo a\\\\\\/b\\",'
    )
    assert one_shot.body.startswith(
        b'{"success":true,"reply":"Echo: h\\u00e9llo a\\/b","images":null,'
    )
    assert json.loads(events(stream.body)[-1]["data"]) == json.loads(one_shot.body)


async def test_rest_route_query_form() -> None:
    async with serve_emulator_async("open") as running:
        url = running.url + "/?rest_route=" + SUBMIT
        answer = await submit(running, chat("hi there"), url=url)
        assert answer.status == 200
        assert [e["type"] for e in events(answer.body)] == ["live"] * 3 + ["end"]
        answer = await fetch("GET", url)
        assert answer.status == 404
        assert json.loads(answer.body)["code"] == "rest_no_route"


async def test_rest_prefix_and_page_path() -> None:
    async with serve_emulator_async(
        "nonce", rest_prefix="/blog/wp-json", page_path="/blog/chat/", context_id=28
    ) as running:
        assert running.rest_url == running.url + "/blog/wp-json"
        assert running.page_url == running.url + "/blog/chat/"
        system = data_system((await fetch("GET", running.page_url)).body)
        assert (system["restUrl"], system["contextId"]) == (running.rest_url, 28)
        assert (await fetch("GET", running.url + "/chatgpt-free-use/")).status == 404

        nonce = system["restNonce"]
        answer = await submit(running, chat("hi"), nonce=nonce)
        assert events(answer.body)[-1]["type"] == "end"
        elsewhere = running.url + "/wp-json" + SUBMIT
        assert (
            await submit(running, chat("hi"), nonce=nonce, url=elsewhere)
        ).status == 404


async def test_bots_custom_id_and_unknown_bot() -> None:
    async with serve_emulator_async("nonce", bot_ids=("default", "sales")) as running:
        nonce = running.emulator.current_nonce
        answer = await submit(
            running, chat("hi", stream=False, botId="sales"), nonce=nonce
        )
        assert (answer.status, json.loads(answer.body)["reply"]) == (200, "Echo: hi")
        inline = chat("hi", botId=None, customId="inline-bot")
        answer = await submit(running, inline, nonce=nonce)
        assert events(answer.body)[-1]["type"] == "end"
        answer = await submit(
            running, chat("hi", stream=False, botId="nope"), nonce=nonce
        )
        assert (answer.status, json.loads(answer.body)) == (500, REJECTED)


@pytest.mark.parametrize(
    "body", [b'{"botId":"default","newMessage":NaN}', b"[1,", b"{'botId': 'x'}"]
)
async def test_invalid_json_is_refused(body: bytes) -> None:
    async with serve_emulator_async("open") as running:
        answer = await submit(running, body)
    assert answer.status == 400
    assert json.loads(answer.body)["code"] == "rest_invalid_json"


async def test_the_open_generation_checks_a_nonce_it_is_sent() -> None:
    async with serve_emulator_async("open") as running:
        emulator = running.emulator
        answer = await submit(running, chat("hi"), nonce=emulator.previous_nonce)
        assert (answer.status, answer.headers["X-WP-Nonce"]) == (
            200,
            emulator.current_nonce,
        )
        answer = await submit(running, chat("hi"), nonce=BAD_NONCE)
        assert answer.status == 403
        assert json.loads(answer.body)["code"] == "rest_cookie_invalid_nonce"


async def test_rotate_nonce_answers_the_previous_one_with_new_token() -> None:
    async with serve_emulator_async("session") as running:
        emulator = running.emulator
        started = json.loads(
            (await fetch("POST", running.rest_url + "/mwai/v1/start_session")).body
        )
        first = started["restNonce"]
        assert first == emulator.current_nonce
        assert re.fullmatch(r"[0-9a-f]{13}", started["sessionId"])

        emulator.rotate_nonce()
        assert emulator.previous_nonce == first
        assert re.fullmatch(r"[0-9a-f]{10}", emulator.current_nonce)
        answer = await submit(running, chat("hi"), nonce=first)
        assert answer.headers["X-WP-Nonce"] == emulator.current_nonce
        end = json.loads(events(answer.body)[-1]["data"])
        assert list(end.items())[-1] == ("new_token", emulator.current_nonce)
        answer = await submit(running, chat("hi", stream=False), nonce=first)
        assert list(json.loads(answer.body).items())[-1] == (
            "new_token",
            emulator.current_nonce,
        )
        answer = await submit(running, chat("hi"), nonce=emulator.current_nonce)
        assert b"new_token" not in answer.body

        emulator.rotate_nonce()
        answer = await submit(running, chat("hi"), nonce=first)
        assert answer.status == 403
        assert json.loads(answer.body)["code"] == "rest_cookie_invalid_nonce"


async def test_expire_nonces_invalidates_both() -> None:
    async with serve_emulator_async("nonce") as running:
        emulator = running.emulator
        old = (emulator.current_nonce, emulator.previous_nonce)
        assert (await submit(running, chat("hi"), nonce=old[1])).status == 200
        emulator.expire_nonces()
        assert not {emulator.current_nonce, emulator.previous_nonce} & set(old)
        for nonce in old:
            answer = await submit(running, chat("hi"), nonce=nonce)
            assert answer.status == 403
            assert json.loads(answer.body) == {
                "code": "rest_cookie_invalid_nonce",
                "message": "Cookie check failed",
                "data": {"status": 403},
            }
        answer = await submit(running, chat("hi"), nonce=emulator.current_nonce)
        assert answer.status == 200


async def test_records_requests() -> None:
    async with serve_emulator_async("open") as running:
        await submit(running, chat("hi"))
        assert (await fetch("GET", running.url + "/nowhere?x=1")).status == 404
        emulator = running.emulator
    first, second = emulator.requests
    assert (first.method, first.path, first.query) == ("POST", "/wp-json" + SUBMIT, "")
    assert first.headers["content-type"] == first.headers["Content-Type"]
    assert first.headers.get("CONTENT-TYPE") == "application/json"
    assert first.json()["newMessage"] == "hi"
    assert (second.method, second.path, second.query) == ("GET", "/nowhere", "x=1")
    assert second.body == b""
    assert emulator.submit_count() == 1
    assert emulator.completed_streams == 1


# ---- fault knobs -----------------------------------------------------------------


async def test_drop_after_resets_the_connection() -> None:
    async with serve_emulator_async("open") as running:
        emulator = running.emulator
        emulator.faults = Faults(drop_after=2)
        url = running.rest_url + SUBMIT
        received = b""
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=chat("one two three")) as response,
        ):
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                async for chunk in response.content.iter_any():
                    received += chunk
        assert [e["data"] for e in events(received)] == ["Echo:", " one"]

        emulator.faults = Faults(drop_after=0)
        for stream in (True, False):
            with pytest.raises(aiohttp.ClientConnectionError):
                await submit(running, chat("hi", stream=stream))
        assert (emulator.completed_streams, emulator.disconnects) == (0, 0)


async def test_omit_end() -> None:
    async with serve_emulator_async("open") as running:
        running.emulator.faults = Faults(omit_end=True)
        answer = await submit(running, chat("one two"))
    assert answer.status == 200
    assert [e["type"] for e in events(answer.body)] == ["live", "live", "live"]
    assert running.emulator.completed_streams == 1


async def test_malformed_after() -> None:
    async with serve_emulator_async("open") as running:
        running.emulator.faults = Faults(malformed_after=1)
        answer = await submit(running, chat("one two"))
    assert answer.status == 200
    assert answer.body == (
        b'data: {"type":"live","data":"Echo:"}\n\ndata: {"type":"live","da\n\n'
    )


async def test_error_after() -> None:
    async with serve_emulator_async("session") as running:
        running.emulator.faults = Faults(error_after=2)
        nonce = running.emulator.previous_nonce
        answer = await submit(running, chat("one two three"), nonce=nonce)
    status, *rest = events(answer.body)
    assert status["subtype"] == "status"  # event logs are on: it carries no answer text
    assert rest == [
        {"type": "live", "data": "Echo:"},
        {"type": "live", "data": " one"},
        {"type": "error", "data": "Emulated failure"},
    ]


async def test_status_fault_comes_first_and_runs_out() -> None:
    async with serve_emulator_async("session") as running:
        emulator = running.emulator
        emulator.faults = Faults(
            status=503,
            body="<html>busy</html>",
            content_type="text/html",
            retry_after="7",
            times=2,
        )
        for _ in range(2):  # answered before the nonce check: none is sent
            answer = await submit(running, chat("hi"))
            assert answer.status == 503
            assert answer.headers["Content-Type"] == "text/html"
            assert answer.headers["Retry-After"] == "7"
            assert answer.body == b"<html>busy</html>"
        answer = await submit(running, chat("hi"))
        assert (answer.status, "Retry-After" in answer.headers) == (401, False)
        assert emulator.faults.times == 0
        assert emulator.submit_count() == 3

        emulator.faults = Faults(status=429, body=b'{"error":"slow down"}')
        for _ in range(3):
            answer = await submit(running, chat("hi"), nonce=emulator.current_nonce)
            assert answer.status == 429


async def test_delay_and_delta_delay() -> None:
    async with serve_emulator_async("open", delta_delay=0.1) as running:
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(running.rest_url + SUBMIT, json=chat("one two")) as response,
        ):
            headers_after = time.monotonic() - started  # they come with the 1st event
            await response.read()
        total = time.monotonic() - started
        assert headers_after >= 0.09
        assert 0.29 <= total < 1.0  # three deltas; the end event is not delayed

        running.emulator.delta_delay = 0.0
        running.emulator.faults = Faults(delay=0.1)
        started = time.monotonic()
        answer = await submit(running, chat("one two"))
        assert len(events(answer.body)) == 4
        assert time.monotonic() - started >= 0.39


async def test_client_disconnect_is_counted() -> None:
    async with serve_emulator_async("open", delta_delay=0.1) as running:
        emulator = running.emulator
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                running.rest_url + SUBMIT, json=chat("a b c d e f")
            ) as response,
        ):
            await response.content.readuntil(b"\n\n")
            response.close()
        deadline = time.monotonic() + 3
        while emulator.disconnects == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert (emulator.disconnects, emulator.completed_streams) == (1, 0)


# ---- servers ---------------------------------------------------------------------


def test_serve_emulator_runs_in_a_thread_and_leaves_none() -> None:
    before = set(threading.enumerate())
    with serve_emulator("nonce") as running:
        assert len(set(threading.enumerate()) - before) == 1
        with urllib.request.urlopen(running.page_url, timeout=5) as response:
            page = response.read().decode()
        assert running.emulator.current_nonce in page
    assert set(threading.enumerate()) == before


@pytest.mark.parametrize("opchatgpts_emulator", ["session"], indirect=True)
def test_pytest_fixture(opchatgpts_emulator: RunningEmulator) -> None:  # noqa: F811
    running = opchatgpts_emulator
    assert running.emulator.generation == "session"
    url = running.rest_url + "/mwai/v1/start_session"
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["restNonce"] == running.emulator.current_nonce
