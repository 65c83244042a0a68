"""Files with a chat turn (``files=``, image parts in messages), on every generation of the emulator.

The stand-in model echoes what it received: ``Echo: <text> [image <mime> <N> bytes]`` for
each file, so the answers show what reached the model (1.9.x labels every file
``image/jpeg``). The requests the emulator logged show what the SDK sent.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from capturefile import expand, parse

import opchatgpts
from opchatgpts import (
    AsyncClient,
    Attachment,
    AttachmentError,
    AttachmentTooLargeError,
    AuthenticationError,
    Client,
    FilesNotAcceptedError,
    InvalidAttachmentError,
    InvalidMessagesError,
    InvalidMessagesTypeError,
    Opchatgpts,
    TooManyFilesError,
    UploadAuthenticationError,
    UploadRejectedError,
    UploadTooLargeError,
    split_image_parts,
)
from opchatgpts._protocol.uploads import (
    attachment_from_bytes,
    build_upload_request,
    sniff_mime,
    submit_fields,
)
from opchatgpts.emulator.forms import read_form
from opchatgpts.testing import RunningEmulator, serve_emulator, serve_emulator_async

ATTACHMENTS = Path(__file__).parent / "captures" / "attachments"
GENERATION_OF_VERSION = {"1.9.99": "open", "2.4.3": "nonce", "3.6.2": "session"}
GENERATIONS = ["open", "nonce", "session"]
TRANSPORTS = ["aiohttp", "requests"]
# The 2x2 PNG of the recordings (75 bytes).
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR42mP4z8DAAMIM/4EAAB/uBfvxq7p3AAAAAElFTkSuQmCC"
)
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
NOTE = b"The secret word is banana.\n"
#: The type the model is told, per generation: 1.9.x says image/jpeg whatever the file.
LABEL = {"open": "image/jpeg", "nonce": "image/png", "session": "image/png"}
DATA_URL = "data:image/png;base64," + base64.b64encode(PIXEL).decode()


def echo(text: str, generation: str, count: int = 1, size: int = 75) -> str:
    return f"Echo: {text}" + f" [image {LABEL[generation]} {size} bytes]" * count


def uploads(site: RunningEmulator) -> List[Any]:
    return [r for r in site.emulator.requests if r.path.endswith("/files/upload")]


def sent(site: RunningEmulator) -> List[Any]:
    """The uploads the site took: 2.x and 3.x refuse one without a nonce (401) until the
    client has one."""
    return [r for r in uploads(site) if generation(site) == "open" or "X-WP-Nonce" in r.headers]


def submits(site: RunningEmulator) -> List[Dict[str, Any]]:
    return [r.json() for r in site.emulator.requests if r.path.endswith("/chats/submit")]


def form_of(request: Any) -> Any:
    return read_form(request.body, request.headers["Content-Type"], upload_max_filesize=1 << 30)


def part_names(body: bytes) -> List[str]:
    return re.findall(r'Content-Disposition: form-data; name="([^"]+)"', body.decode("latin-1"))


def file_fields(body: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in body.items() if k in ("newImageId", "newFileId", "newFileIds")}


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    path.write_bytes(PIXEL)
    return path


@pytest.fixture(params=GENERATIONS)
def site(request: pytest.FixtureRequest) -> Iterator[RunningEmulator]:
    with serve_emulator(request.param, image_upload=True) as running:
        yield running


def generation(site: RunningEmulator) -> str:
    return site.emulator.generation


# -- the call the issue names, everywhere -----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ask_with_a_file_on_every_generation(site: RunningEmulator, cat: Path, transport: str) -> None:
    gen = generation(site)
    answer = opchatgpts.ask(
        "what is in this image?", url=site.url, bot_id="default", files=[str(cat)],
        transport=transport,  # type: ignore[arg-type]
    )
    assert answer == echo("what is in this image?", gen)
    sent = uploads(site)  # 2.x and 3.x: refused (401) until the client has a nonce
    assert len(sent) == (1 if gen == "open" else 2)
    assert form_of(sent[-1]).files["file"].filename == "cat.png"
    [body] = submits(site)
    field = {"open": "newImageId", "nonce": "newFileId", "session": "newFileId"}[gen]
    [stored] = list(site.emulator.uploads)
    assert body[field] == stored.ref_id
    # The next turn does not send the file again.
    assert opchatgpts.ask("and now?", url=site.url, transport=transport) == "Echo: and now?"  # type: ignore[arg-type]
    assert file_fields(submits(site)[1]) == {} and len(uploads(site)) == len(sent)


async def test_ask_async_with_a_file_on_every_generation(site: RunningEmulator, cat: Path) -> None:
    answer = await opchatgpts.ask_async("what is in this image?", url=site.url, bot_id="default", files=[cat])
    assert answer == echo("what is in this image?", generation(site))


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_methods_take_files(site: RunningEmulator, cat: Path, transport: str, stream: bool) -> None:
    gen = generation(site)
    with Client(site.url, transport=transport, stream=stream) as client:  # type: ignore[arg-type]
        assert client.ask("ask", files=[cat]) == echo("ask", gen)
        with client.stream("stream", files=[cat]) as parts:
            assert "".join(parts) == echo("stream", gen)
        with client.stream_events("events", files=[cat]) as events:
            list(events)
        assert events.result is not None and events.result.reply == echo("events", gen)
    assert len(sent(site)) == 3
    assert [b["stream"] for b in submits(site)] == [stream] * 3


async def test_async_client_methods_take_files(site: RunningEmulator, cat: Path) -> None:
    gen = generation(site)
    async with AsyncClient(site.url) as client:
        assert await client.ask("ask", files=[cat]) == echo("ask", gen)
        async with client.stream("stream", files=[cat]) as stream:
            assert "".join([part async for part in stream]) == echo("stream", gen)
        events = client.stream_events("events", files=[cat], stream=False)
        assert [e async for e in events][-1].result.reply == echo("events", gen)


def test_the_faces_take_files(site: RunningEmulator, cat: Path) -> None:
    gen = generation(site)
    messages = [{"role": "user", "content": "face"}]
    parts = Opchatgpts.create_completion(None, messages, url=site.url, files=[cat])
    assert "".join(parts) == echo("face", gen)
    assert "".join(
        Opchatgpts.create_completion(None, messages, False, url=site.url, files=[cat], transport="requests")
    ) == echo("face", gen)
    with Opchatgpts.stream_events(messages, text=True, url=site.url, files=[cat]) as stream:
        assert "".join(stream) == echo("face", gen)

    async def run() -> List[str]:
        generator = Opchatgpts.create_async_generator(None, messages, url=site.url, files=[cat])
        parts = [part async for part in generator]
        whole = await Opchatgpts.create_async(None, messages, url=site.url, files=[cat])
        async with Opchatgpts.stream_events_async(messages, text=True, url=site.url, files=[cat]) as stream:
            streamed = "".join([part async for part in stream])
        return ["".join(parts), whole, streamed]

    assert asyncio.run(run()) == [echo("face", gen)] * 3


# -- what a file may be -----------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_kind_of_file_input(site: RunningEmulator, cat: Path, tmp_path: Path, transport: str) -> None:
    """A path (str or PathLike), bytes, a binary file object, a tuple: each sent with its
    name and type (the tuple's, else the name's, else the content's)."""
    gen = generation(site)
    with open(cat, "rb") as opened:
        inputs = [
            (str(cat), "cat.png", "image/png"),
            (cat, "cat.png", "image/png"),
            (PIXEL, "image.png", "image/png"),
            (bytearray(PIXEL), "image.png", "image/png"),
            (opened, "cat.png", "image/png"),
            (io.BytesIO(PIXEL), "image.png", "image/png"),
            (("shot.png", PIXEL, None), "shot.png", "image/png"),
            (("shot.png", PIXEL, "image/x-custom"), "shot.png", "image/x-custom"),  # the tuple's type wins
            (("photo", PIXEL, None), "photo.png", "image/png"),  # no extension: the content's
            (("art.gif", io.BytesIO(PIXEL), None), "art.gif", "image/gif"),  # the name's type wins
            (Attachment("made.png", PIXEL, "image/png"), "made.png", "image/png"),
        ]
        with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
            for item, _, _ in inputs:
                assert client.ask("this", files=[item]) == echo("this", gen)
    parts = [form_of(upload).files["file"] for upload in sent(site)]
    assert [(f.filename, f.content_type) for f in parts] == [(name, mime) for _, name, mime in inputs]
    assert all(f.data == PIXEL for f in parts)


def test_a_text_file_reaches_the_model_as_each_generation_sends_it(
    site: RunningEmulator, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_bytes(NOTE)
    answer = opchatgpts.ask("what is in this file", url=site.url, files=[note])
    expected = {
        "open": "Echo: what is in this file [image image/jpeg 27 bytes]",
        "nonce": "Echo: what is in this file [image text/plain 27 bytes]",
        "session": "Echo: what is in this file",  # 3.x drops what is not an image
    }
    assert answer == expected[generation(site)]
    assert form_of(sent(site)[0]).files["file"].content_type == "text/plain"


# -- image parts in messages ------------------------------------------------------------------


def image_part(url: str = DATA_URL) -> Dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_image_parts_of_the_last_message_are_uploaded(site: RunningEmulator, transport: str) -> None:
    gen = generation(site)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "first look"}, image_part()]},
        {"role": "assistant", "content": "a pixel"},
        {"role": "user", "content": [{"type": "text", "text": "what is"}, image_part(),
                                     {"type": "text", "text": "in it?"}]},
    ]
    with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
        assert client.ask(messages) == echo("what is\nin it?", gen)
    [upload] = sent(site)  # the earlier turn's image is not uploaded again
    assert form_of(upload).files["file"].filename == "image.png"
    [body] = submits(site)
    assert body["newMessage"] == "what is\nin it?"
    assert body["messages"] == [
        {"role": "user", "content": "first look"}, {"role": "assistant", "content": "a pixel"},
    ]


