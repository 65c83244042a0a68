"""The emulator beyond the replayed captures: refusals, the status event, the bounded
request log, and the rules of uploads per generation."""

from __future__ import annotations

import html
import io
import json
import re
import time
from typing import Any

import aiohttp
import pytest
from test_emulator import (
    REJECTED,
    SUBMIT,
    Answer,
    chat,
    container_attributes,
    data_system,
    events,
    fetch,
    submit,
)
from test_emulator_uploads import PIXEL

from opchatgpts.emulator import Emulator, RequestLog
from opchatgpts.emulator.requestlog import RECORDED_BODY_LIMIT, RecordedRequest
from opchatgpts.testing import RunningEmulator, serve_emulator_async

JSON_TYPE = "application/json; charset=UTF-8"
EVENT_STREAM_TYPE = "text/event-stream;charset=UTF-8"
REFUSAL_EVENT = b'data: {"type":"error","data":"Sorry, your query has been rejected."}\n\n'
UPLOAD = "/mwai-ui/v1/files/upload"
CRITICAL_ERROR = {
    "code": "internal_server_error",
    "message": "<p>There has been a critical error on this website.</p>"
    '<p><a href="https://wordpress.org/support/article/faq-troubleshooting/">'
    "Learn more about troubleshooting WordPress.</a></p>",
    "data": {"status": 500},
    "additional_errors": [],
}


def data_params(page: bytes) -> dict[str, Any]:
    """The decoded data-params attribute of the page's chatbot."""
    return json.loads(html.unescape(container_attributes(page)["params"]))  # type: ignore[no-any-return]


async def nonce_for(running: RunningEmulator) -> str | None:
    """The nonce a client of this generation sends (None for the open one)."""
    emulator = running.emulator
    if emulator.generation == "open":
        return None
    if emulator.generation == "session":
        started = await fetch("POST", running.rest_url + "/mwai/v1/start_session")
        return json.loads(started.body)["restNonce"]  # type: ignore[no-any-return]
    return emulator.current_nonce


# ---- refusals before streaming ---------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "message", "refused"),
    [
        ("nonce", "x" * 513, True),
        ("session", "x" * 513, True),
        ("open", "x" * 513, False),  # 1.9.x does not check the bot's limit
        ("nonce", "x" * 512, False),
        ("session", "x" * 512, False),
        ("nonce", "\u00e9" * 300, True),  # 2.x counts bytes: 600
        ("session", "\u00e9" * 300, False),  # 3.x counts characters: 300
    ],
)
async def test_a_message_over_the_bot_limit(generation: str, message: str, refused: bool) -> None:
    async with serve_emulator_async(generation) as running:
        nonce = await nonce_for(running)
        streamed = await submit(running, chat(message), nonce=nonce)
        one_shot = await submit(running, chat(message, stream=False), nonce=nonce)
    if refused:
        # Refused before the plugin switched to streaming: 200, JSON, one error event.
        assert (streamed.status, streamed.headers["Content-Type"]) == (200, JSON_TYPE)
        assert streamed.body == REFUSAL_EVENT
        assert (one_shot.status, json.loads(one_shot.body)) == (500, REJECTED)
    else:
        assert streamed.headers["Content-Type"] == EVENT_STREAM_TYPE
        assert events(streamed.body)[-1]["type"] == "end"
        assert json.loads(one_shot.body)["reply"] == "Echo: " + message


@pytest.mark.parametrize(("generation", "refused"), [("open", True), ("nonce", True), ("session", False)])
async def test_an_unknown_bot(generation: str, refused: bool) -> None:
    async with serve_emulator_async(generation) as running:
        nonce = await nonce_for(running)
        streamed = await submit(running, chat("hello", botId="no-such-bot"), nonce=nonce)
        one_shot = await submit(running, chat("hello", stream=False, botId="no-such-bot"), nonce=nonce)
    if refused:
        assert (streamed.status, streamed.headers["Content-Type"], streamed.body) == (
            200,
            JSON_TYPE,
            REFUSAL_EVENT,
        )
        assert (one_shot.status, json.loads(one_shot.body)) == (500, REJECTED)
    else:  # 3.x answers with the default bot
        assert events(streamed.body)[-1]["type"] == "end"
        assert json.loads(one_shot.body)["reply"] == "Echo: hello"


async def test_the_page_shows_the_limit_the_server_applies() -> None:
    async with serve_emulator_async("nonce", text_input_max_length=20) as running:
        page = await fetch("GET", running.page_url)
        assert data_params(page.body)["textInputMaxLength"] == 20
        nonce = running.emulator.current_nonce
        assert (await submit(running, chat("x" * 21), nonce=nonce)).body == REFUSAL_EVENT
        assert events((await submit(running, chat("x" * 20), nonce=nonce)).body)[-1]["type"] == "end"