async def test_image_parts_async_and_with_files(cat: Path) -> None:
    async with serve_emulator_async("session") as site:
        messages = [{"role": "user", "content": [{"type": "text", "text": "both"}, image_part(),
                                                 {"type": "image_url", "image_url": DATA_URL}]}]
        answer = await opchatgpts.ask_async(messages, url=site.url, files=[GIF_FILE(cat)])
        assert answer == echo("both", "session", 2) + " [image image/gif 14 bytes]"
        names = [form_of(u).files["file"].filename for u in sent(site)]
        assert names == ["image1.png", "image2.png", "dot.gif"]  # the message's images, then files=


def GIF_FILE(cat: Path) -> Path:  # noqa: N802 - reads like the constant it stands for
    path = cat.with_name("dot.gif")
    path.write_bytes(GIF)
    return path


def test_split_image_parts_is_public_and_pure() -> None:
    messages = [
        {"role": "system", "content": "be brief", "name": "ignored"},
        {"role": "user", "content": [image_part(), {"type": "text", "text": "old"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                                     image_part("data:image/gif;base64," + base64.b64encode(GIF).decode())]},
    ]
    plain, images = split_image_parts(messages)
    assert plain == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "old"},
        {"role": "assistant", "content": "ok"}, {"role": "user", "content": "a\nb"},
    ]
    assert images == (Attachment("image.gif", GIF, "image/gif"),)
    assert images[0].label == "messages[3]['content'][2] (image.gif)"
    text = [{"role": "user", "content": "text"}]
    assert split_image_parts(text) == (text, ())
    # Percent-encoded data URLs too.
    percent_encoded = [{"role": "user", "content": [image_part("data:text/plain,hi%20there")]}]
    assert split_image_parts(percent_encoded)[1] == (
        Attachment("image.txt", b"hi there", "text/plain"),
    )


@pytest.mark.parametrize(
    ("part", "error", "says"),
    [
        (image_part("https://example.com/cat.png"), InvalidAttachmentError, "does not download links"),
        (image_part("http://127.0.0.1/cat.png"), InvalidAttachmentError, "does not download links"),
        (image_part("file:///etc/passwd"), InvalidAttachmentError, "must be a data: URL"),
        (image_part("data:image/png;base64,not*base64"), InvalidAttachmentError, "not valid base64"),
        (image_part("data:image/png;base64"), InvalidAttachmentError, "has no ','"),
        ({"type": "input_audio", "input_audio": {}}, InvalidMessagesError, "'input_audio' part"),
        ({"type": "image_url", "image_url": {}}, InvalidMessagesTypeError, "string 'url'"),
        ({"type": "text", "text": 5}, InvalidMessagesTypeError, "must be a string"),
        ("just text", InvalidMessagesTypeError, "must be a dict"),
    ],
)
def test_bad_image_parts_are_refused_before_any_io(
    emulator: RunningEmulator, part: Any, error: type, says: str
) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, part]}]
    with Client(emulator.url) as client, pytest.raises(error, match=re.escape(says)) as raised:
        client.stream(messages)
    assert "messages[0]['content'][1]" in str(raised.value)
    assert len(emulator.emulator.requests) == 0