# ---- the status event (3.x with event logs on) -------------------------------------

STATUS_EVENT = re.compile(
    rb'data: \{"type":"live","data":"Starting stream\.\.\.","timestamp":(\d+\.\d+),"subtype":"status",'
    rb'"visibility":"collapsed","metadata":\{"model":"fake-echo-1","id":"(chatcmpl-emu\d{6})"\}\}\n\n'
)


async def test_the_session_generation_sends_a_status_event_first() -> None:
    async with serve_emulator_async("session") as running:
        assert running.emulator.event_logs
        nonce = await nonce_for(running)
        started = time.time()
        answer = await submit(running, chat("hello big world"), nonce=nonce)
        page = await fetch("GET", running.page_url)
    match = STATUS_EVENT.match(answer.body)
    assert match is not None, answer.body[:200]
    assert abs(float(match[1]) - started) < 5
    status, *rest = events(answer.body)
    assert [e["data"] for e in rest[:-1]] == ["Echo:", " hello", " big", " world"]
    assert json.loads(rest[-1]["data"])["responseId"] == match[2].decode() == status["metadata"]["id"]
    assert data_system(page.body)["eventLogs"] is True


@pytest.mark.parametrize(
    ("options", "generation"),
    [({"event_logs": False}, "session"), ({}, "open"), ({}, "nonce")],
)
async def test_no_status_event_without_event_logs(options: dict[str, Any], generation: str) -> None:
    async with serve_emulator_async(generation, **options) as running:
        answer = await submit(running, chat("hello"), nonce=await nonce_for(running))
        page = await fetch("GET", running.page_url)
    assert [e["type"] for e in events(answer.body)] == ["live", "live", "end"]
    assert data_system(page.body).get("eventLogs", False) is False


def test_only_the_session_generation_has_event_logs() -> None:
    with pytest.raises(ValueError, match="no event logs"):
        Emulator("nonce", event_logs=True)


async def test_the_status_event_comes_with_the_upstream_stream_only() -> None:
    async with serve_emulator_async("session") as running:
        nonce = await nonce_for(running)
        failed = events((await submit(running, chat("FAIL_UPSTREAM"), nonce=nonce)).body)
        cut = events((await submit(running, chat("a FAIL_MIDSTREAM b"), nonce=nonce)).body)
        one_shot = await submit(running, chat("hello", stream=False), nonce=nonce)
    assert [e["type"] for e in failed] == ["error"]  # the upstream answered with an error
    assert [e.get("subtype") for e in cut] == ["status", None, None, None]
    assert cut[-1]["type"] == "error"
    assert json.loads(one_shot.body)["reply"] == "Echo: hello"


# ---- the bounded request log -----------------------------------------------------


async def test_the_request_log_keeps_a_window_and_the_counters_count_everything() -> None:
    calls = 2000  # a long-running serve, in small: only the window stays
    async with serve_emulator_async("open", request_log_size=10) as running:
        emulator = running.emulator
        async with aiohttp.ClientSession() as session:
            for number in range(calls):
                body = {"botId": "default", "newMessage": f"m{number}", "stream": False}
                async with session.post(running.rest_url + SUBMIT, json=body) as response:
                    assert response.status == 200
                    await response.read()
    log = emulator.requests
    assert len(log) == 10 and log.maxlen == 10
    assert [r.json()["newMessage"] for r in log] == [f"m{n}" for n in range(calls - 10, calls)]
    assert log[0].json()["newMessage"] == f"m{calls - 10}"
    assert log[-1].json()["newMessage"] == f"m{calls - 1}"
    assert [r.json()["newMessage"] for r in log[-2:]] == [f"m{calls - 2}", f"m{calls - 1}"]
    assert log.total == calls
    assert emulator.submit_count() == calls


def test_the_request_log_alone() -> None:
    log = RequestLog(2)
    for number in range(3):
        log.append(RecordedRequest("GET", f"/{number}", "", {}, b""))
    assert [r.path for r in log] == ["/1", "/2"] and log.total == 3 and len(log) == 2
    first, second = log
    assert (first.path, second.path, log[-1].path) == ("/1", "/2", "/2")
    log.clear()
    assert (len(log), log.total) == (0, 3)
    with pytest.raises(ValueError):
        RequestLog(0)


async def test_a_long_body_is_recorded_cut() -> None:
    async with serve_emulator_async("open") as running:
        body = b"x" * (RECORDED_BODY_LIMIT + 10)
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/somewhere", data=io.BytesIO(body)) as response:
                assert response.status == 404
        (recorded,) = running.emulator.requests
    assert (len(recorded.body), recorded.body_size) == (RECORDED_BODY_LIMIT, len(body))