# -- several files ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_several_images_on_2_4_4_and_later(cat: Path, transport: str) -> None:
    with serve_emulator("session", image_upload=True) as site:
        with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
            answer = client.ask("three", files=[cat, PIXEL, ("c.png", PIXEL, None)])
        assert answer == echo("three", "session", 3)
        [body] = submits(site)
        ids = [file.ref_id for file in site.emulator.uploads]
        assert file_fields(body) == {"newFileId": None, "newFileIds": ids}  # as the browser sends several


@pytest.mark.parametrize("gen", ["open", "nonce"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_too_many_files_before_2_4_4(cat: Path, gen: str, transport: str) -> None:
    with serve_emulator(gen) as site, Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
        # A new site: the first upload tells the generation; the error says it was made.
        with pytest.raises(TooManyFilesError) as raised:
            client.ask("two", files=[cat, PIXEL])
        message = str(raised.value)
        assert "takes one" in message and "cat.png" in message and "files[1] (image.png)" in message
        [stored] = list(site.emulator.uploads)
        assert f"cat.png (id {stored.ref_id}) was uploaded before" in message
        assert "Nothing was sent" in message
        assert raised.value.uploaded == ((str(cat), stored.ref_id),)
        assert submits(site) == []
        # Now the client knows: refused before any upload.
        with pytest.raises(TooManyFilesError, match="nothing was uploaded or sent"):
            client.ask("two", files=[cat, PIXEL])
        assert len(sent(site)) == 1 and submits(site) == []
        assert client.ask("one", files=[cat]) == echo("one", gen)


def test_several_files_with_a_page_nonce_ask_start_session_first(cat: Path) -> None:
    """A nonce from the page does not say whether the site is 2.0-2.4.3 or 2.4.4+:
    start_session tells, before anything is uploaded."""
    with serve_emulator("nonce") as site, Client.from_page(site.page_url) as client:
        with pytest.raises(TooManyFilesError, match="nothing was uploaded or sent"):
            client.ask("two", files=[cat, PIXEL])
        assert uploads(site) == [] and submits(site) == []
    with serve_emulator("session") as site, Client(site.url, nonce=site.emulator.current_nonce) as client:
        assert client.ask("two", files=[cat, PIXEL]) == echo("two", "session", 2)
        assert [r.path for r in site.emulator.requests].count("/wp-json/mwai/v1/start_session") == 1


def test_an_empty_message_with_a_file(site: RunningEmulator, cat: Path) -> None:
    gen = generation(site)
    if gen == "open":
        with pytest.raises(FilesNotAcceptedError, match="refuses a message without text"):
            opchatgpts.ask("", url=site.url, files=[cat])
        assert submits(site) == []
    else:
        assert opchatgpts.ask("", url=site.url, files=[cat]) == f"Echo: [image {LABEL[gen]} 75 bytes]"
    with pytest.raises(InvalidMessagesError, match="empty"):
        opchatgpts.ask("  ", url=site.url)  # without a file, as before


# -- as the browser does it: the recordings ------------------------------------------------------


def cookies(header: str) -> Dict[str, str]:
    pairs = (item.strip().partition("=") for item in header.split(";") if item.strip())
    return {name: value for name, _, value in pairs}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("version", sorted(GENERATION_OF_VERSION))
def test_the_upload_and_submit_are_the_recorded_browser_requests(
    version: str, transport: str, tmp_path: Path
) -> None:
    """What the SDK sends against what the plugin's browser client sent (``curl`` replaying
    it): the route, the form fields in order, the file name, the part's Content-Type, the
    nonce header and session cookie, and the submit field."""
    recorded_upload = parse(ATTACHMENTS / version / "upload_png.txt")
    recorded_submit = parse(ATTACHMENTS / version / "submit_png_stream.txt")
    pixel = tmp_path / "pixel.png"
    pixel.write_bytes(PIXEL)
    gen = GENERATION_OF_VERSION[version]
    with serve_emulator(gen, image_upload=True) as site:
        with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
            assert client.ask("what is in this image", files=[pixel]) == echo("what is in this image", gen)
        ours = sent(site)[-1]
        [stored] = list(site.emulator.uploads)
        submit = [r for r in site.emulator.requests if r.path.endswith("/chats/submit")][-1]

    recorded_body = expand(recorded_upload.request_body, lambda size: PIXEL)
    assert (ours.method, ours.path) == (recorded_upload.request_method, recorded_upload.request_path)
    assert part_names(ours.body) == part_names(recorded_body)
    content_type = recorded_upload.request_headers["Content-Type"]
    theirs = read_form(recorded_body, content_type, upload_max_filesize=1 << 20)
    mine = form_of(ours)
    assert mine.fields == theirs.fields
    assert (mine.files["file"].filename, mine.files["file"].content_type, mine.files["file"].data) == (
        theirs.files["file"].filename, theirs.files["file"].content_type, theirs.files["file"].data,
    )
    assert ("X-WP-Nonce" in ours.headers) == ("X-WP-Nonce" in recorded_upload.request_headers)
    recorded_cookies = cookies(recorded_upload.request_headers.get("Cookie", ""))
    our_cookies = cookies(ours.headers.get("Cookie", ""))
    assert ("mwai_session_id" in our_cookies) == ("mwai_session_id" in recorded_cookies)

    body, recorded = submit.json(), json.loads(recorded_submit.request_body)
    assert {k: v is None for k, v in file_fields(body).items()} == {
        k: v is None for k, v in file_fields(recorded).items()
    }
    assert [v for v in file_fields(body).values() if v] == [stored.ref_id]
    assert ("X-WP-Nonce" in submit.headers) == ("X-WP-Nonce" in recorded_submit.request_headers)
    if gen == "session":  # start_session's session owns the file, and is the chat's session
        assert stored.owner == "session_" + our_cookies["mwai_session_id"] == "session_" + body["session"]
        assert ours.headers["X-WP-Nonce"] == submit.headers["X-WP-Nonce"]


def test_several_files_are_sent_as_the_recorded_browser_sends_them(tmp_path: Path) -> None:
    recorded = json.loads(parse(ATTACHMENTS / "3.6.2" / "submit_newFileIds_3_images.txt").request_body)
    with serve_emulator("session", image_upload=True) as site:
        answer = opchatgpts.ask("three images", url=site.url, files=[PIXEL] * 3)
        assert answer == echo("three images", "session", 3)
        [body] = submits(site)
    assert set(file_fields(body)) == set(file_fields(recorded)) == {"newFileId", "newFileIds"}
    assert body["newFileId"] is recorded["newFileId"] is None
    assert len(body["newFileIds"]) == len(recorded["newFileIds"]) == 3


# -- the generation is learned once per site ---------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_generation_is_learned_once(site: RunningEmulator, cat: Path, transport: str) -> None:
    gen = generation(site)
    with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
        client.ask("one", files=[cat])
        assert client._pool.credentials.for_site(client.site.rest_root).generation == gen
        before = len(site.emulator.requests)
        client.ask("two", files=[cat])
        # One upload and one chat: no 401, no nonce request.
        assert [r.path.rsplit("/", 2)[-2:] for r in site.emulator.requests[before:]] == [
            ["files", "upload"], ["chats", "submit"],
        ]


@pytest.mark.parametrize("gen", ["nonce", "session"])  # 1.9.x has none: see the error tests
def test_a_stale_nonce_is_replaced_for_the_upload(gen: str, cat: Path) -> None:
    with serve_emulator(gen) as site, Client(site.url) as client:
        client.ask("hello")  # learns the nonce
        site.emulator.expire_nonces()
        assert client.ask("again", files=[cat]) == echo("again", gen)
        stale, fresh = uploads(site)  # refused (403), then sent again with a fresh nonce
        assert fresh.headers["X-WP-Nonce"] == site.emulator.current_nonce != stale.headers["X-WP-Nonce"]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_invalid_file_type(site: RunningEmulator, tmp_path: Path, transport: str) -> None:
    evil = tmp_path / "evil.php"
    evil.write_bytes(b"<?php echo 1;")
    with pytest.raises(UploadRejectedError) as raised:
        opchatgpts.ask("run this", url=site.url, files=[evil], transport=transport)  # type: ignore[arg-type]
    error = raised.value
    assert type(error) is UploadRejectedError and isinstance(error, AttachmentError)
    assert (error.status_code, error.filename) == (400, str(evil))
    assert str(evil) in str(error) and "Invalid file type." in str(error)
    assert submits(site) == []


async def test_a_fake_png_is_refused(site: RunningEmulator) -> None:
    with pytest.raises(UploadRejectedError, match=r"fake\.png: the site refused the file: Invalid file type"):
        await opchatgpts.ask_async("look", url=site.url, files=[("fake.png", b"just text", None)])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("gen", GENERATIONS)
def test_a_file_over_the_sites_upload_limit(gen: str, transport: str) -> None:
    big = ("big.png", PIXEL[:33] + bytes(4000), None)
    with serve_emulator(gen, upload_max_filesize=2000) as site:
        with pytest.raises(UploadTooLargeError) as raised:
            opchatgpts.ask("big", url=site.url, files=[big], transport=transport)  # type: ignore[arg-type]
        error = raised.value
        assert error.status_code == 500 and error.filename == "big.png"
        assert str(error).startswith("HTTP 500")
        assert "big.png: the site " in str(error) and "upload_max_filesize" in str(error)
        if gen == "open":
            assert "(Could not move the file.)" in str(error)
            assert error.body == {"success": False, "message": "Could not move the file."}
        else:  # the recorded HTML page
            assert "a PHP error (an HTML page titled 'WordPress › Error')" in str(error)
            assert isinstance(error.body, str) and error.body.startswith("<!DOCTYPE html>")
        assert submits(site) == []


@pytest.mark.parametrize("gen", GENERATIONS)
async def test_a_file_over_the_sites_request_limit(gen: str) -> None:
    async with serve_emulator_async(gen, post_max_size=3000) as site:
        says = r"huge\.png: the site received no file.*post_max_size"
        with pytest.raises(UploadTooLargeError, match=says) as raised:
            await opchatgpts.ask_async("huge", url=site.url, files=[("huge.png", bytes(4000), None)])
        assert raised.value.status_code == 400


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_nonce_on_1_9_is_refused_for_the_upload(cat: Path, transport: str) -> None:
    with serve_emulator("open") as site:
        with pytest.raises(UploadAuthenticationError) as raised:
            opchatgpts.ask("x", url=site.url, nonce="0badc0ffee", files=[cat], transport=transport)  # type: ignore[arg-type]
        error = raised.value
        assert isinstance(error, AuthenticationError) and isinstance(error, UploadRejectedError)
        assert error.status_code == 403 and error.code == "rest_cookie_invalid_nonce"
        assert str(error).startswith(f"HTTP 403 rest_cookie_invalid_nonce: {cat}: the upload needs a nonce")
        assert "none could be obtained" in str(error)
        assert submits(site) == []


def test_no_nonce_to_be_had_for_the_upload(cat: Path) -> None:
    with serve_emulator("nonce", page_path="/hidden/") as site:  # no page the client knows of
        with pytest.raises(UploadAuthenticationError, match=r"cat\.png: the upload needs a nonce") as raised:
            opchatgpts.ask("x", url=site.url, files=[cat])
        assert raised.value.code == "rest_forbidden" and raised.value.filename == str(cat)
        assert "none could be obtained" in str(raised.value) and "/hidden/" not in str(raised.value)
        # Naming the page is the fix.
        assert opchatgpts.ask("x", url=site.url, referer=site.page_url, files=[cat]) == echo("x", "nonce")


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("missing.png", "missing.png: cannot read the file: No such file or directory"),
        (".", ".: cannot read the file: Is a directory"),
    ],
)
def test_a_file_that_cannot_be_read(emulator: RunningEmulator, item: str, says: str) -> None:
    with pytest.raises(InvalidAttachmentError, match=re.escape(says)) as raised:
        opchatgpts.ask("x", url=emulator.url, files=[item])
    assert raised.value.filename == item and isinstance(raised.value, InvalidMessagesError)
    assert len(emulator.emulator.requests) == 0


def test_file_objects_that_cannot_be_read(emulator: RunningEmulator, cat: Path) -> None:
    with open(cat, encoding="latin-1") as text_mode:
        with pytest.raises(InvalidAttachmentError, match=r"cat\.png: the file is open in text mode"):
            opchatgpts.ask("x", url=emulator.url, files=[text_mode])
    closed = open(cat, "rb")
    closed.close()
    with pytest.raises(InvalidAttachmentError, match=r"cat\.png: cannot read the file"):
        opchatgpts.ask("x", url=emulator.url, files=[closed])
    assert len(emulator.emulator.requests) == 0


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ("cat.png", "files must be a list of files, not str"),
        (("a.png", b"x", None), "files must be a list of files, not tuple"),
        ([5], "files[0] must be a path, bytes, a binary file object"),
        ([("a.png", b"x")], "files[0] must be a (filename, data, mime_type) tuple"),
        ([("a.png", "text", None)], "files[0][1], the data, must be bytes"),
        ([("", b"x", None)], "files[0][0], the file name, must be a non-empty string"),
        ([("a.png", b"x", "png")], "files[0][2], the MIME type"),
    ],
)
def test_what_is_not_a_file(emulator: RunningEmulator, files: Any, says: str) -> None:
    with pytest.raises(TypeError, match=re.escape(says)):
        opchatgpts.ask("x", url=emulator.url, files=files)
    assert len(emulator.emulator.requests) == 0