# ---- uploads -----------------------------------------------------------------------


async def upload(
    running: RunningEmulator,
    data: bytes = PIXEL,
    filename: str = "pixel.png",
    *,
    nonce: str | None = None,
    accept: str | None = None,
) -> Answer:
    """POST a file to files/upload as the browser does (``purpose`` from 2.0 on)."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    if running.emulator.generation != "open":
        form.add_field("type", "N/A")
        form.add_field("purpose", "N/A")
    headers = {}
    if nonce is not None:
        headers["X-WP-Nonce"] = nonce
    if accept is not None:
        headers["Accept"] = accept
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.post(running.rest_url + UPLOAD, data=form, headers=headers) as response,
    ):
        return Answer(response.status, response.headers, await response.read())


async def uploaded_id(running: RunningEmulator, data: bytes, filename: str, nonce: str | None) -> str:
    answer = await upload(running, data, filename, nonce=nonce)
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["data"]["id"]  # type: ignore[no-any-return]


async def reply(running: RunningEmulator, nonce: str | None, message: str, **files: Any) -> str:
    answer = await submit(running, chat(message, stream=False, **files), nonce=nonce)
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["reply"]  # type: ignore[no-any-return]


NOTE = b"The secret word is banana.\n"


@pytest.mark.parametrize(
    ("generation", "png_field", "txt_reply", "ignored"),
    [
        ("open", "newImageId", "[image image/jpeg 27 bytes]", ("newFileId", "newFileIds")),
        ("nonce", "newFileId", "[image text/plain 27 bytes]", ("newImageId", "newFileIds")),
        ("session", "newFileId", "", ("newImageId",)),
    ],
)
async def test_which_submit_field_names_a_file(
    generation: str, png_field: str, txt_reply: str, ignored: tuple[str, ...]
) -> None:
    async with serve_emulator_async(generation) as running:
        nonce = await nonce_for(running)
        png = await uploaded_id(running, PIXEL, "pixel.png", nonce)
        txt = await uploaded_id(running, NOTE, "note.txt", nonce)
        label = "image/jpeg" if generation == "open" else "image/png"
        assert await reply(running, nonce, "see", **{png_field: png}) == f"Echo: see [image {label} 75 bytes]"
        assert await reply(running, nonce, "read", **{png_field: txt}) == f"Echo: read {txt_reply}".strip()
        for field in ignored:
            value: Any = [png] if field == "newFileIds" else png
            assert await reply(running, nonce, "none", **{field: value}) == "Echo: none"


async def test_several_files_on_the_session_generation() -> None:
    async with serve_emulator_async("session") as running:
        nonce = await nonce_for(running)
        ids = [await uploaded_id(running, PIXEL, "pixel.png", nonce) for _ in range(3)]
        txt = await uploaded_id(running, NOTE, "note.txt", nonce)
        three = await reply(running, nonce, "three", newFileIds=ids, newFileId=txt)  # the list wins
        assert three == "Echo: three" + " [image image/png 75 bytes]" * 3
        assert await reply(running, nonce, "mixed", newFileIds=[ids[0], txt]) == (
            "Echo: mixed [image image/png 75 bytes]"  # the text file is dropped
        )
        assert await reply(running, nonce, "", newFileIds=[], newFileId=ids[0]) == (
            "Echo: [image image/png 75 bytes]"  # an empty list does not count; no text
        )


@pytest.mark.parametrize("generation", ["open", "nonce", "session"])
async def test_a_file_id_that_names_nothing(generation: str) -> None:
    async with serve_emulator_async(generation, upload_store_files=2) as running:
        nonce = await nonce_for(running)
        emulator = running.emulator
        first, second, third = [await uploaded_id(running, PIXEL, "pixel.png", nonce) for _ in range(3)]
        assert [f.ref_id for f in emulator.uploads] == [second, third]  # the oldest went
        assert emulator.expire_uploads(second) == 1 and len(emulator.uploads) == 1
        field = emulator.traits.file_field
        for gone in (first, second, "0123456789abcdef0123456789abcdef"):
            for stream in (True, False):
                answer = await submit(running, chat("see", stream=stream, **{field: gone}), nonce=nonce)
                if generation == "session":  # silently no file
                    assert answer.status == 200
                else:  # a PHP fatal error, JSON and 500 even when streaming
                    assert (answer.status, answer.headers["Content-Type"]) == (500, JSON_TYPE)
                    assert json.loads(answer.body) == CRITICAL_ERROR
                    assert answer.headers["Cache-Control"] == "no-cache, must-revalidate, max-age=0"


@pytest.mark.parametrize("generation", ["open", "nonce", "session"])
async def test_upload_size_limits(generation: str) -> None:
    async with serve_emulator_async(generation, upload_max_filesize=50, post_max_size=4000) as running:
        nonce = await nonce_for(running)
        over_file = await upload(running, nonce=nonce)  # 75 bytes
        as_json = await upload(running, nonce=nonce, accept="application/json")
        over_post = await upload(running, PIXEL * 60, nonce=nonce)
        wrong_type = await upload(running, PIXEL * 60, "big.exe", nonce=nonce)
    if generation == "open":
        assert (over_file.status, json.loads(over_file.body)) == (
            500,
            {"success": False, "message": "Could not move the file."},
        )
    else:  # copy() of a file that never arrived: PHP's fatal error, as WordPress shows it
        assert (over_file.status, over_file.headers["Content-Type"]) == (500, "text/html; charset=UTF-8")
        assert b"There has been a critical error on this website." in over_file.body
        assert over_file.body.startswith(b"<!DOCTYPE html>") and over_file.body.endswith(b"</html>\n\t")
        assert (as_json.status, json.loads(as_json.body)) == (500, CRITICAL_ERROR)
    assert (over_post.status, json.loads(over_post.body)["message"]) == (400, "No file provided.")
    assert (wrong_type.status, json.loads(wrong_type.body)["message"]) == (400, "No file provided.")


@pytest.mark.parametrize(
    ("filename", "data", "stored"),
    [
        ("photo.jpg", PIXEL, "photo.png"),  # WordPress renames an image to what it is
        ("notes.csv", b"a,b\n1,2\n", "notes.csv"),
        ("fake.png", b"this is not a png\n", None),
        ("page.html", b"<p>hi</p>", None),  # guests may not upload HTML
        ("binary.txt", b"\x00\x01\x02", None),
        ("clip.mpga", b"\xff\xfb\x90", None),  # only 3.x adds the audio types
    ],
)
async def test_the_type_check(filename: str, data: bytes, stored: str | None) -> None:
    async with serve_emulator_async("nonce") as running:
        answer = await upload(running, data, filename, nonce=running.emulator.current_nonce)
    if stored is None:
        refusal = {"success": False, "message": "Invalid file type."}
        assert (answer.status, json.loads(answer.body)) == (400, refusal)
    else:
        assert answer.status == 200
        assert json.loads(answer.body)["data"]["url"].endswith("/" + stored)


async def test_uploaded_files_are_public_until_they_go() -> None:
    async with serve_emulator_async("nonce") as running:
        nonce = running.emulator.current_nonce
        first = json.loads((await upload(running, nonce=nonce)).body)["data"]
        second = json.loads((await upload(running, nonce=nonce)).body)["data"]
        assert first["url"].endswith("/pixel.png") and second["url"].endswith("/pixel-1.png")
        served = await fetch("GET", first["url"])
        assert (served.status, served.headers["Content-Type"], served.body) == (200, "image/png", PIXEL)
        assert running.emulator.expire_uploads() == 2
        assert (await fetch("GET", first["url"])).status == 404
        again = json.loads((await upload(running, nonce=nonce)).body)["data"]
        assert again == first  # 2.x: the same name, so the same id (md5 of the URL)


async def test_files_list_shows_the_newest_first() -> None:
    async with serve_emulator_async("nonce") as running:
        nonce = running.emulator.current_nonce
        ids = [await uploaded_id(running, PIXEL, "pixel.png", nonce) for _ in range(3)]
        for age, file in enumerate(running.emulator.uploads):
            file.created -= 100 * (3 - age)  # uploaded a minute or more apart
        answer = await fetch(
            "POST",
            running.rest_url + "/mwai-ui/v1/files/list",
            data=b'{"limit": 2}',
            headers={"Content-Type": "application/json", "X-WP-Nonce": nonce},
        )
    listed = json.loads(answer.body)["data"]
    assert [row["refId"] for row in listed["files"]] == ids[::-1][:2]
    assert [row["id"] for row in listed["files"]] == ["3", "2"] and listed["total"] == "3"


async def test_the_model_gets_files_by_url_with_that_site_option() -> None:
    async with serve_emulator_async("open", image_remote_upload="url") as running:
        answer = json.loads((await upload(running)).body)["data"]
        echoed = await reply(running, None, "see", newImageId=answer["id"])
        assert echoed == f"Echo: see [image {answer['url']}]"
    with pytest.raises(ValueError):
        Emulator("open", image_remote_upload="ftp")


async def test_the_page_offers_uploads_when_asked() -> None:
    async with serve_emulator_async("session", image_upload=True) as running:
        page = await fetch("GET", running.page_url)
    params = data_params(page.body)
    assert (params["imageUpload"], params["fileUpload"], params["fileUploads"]) == (True, True, 1)