def test_max_file_bytes_refuses_before_any_io(emulator: RunningEmulator, cat: Path) -> None:
    big = cat.with_name("big.png")
    big.write_bytes(PIXEL[:33] + bytes(2048 - 33))  # a PNG header, then padding
    with Client(emulator.url, max_file_bytes=1024) as client:
        says = r"big\.png is 2\.0 KiB, over max_file_bytes \(1\.0 KiB\)"
        with pytest.raises(AttachmentTooLargeError, match=says) as raised:
            client.ask("x", files=[big])
        assert raised.value.filename == str(big) and isinstance(raised.value, InvalidAttachmentError)
        with pytest.raises(AttachmentTooLargeError, match=r"files\[1\] is 2\.0 KiB"):
            client.ask("x", files=[cat, bytes(2048)])
        with pytest.raises(AttachmentTooLargeError, match=r"messages\[0\]\['content'\]\[0\]"):
            client.ask([{"role": "user", "content": [image_part(
                "data:image/png;base64," + base64.b64encode(bytes(2048)).decode())]}])
        with pytest.raises(AttachmentTooLargeError):
            client.with_options(max_file_bytes=10).ask("x", files=[cat])
        assert len(emulator.emulator.requests) == 0
        assert client.ask("x", files=[big], max_file_bytes=4096) == echo("x", "open", size=2048)
    with pytest.raises(ValueError, match="max_file_bytes must be positive"):
        Client(emulator.url, max_file_bytes=0)


def test_the_default_cap_is_20_mib(emulator: RunningEmulator) -> None:
    with pytest.raises(AttachmentTooLargeError, match=r"20\.0 MiB"):
        opchatgpts.ask("x", url=emulator.url, files=[bytes(20 * 1024 * 1024 + 1)])
    assert len(emulator.emulator.requests) == 0


def test_files_go_with_one_call_only(emulator: RunningEmulator, cat: Path) -> None:
    with Client(emulator.url) as client:
        with pytest.raises(TypeError, match="files= goes with one call"):
            client.with_options(files=[cat])
        with pytest.raises(TypeError, match="files= goes with one turn"):
            client.conversation(files=[cat])
        with pytest.raises(TypeError, match="unexpected keyword"):
            Client(emulator.url, files=[cat])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="files= goes with one turn"):
        Opchatgpts.conversation(url=emulator.url, files=[cat])
    with pytest.raises(TypeError, match="not with from_page"):
        Opchatgpts.from_page(emulator.page_url, files=[cat])


# -- conversations ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_conversation_sends_a_file_with_one_turn(site: RunningEmulator, cat: Path, transport: str) -> None:
    gen = generation(site)
    with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
        chat = client.conversation()
        assert chat.ask("what is this", files=[cat]) == echo("what is this", gen)
        assert "".join(chat.send("and the colour?")) == "Echo: and the colour?"
        assert "".join(chat.send("this one?", [PIXEL])) == echo("this one?", gen)
    first, second, third = submits(site)
    assert file_fields(first) and not file_fields(second) and file_fields(third)
    assert second["messages"] == [
        {"role": "user", "content": "what is this"},
        {"role": "assistant", "content": echo("what is this", gen)},
    ]
    assert len(sent(site)) == 2


async def test_an_async_conversation_sends_a_file(site: RunningEmulator, cat: Path) -> None:
    gen = generation(site)
    async with AsyncClient(site.url) as client:
        chat = client.conversation()
        assert await chat.ask_async("look", files=[cat]) == echo("look", gen)
        stream = await chat.send_async("again")
        async with stream:
            assert "".join([part async for part in stream]) == "Echo: again"
    assert len(sent(site)) == 1


# -- several sites ----------------------------------------------------------------------------


def test_failover_uploads_again_on_the_next_site(cat: Path) -> None:
    with serve_emulator("open", upload_max_filesize=10) as first, serve_emulator("session") as second:
        with Client(sites=[first.url, second.url]) as client:
            with client.stream("look", files=[cat]) as stream:
                assert "".join(stream) == echo("look", "session")
            assert stream.result is not None and stream.result.site == second.url
        assert len(uploads(first)) == 1 and submits(first) == []
        assert len(sent(second)) == 1 and len(submits(second)) == 1


def test_a_file_is_read_once_for_several_sites(cat: Path) -> None:
    with serve_emulator("open", upload_max_filesize=10) as first, serve_emulator("nonce") as second:
        with Client(sites=[first.url, second.url]) as client, open(cat, "rb") as file:
            assert client.ask("look", files=[file]) == echo("look", "nonce")
        assert form_of(uploads(second)[0]).files["file"].data == PIXEL


# -- the pure parts ---------------------------------------------------------------------------


def test_types_from_names_and_content() -> None:
    assert [sniff_mime(data) for data in (PIXEL, b"\xff\xd8\xff\xe0", GIF, b"RIFF\0\0\0\0WEBPVP8 ",
                                           b"%PDF-1.7", NOTE, b"\x00\x01\x02")] == [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", None,
    ]
    made = attachment_from_bytes(b"\x00\x01", name=None, label="files[0]")
    assert (made.name, made.mime) == ("file.bin", "application/octet-stream")
    made = attachment_from_bytes(b"%PDF-1.4", name="report", label="report")
    assert (made.name, made.mime) == ("report.pdf", "application/pdf")
    made = attachment_from_bytes(PIXEL, name="x.jpeg", label="x.jpeg")
    assert made.mime == "image/jpeg" and repr(made) == "Attachment('x.jpeg', image/jpeg, 75 bytes)"


def test_the_upload_request() -> None:
    site = opchatgpts.Site("https://example.com", referer="https://example.com/chat/")
    pixel = Attachment('we"ird\r\nname.png', PIXEL, "image/png")
    request = build_upload_request(site, pixel, nonce=None, boundary="XyZ")
    assert (request.method, request.url) == ("POST", "https://example.com/wp-json/mwai-ui/v1/files/upload")
    assert "X-WP-Nonce" not in request.headers
    assert request.headers["Content-Type"] == "multipart/form-data; boundary=XyZ"
    assert request.headers["Origin"] == "https://example.com"
    assert request.body == (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="we%22ird%0D%0Aname.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PIXEL + b"\r\n--XyZ--\r\n"
    )
    request = build_upload_request(site, pixel, nonce="abc", extra_headers={"X-Trace": "1"})
    assert request.headers["X-WP-Nonce"] == "abc" and request.headers["X-Trace"] == "1"
    assert part_names(request.body) == ["file", "type", "purpose"]
    assert "nonce" not in repr(request).lower()


def test_the_submit_fields() -> None:
    assert submit_fields("open", ["a"]) == {"newImageId": "a"}
    assert submit_fields("nonce", ["a"]) == {"newFileId": "a"}
    assert submit_fields(None, ["a"]) == {"newFileId": "a"}  # a nonce-gated site of unknown version
    assert submit_fields("session", ["a"]) == {"newFileId": "a", "newFileIds": None}
    assert submit_fields("session", ["a", "b"]) == {"newFileId": None, "newFileIds": ["a", "b"]}
    assert submit_fields("session", []) == {}
    with pytest.raises(ValueError):
        submit_fields("nonce", ["a", "b"])
