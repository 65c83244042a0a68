"""Files sent with a chat turn, the part without I/O (``opchatgpts._protocol.uploads``): types,
size caps, image parts, the upload request and its answer, the refusals and the submit fields.

Fast: no emulator, no network. ``test_attachments.py`` runs the same over every generation of
the emulator.
"""

from __future__ import annotations

import base64
import dataclasses
import mimetypes
import re
from typing import Any, Dict, List, Optional

import pytest

from opchatgpts import (
    Attachment,
    AttachmentTooLargeError,
    AuthenticationError,
    FilesNotAcceptedError,
    InternalServerError,
    InvalidAttachmentError,
    InvalidMessagesTypeError,
    Site,
    TooManyFilesError,
    UploadAuthenticationError,
    UploadRejectedError,
    UploadTooLargeError,
)
from opchatgpts._exceptions import APIStatusError
from opchatgpts._protocol.request import USER_AGENT
from opchatgpts._protocol.uploads import (
    DEFAULT_MAX_FILE_BYTES,
    UPLOAD_ROUTE,
    attachment_from_bytes,
    build_upload_request,
    check_generation_takes,
    encode_multipart,
    parse_upload_answer,
    sniff_mime,
    split_image_parts,
    submit_fields,
    upload_error,
)

# The 2x2 PNG of the recordings (75 bytes).
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR42mP4z8DAAMIM/4EAAB/uBfvxq7p3AAAAAElFTkSuQmCC"
)
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
SITE = "https://example.com"
CAT = Attachment("cat.png", PIXEL, "image/png")
MUST = "an image must be a data: URL (data:image/png;base64,...), "


def image(url: str) -> Dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def last_turn(*parts: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}]


def refusal(message: str, status: int = 400, code: Optional[str] = None, body: Any = None) -> APIStatusError:
    return APIStatusError(
        message, status_code=status, code=code, body=body, headers={"X-Site": "1"}, url=SITE + UPLOAD_ROUTE
    )


# -- Attachment -------------------------------------------------------------------------------


def test_an_attachment_is_named_by_its_name_unless_labelled() -> None:
    assert CAT.label == "cat.png" and CAT.size == 75
    labelled = Attachment("cat.png", PIXEL, "image/png", "photos/cat.png")
    assert labelled.label == "photos/cat.png"
    assert labelled == CAT  # the label is how messages name it, not what it is
    assert repr(labelled) == "Attachment('cat.png', image/png, 75 bytes)"  # never the bytes


def test_an_attachment_is_a_value() -> None:
    assert hash(CAT) == hash(Attachment("cat.png", PIXEL, "image/png", "other label"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        CAT.name = "dog.png"  # type: ignore[misc]


# -- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PIXEL, "image/png"),
        (b"\x89PNG\r\n\x1a", None),  # one byte short of the signature
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\x00", None),
        (b"GIF87a\x01\x00", "image/gif"),
        (GIF, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF1234WEBPVP8 ", "image/webp"),
        (b"RIFF1234WAVEfmt ", "text/plain"),  # a RIFF that is not WebP (and is text)
        (b"RIFX1234WEBPVP8 ", "text/plain"),
        (b"RIFE1234WEBPVP8 ", "text/plain"),
        (b"RIFF1234WEBQVP8 ", "text/plain"),
        (b"BM" + bytes(13), "image/bmp"),  # a header's worth
        (b"BM" + bytes(12), None),  # too short to be a bitmap; not text either
        (b"BMabcdefghijkl", "text/plain"),
        (b"BMabc", "text/plain"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypheix\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00", None),  # an MP4
        (b"%PDF-1.7\n", "application/pdf"),
        (b"%PDF1.7\n", "text/plain"),
        ("Grüße, 世界\n".encode(), "text/plain"),
        (b"", None),
        (b"text\x00more", None),
        (b"caf\xe9", None),  # Latin-1, not UTF-8
    ],
)
def test_the_content_shows_the_type(data: bytes, mime: Optional[str]) -> None:
    assert sniff_mime(data) == mime


def test_text_is_judged_by_its_first_8_kib() -> None:
    # Only the first 8192 bytes are read: what follows them does not count.
    assert sniff_mime(b"a" * 8191 + b"\x00") is None
    assert sniff_mime(b"a" * 8192 + b"\x00") == "text/plain"
    assert sniff_mime(b"a" * 8192 + b"\xff") == "text/plain"
    # A character cut by the sample's end is no reason to call it binary...
    emoji = "\N{GRINNING FACE}".encode()  # 4 bytes
    assert sniff_mime(b"a" * 8189 + emoji + b"a") == "text/plain"
    assert sniff_mime(b"a" * 8190 + "é".encode() * 2) == "text/plain"
    # ... nor a stray byte in its last four, which may be one; earlier, it is binary.
    assert sniff_mime(b"a" * 8188 + b"\xff" + b"a" * 10) == "text/plain"
    assert sniff_mime(b"a" * 8187 + b"\xff" + b"a" * 10) is None


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.png", "image/png"), ("A.PNG", "image/png"), ("a.jpg", "image/jpeg"), ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"), ("a.webp", "image/webp"), ("a.bmp", "image/bmp"), ("a.tif", "image/tiff"),
        ("a.tiff", "image/tiff"), ("a.heic", "image/heic"), ("a.pdf", "application/pdf"),
        ("a.txt", "text/plain"), ("a.csv", "text/csv"),
        ("a.svg", "image/svg+xml"),  # from the system's tables
        ("a.pict", "image/pict"),  # a type Python knows as "not strict"
    ],
)  # fmt: skip
def test_the_name_gives_the_type_before_the_content(name: str, mime: str) -> None:
    made = attachment_from_bytes(b"\x00\x01", name=name, label=name)
    assert (made.name, made.mime, made.label) == (name, mime, name)


def test_the_common_types_need_no_system_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    # A system without /etc/mime.types (Windows, slim containers) knows these all the same.
    monkeypatch.setattr(mimetypes, "guess_type", lambda *args, **kwargs: (None, None))
    monkeypatch.setattr(mimetypes, "guess_extension", lambda *args, **kwargs: None)
    for name, mime in [("a.heic", "image/heic"), ("A.WEBP", "image/webp"), ("a.csv", "text/csv")]:
        assert attachment_from_bytes(b"\x00", name=name, label=name).mime == mime
    assert attachment_from_bytes(b"\x00", name="photo", mime="image/jpeg", label="x").name == "photo.jpg"
    assert attachment_from_bytes(b"\x00", name="a.xyz", label="x").mime == "application/octet-stream"


def test_the_type_given_wins_then_the_names_then_the_contents() -> None:
    given = attachment_from_bytes(PIXEL, name="cat.gif", mime="image/webp", label="cat.gif")
    assert given.mime == "image/webp"
    assert attachment_from_bytes(PIXEL, name="cat.gif", label="cat.gif").mime == "image/gif"
    assert attachment_from_bytes(PIXEL, name="cat.unknownext", label="x").mime == "image/png"
    assert attachment_from_bytes(PIXEL, name=None, label="x").mime == "image/png"
    made = attachment_from_bytes(b"\x00\x01", name="blob.unknownext", label="blob")
    assert (made.name, made.mime) == ("blob.unknownext", "application/octet-stream")


@pytest.mark.parametrize(
    ("data", "name", "mime", "made"),
    [
        # No name: image.<ext> for an image, file.<ext> for anything else.
        (PIXEL, None, None, ("image.png", "image/png")),
        (PIXEL, "", None, ("image.png", "image/png")),
        (b"%PDF-1.4", None, None, ("file.pdf", "application/pdf")),
        (b"\x00\x01", None, None, ("file.bin", "application/octet-stream")),
        # A name without an extension gets the type's: WordPress refuses a file without one.
        (PIXEL, "cat", None, ("cat.png", "image/png")),
        (b"\xff\xd8\xff\xe0", "photo", None, ("photo.jpg", "image/jpeg")),
        (b"II*\x00", "scan", None, ("scan.tif", "image/tiff")),
        (b"notes", "notes", None, ("notes.txt", "text/plain")),
        (b"\x00", "song", "audio/mpeg", ("song.mp3", "audio/mpeg")),  # from the system's tables
        (b"\x00", "drawing", "image/pict", ("drawing.pict", "image/pict")),  # "not strict"
        (b"\x00", "thing", "application/x-opchatgpts", ("thing.bin", "application/x-opchatgpts")),
        (b"\x00", None, "application/x-opchatgpts", ("file.bin", "application/x-opchatgpts")),
    ],
)
def test_names_are_completed(data: bytes, name: Optional[str], mime: Optional[str], made: Any) -> None:
    attachment = attachment_from_bytes(data, name=name, mime=mime, label="files[0]")
    assert (attachment.name, attachment.mime) == made
    assert attachment.data == data and attachment.label == "files[0]"


# -- the size cap -----------------------------------------------------------------------------


def test_the_cap_takes_a_file_of_exactly_max_bytes() -> None:
    assert attachment_from_bytes(b"x" * 10, name="a.txt", label="a.txt", max_bytes=10).size == 10
    assert attachment_from_bytes(b"", name="a.txt", label="a.txt", max_bytes=0).size == 0
    with pytest.raises(AttachmentTooLargeError) as raised:
        attachment_from_bytes(b"x" * 11, name="a.txt", label="docs/a.txt", max_bytes=10)
    assert str(raised.value) == (
        "docs/a.txt is 11 bytes, over max_file_bytes (10 bytes); raise max_file_bytes= to send it"
    )
    assert raised.value.filename == "docs/a.txt"
    assert isinstance(raised.value, InvalidAttachmentError)


def test_the_default_cap_is_20_mib() -> None:
    assert DEFAULT_MAX_FILE_BYTES == 20 * 1024 * 1024
    big = bytes(20 * 1024 * 1024)
    assert attachment_from_bytes(big, name="big.bin", label="big.bin").size == len(big)
    says = "is 20.0 MiB, over max_file_bytes (20.0 MiB)"
    with pytest.raises(AttachmentTooLargeError, match=re.escape(says)):
        attachment_from_bytes(big + b"x", name="big.bin", label="big.bin")


@pytest.mark.parametrize(
    ("size", "cap", "says"),
    [
        (1023, 1022, "is 1023 bytes, over max_file_bytes (1022 bytes)"),
        (1024, 1023, "is 1.0 KiB, over max_file_bytes (1023 bytes)"),
        (1536, 1024, "is 1.5 KiB, over max_file_bytes (1.0 KiB)"),
        (1024 * 1024, 1024 * 1024 - 1, "is 1.0 MiB, over max_file_bytes (1024.0 KiB)"),
        (3 * 1024 * 1024 // 2, 1024 * 1024, "is 1.5 MiB, over max_file_bytes (1.0 MiB)"),
        (1101005, 1024 * 1024, "is 1.1 MiB, over max_file_bytes (1.0 MiB)"),  # 1.0500002 MiB, rounded
        (1100904, 1024 * 1024, "is 1.0 MiB, over max_file_bytes (1.0 MiB)"),  # 1.0499 MiB
    ],
)
def test_sizes_are_said_in_bytes_kib_and_mib(size: int, cap: int, says: str) -> None:
    with pytest.raises(AttachmentTooLargeError, match=re.escape(f"a.bin {says};")):
        attachment_from_bytes(bytes(size), name="a.bin", label="a.bin", max_bytes=cap)


# -- image parts in messages ------------------------------------------------------------------


def test_the_last_user_turns_images_become_attachments() -> None:
    messages = [
        {"role": "user", "content": [image(data_url(GIF, "image/gif")), {"type": "text", "text": "old"}]},
        {"role": "assistant", "content": "ok", "name": "bot"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, image(data_url(PIXEL))]},
    ]
    plain, images = split_image_parts(messages)
    assert plain == [
        {"role": "user", "content": "old"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "a"},
    ]
    assert images == (Attachment("image.png", PIXEL, "image/png"),)
    assert images[0].label == "messages[2]['content'][1] (image.png)"


def test_a_system_prompt_then_the_turn_with_an_image() -> None:
    messages = [{"role": "system", "content": "be brief"}, *last_turn(image(data_url(PIXEL)))]
    plain, images = split_image_parts(messages)
    assert plain == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "look"}]
    assert [(a.name, a.label) for a in images] == [("image.png", "messages[1]['content'][1] (image.png)")]


def test_several_images_are_numbered() -> None:
    plain, images = split_image_parts(last_turn(image(data_url(PIXEL)), image(data_url(GIF, "image/gif"))))
    assert plain == [{"role": "user", "content": "look"}]
    assert [(a.name, a.mime, a.data, a.label) for a in images] == [
        ("image1.png", "image/png", PIXEL, "messages[0]['content'][1] (image1.png)"),
        ("image2.gif", "image/gif", GIF, "messages[0]['content'][2] (image2.gif)"),
    ]


def test_no_images_unless_the_last_turn_is_the_users() -> None:
    assert split_image_parts([]) == ([], ())
    with_image = last_turn(image(data_url(PIXEL)))
    answered = [*with_image, {"role": "assistant", "content": "a cat"}]
    assert split_image_parts(answered) == (
        [{"role": "user", "content": "look"}, {"role": "assistant", "content": "a cat"}], ()
    )
    images_answered = [*with_image, {"role": "assistant", "content": [image(data_url(PIXEL))]}]
    assert split_image_parts(images_answered)[1] == ()
    text = [{"role": "user", "content": "hi", "extra": 1}]
    assert split_image_parts(text) == ([{"role": "user", "content": "hi"}], ())
    assert split_image_parts(last_turn()) == ([{"role": "user", "content": "look"}], ())
    with pytest.raises(InvalidMessagesTypeError):
        split_image_parts("hi")


@pytest.mark.parametrize(
    ("url", "made"),
    [
        ("data:image/png;base64," + base64.b64encode(PIXEL).decode(), ("image.png", "image/png", PIXEL)),
        ("DATA:IMAGE/PNG;BASE64," + base64.b64encode(PIXEL).decode(), ("image.png", "image/png", PIXEL)),
        ("data: image/gif ; base64 ," + base64.b64encode(GIF).decode(), ("image.gif", "image/gif", GIF)),
        # The type from the content when the URL does not say it.
        ("data:;base64," + base64.b64encode(PIXEL).decode(), ("image.png", "image/png", PIXEL)),
        ("data:charset=utf-8,hi", ("image.txt", "text/plain", b"hi")),
        ("data:,hi", ("image.txt", "text/plain", b"hi")),
        ("data:text/csv;,a,b", ("image.csv", "text/csv", b"a,b")),
        ("data:text/plain;a=b,hi", ("image.txt", "text/plain", b"hi")),
        # Base64 may be wrapped over lines.
        ("data:image/gif;base64,R0lGODlh\n AQABAAAAADs=", ("image.gif", "image/gif", GIF)),
        # Percent-encoded; base64 only when it is the last parameter.
        ("data:text/plain,hi%20there", ("image.txt", "text/plain", b"hi there")),
        ("data:text/csv;base64;charset=x,a%2Cb", ("image.csv", "text/csv", b"a,b")),
        ("data:application/x-opchatgpts;base64,AAE=", ("image.bin", "application/x-opchatgpts", b"\x00\x01")),
    ],
)
def test_data_urls(url: str, made: Any) -> None:
    _, images = split_image_parts(last_turn(image(url)))
    assert [(a.name, a.mime, a.data) for a in images] == [made]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://example.com/cat.png", "the image https://example.com/cat.png is a link, and opchatgpts "
                                        "does not download links: download it yourself and pass it with "
                                        "files= or as a data: URL"),
        ("HTTP://example.com/cat.png", "the image HTTP://example.com/cat.png is a link"),
        ("https://example.com/" + "c" * 60, "the image https://example.com/" + "c" * 60 + " is a link"),
        ("https://example.com/" + "c" * 61, "the image https://example.com/" + "c" * 57 + "... is a link"),
        ("file:///etc/passwd", MUST + "not 'file:///etc/passwd'"),
        ("cat.png", MUST + "not 'cat.png'"),
        ("ftp://" + "x" * 50, MUST + "not 'ftp://" + "x" * 34 + "'"),
        ("data:image/png;base64", "the data: URL has no ','"),
        ("data:image/png;base64,not*base64", "the data: URL is not valid base64"),
        ("data:image/png;base64,iVBORw0K==GgoA", "the data: URL is not valid base64"),
        ("data:image/png;base64,iVBORw0Kéé", "the data: URL is not valid base64"),
    ],
)  # fmt: skip
def test_bad_image_urls_are_refused_naming_the_part(url: str, says: str) -> None:
    with pytest.raises(InvalidAttachmentError) as raised:
        split_image_parts(last_turn(image(url)))
    assert str(raised.value).startswith("messages[0]['content'][1]: " + says)
    assert raised.value.filename == "messages[0]['content'][1]"


def test_image_parts_have_the_size_cap() -> None:
    at_cap = last_turn(image(data_url(b"abc", "text/plain")))  # 'YWJj'
    assert split_image_parts(at_cap, max_file_bytes=3)[1][0].data == b"abc"
    with pytest.raises(AttachmentTooLargeError) as raised:
        split_image_parts(at_cap, max_file_bytes=2)
    assert str(raised.value).startswith("messages[0]['content'][1] is 3 bytes, over max_file_bytes (2 bytes)")
    assert raised.value.filename == "messages[0]['content'][1]"
    padded = last_turn(image(data_url(b"abcd", "text/plain")))  # 'YWJjZA=='
    assert split_image_parts(padded, max_file_bytes=4)[1][0].data == b"abcd"
    with pytest.raises(AttachmentTooLargeError, match=re.escape("is 4 bytes, over max_file_bytes (3 bytes)")):
        split_image_parts(padded, max_file_bytes=3)
    wrapped = last_turn(image("data:text/plain;base64,YW\r\nJj"))
    assert split_image_parts(wrapped, max_file_bytes=3)[1][0].data == b"abc"
    percent = last_turn(image("data:text/plain,%41%42%43"))
    assert split_image_parts(percent, max_file_bytes=3)[1][0].data == b"ABC"
    with pytest.raises(AttachmentTooLargeError, match=re.escape("is 3 bytes, over max_file_bytes (2 bytes)")):
        split_image_parts(percent, max_file_bytes=2)
    assert len(split_image_parts(last_turn(image(data_url(bytes(100))))))


def test_an_image_over_the_cap_is_refused_before_it_is_decoded() -> None:
    # Its length alone says it is too large: it is not decoded (so never found to be invalid).
    too_long = last_turn(image("data:image/png;base64," + "!" * 8))
    with pytest.raises(AttachmentTooLargeError, match=re.escape("is 6 bytes, over max_file_bytes (5 bytes)")):
        split_image_parts(too_long, max_file_bytes=5)
    with pytest.raises(InvalidAttachmentError, match="not valid base64"):
        split_image_parts(too_long, max_file_bytes=6)
    # Percent-encoded, a byte takes one to three characters: a third of the length is surely over.
    percent = last_turn(image("data:text/plain,abcdefghi"))
    with pytest.raises(AttachmentTooLargeError, match=re.escape("is 3 bytes, over max_file_bytes (2 bytes)")):
        split_image_parts(percent, max_file_bytes=2)
    with pytest.raises(AttachmentTooLargeError, match=re.escape("is 9 bytes, over max_file_bytes (3 bytes)")):
        split_image_parts(percent, max_file_bytes=3)


def test_the_default_cap_holds_for_image_parts() -> None:
    big = last_turn(image("data:text/plain;base64," + "A" * (20 * 1024 * 1024 * 4 // 3 + 4)))
    with pytest.raises(AttachmentTooLargeError, match=re.escape("over max_file_bytes (20.0 MiB)")):
        split_image_parts(big)


# -- the upload request -----------------------------------------------------------------------


def test_the_upload_without_a_nonce_is_the_1_9_browsers() -> None:
    site = Site(SITE, referer="https://example.com/chat/")
    request = build_upload_request(site, Attachment('we"ird\r\nname.png', PIXEL, "image/png"), nonce=None,
                                   boundary="XyZ")  # fmt: skip
    assert (request.method, request.url) == ("POST", "https://example.com/wp-json/mwai-ui/v1/files/upload")
    assert dict(request.headers) == {
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Referer": "https://example.com/chat/",
        "Origin": "https://example.com",
        "Content-Type": "multipart/form-data; boundary=XyZ",
    }
    assert request.body == (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="we%22ird%0D%0Aname.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PIXEL + b"\r\n--XyZ--\r\n"
    )


def test_the_upload_with_a_nonce_is_the_2_x_browsers() -> None:
    site = Site("http://blog.example.com:8080/", rest_url="http://blog.example.com:8080/?rest_route=")
    request = build_upload_request(
        site, Attachment("notes", b"hi", "text/plain"), nonce="n0nce",
        extra_headers={"X-Trace": "1", "X-WP-Nonce": "mine", "Content-Type": "mine"}, boundary="b",
    )  # fmt: skip
    assert request.url == "http://blog.example.com:8080/?rest_route=/mwai-ui/v1/files/upload"
    # No page, no Referer; the nonce and the body's type are the SDK's, whatever the extras say.
    assert dict(request.headers) == {
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "X-Trace": "1",
        "X-WP-Nonce": "n0nce",
        "Content-Type": "multipart/form-data; boundary=b",
    }
    assert request.body == (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="notes"\r\nContent-Type: text/plain'
        b'\r\n\r\nhi\r\n--b\r\nContent-Disposition: form-data; name="type"\r\n\r\nN/A\r\n'
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nN/A\r\n--b--\r\n'
    )
    assert "n0nce" not in repr(request)


def test_the_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        build_upload_request(Site(SITE), CAT, "n0nce")  # type: ignore[misc]
    with pytest.raises(TypeError):
        check_generation_takes("open", [CAT], True, SITE)  # type: ignore[misc]


def test_each_upload_has_a_fresh_boundary() -> None:
    site = Site(SITE)
    first, second = (build_upload_request(site, CAT, nonce="n") for _ in range(2))
    boundary = first.headers["Content-Type"].split("boundary=")[1]
    assert re.fullmatch("----opchatgpts[0-9a-f]{24}", boundary)
    assert first.body.startswith(b"--" + boundary.encode() + b"\r\n")
    assert first.body.endswith(b"\r\n--" + boundary.encode() + b"--\r\n")
    assert second.headers["Content-Type"] != first.headers["Content-Type"]


def test_multipart_names_are_utf_8_and_escaped() -> None:
    content_type, body = encode_multipart(
        Attachment("çat\n.png", b"\x00", "image/pñg"), [('a"b', "välue")], boundary="B"
    )
    assert content_type == "multipart/form-data; boundary=B"
    assert body == (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="\xc3\xa7at%0A.png"\r\n'
        b"Content-Type: image/p?g\r\n\r\n\x00\r\n"
        b'--B\r\nContent-Disposition: form-data; name="a%22b"\r\n\r\nv\xc3\xa4lue\r\n--B--\r\n'
    )


# -- the upload's answer ----------------------------------------------------------------------


def test_the_file_id_of_a_successful_upload() -> None:
    answer = b'{"success": true, "data": {"id": "f-1", "url": "https://example.com/x.png"}}'
    assert parse_upload_answer(answer, CAT) == "f-1"


def test_success_must_be_true_and_failure_false() -> None:
    for body in (b'{"success": 1, "data": {"id": "f-1"}}', b'{"success": 0, "message": "no"}'):
        with pytest.raises(UploadRejectedError, match="the upload's answer is not AI Engine's"):
            parse_upload_answer(body, CAT)


def test_a_refusal_inside_a_successful_answer() -> None:
    pixel = Attachment("cat.png", PIXEL, "image/png", "photos/cat.png")
    body = b'{"success": false, "message": "Uploads are disabled."}'
    with pytest.raises(UploadRejectedError) as raised:
        parse_upload_answer(body, pixel, url=SITE + UPLOAD_ROUTE)
    error = raised.value
    assert type(error) is UploadRejectedError
    assert str(error) == "photos/cat.png: the site refused the file: Uploads are disabled."
    assert (error.filename, error.status_code, error.url) == ("photos/cat.png", 200, SITE + UPLOAD_ROUTE)
    assert error.body == {"success": False, "message": "Uploads are disabled."}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"success": true, "data": {"id": ""}}', """'{"success": true, "data": {"id": ""}}'"""),
        (b'{"success": true, "data": {"id": 7}}', """'{"success": true, "data": {"id": 7}}'"""),
        (b'{"success": true, "data": {}}', """'{"success": true, "data": {}}'"""),
        (b'{"success": true, "data": "f-1"}', """'{"success": true, "data": "f-1"}'"""),
        (b'{"success": "yes", "data": {"id": "f-1"}}', """'{"success": "yes", "data": {"id": "f-1"}}'"""),
        (b'{"data": {"id": "f-1"}}', """'{"data": {"id": "f-1"}}'"""),
        (b'{"success": false, "message": 5}', """'{"success": false, "message": 5}'"""),
        (b'{"success": null, "message": "no"}', """'{"success": null, "message": "no"}'"""),
        (b'["f-1"]', """'["f-1"]'"""),
        (b"<html><title>Oops</title></html>", "an HTML page titled 'Oops'"),
        (b"", "''"),
    ],
)
def test_an_answer_that_is_not_ai_engines(body: bytes, says: str) -> None:
    with pytest.raises(UploadRejectedError) as raised:
        parse_upload_answer(body, CAT, url="u")
    assert str(raised.value) == "cat.png: the upload's answer is not AI Engine's: " + says
    assert (raised.value.status_code, raised.value.body, raised.value.url) == (200, body.decode(), "u")


# -- refused uploads --------------------------------------------------------------------------


def test_a_refused_nonce() -> None:
    error = AuthenticationError("Cookie check failed", status_code=403, code="rest_cookie_invalid_nonce")
    refused = upload_error(error, CAT)
    assert isinstance(refused, UploadAuthenticationError) and isinstance(refused, AuthenticationError)
    assert refused.message == (
        "cat.png: the upload needs a nonce the site accepts (rest_cookie_invalid_nonce): Cookie check failed"
    )
    bare = upload_error(AuthenticationError("Forbidden", status_code=401), CAT)
    assert bare.message == "cat.png: the upload needs a nonce the site accepts: Forbidden"


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (refusal("Invalid file type."), UploadRejectedError,
         "the site refused the file: Invalid file type. (WordPress takes only the types it allows guests, by "
         "extension, and an image's content must be an image)"),
        (refusal("No file provided."), UploadTooLargeError,
         "the site received no file: at 1.5 KiB the upload is most likely over its limit on a request (PHP "
         "post_max_size)"),
        (refusal("Could not move the file.", 500, body={"success": False}), UploadTooLargeError,
         "the site could not store the file (Could not move the file.): at 1.5 KiB it is most likely over "
         "its upload limit (PHP upload_max_filesize)"),
        (refusal("Request Entity Too Large", 413), UploadTooLargeError,
         "the site's web server refused a request of 1.5 KiB (413)"),
        (refusal("There has been a critical error on this website.", 500, body="<html>"), UploadTooLargeError,
         "the site failed with a PHP error (There has been a critical error on this website.) while storing "
         "the file; AI Engine 2.x and 3.x answer so to a file over the site's upload limit (PHP "
         "upload_max_filesize), and this one is 1.5 KiB"),
        (refusal("Critical", 500, code="internal_server_error", body={"code": "internal_server_error"}),
         UploadTooLargeError,
         "the site failed with a PHP error (Critical) while storing the file; AI Engine 2.x and 3.x answer "
         "so to a file over the site's upload limit (PHP upload_max_filesize), and this one is 1.5 KiB"),
        (refusal("Database gone", 500, code="db_error", body={"code": "db_error"}), UploadRejectedError,
         "the site refused the file: Database gone"),
        (refusal("No space", 500, code="rest_upload_failed", body={"code": "rest_upload_failed"}),
         UploadRejectedError, "the site refused the file: No space"),
        (refusal("Not today", 503, body="<html>"), UploadRejectedError,
         "the site refused the file: Not today"),
        (refusal("Too big", 400), UploadRejectedError, "the site refused the file: Too big"),
        (refusal("Bad request", 400), UploadRejectedError, "the site refused the file: Bad request"),
    ],
)  # fmt: skip
def test_refused_uploads_say_why(error: APIStatusError, kind: type, reason: str) -> None:
    big = Attachment("big.png", bytes(1536), "image/png", "photos/big.png")
    refused = upload_error(error, big)
    assert type(refused) is kind
    assert refused.message == "photos/big.png: " + reason
    assert refused.filename == "photos/big.png" and refused.uploaded == ()
    assert (refused.status_code, refused.code, refused.body, refused.url) == (
        error.status_code, error.code, error.body, SITE + UPLOAD_ROUTE
    )
    assert refused.headers["x-site"] == "1"


def test_a_refused_upload_names_the_files_uploaded_before() -> None:
    one = upload_error(refusal("Too big"), CAT, [("a.txt", "f-1")])
    assert one.message == (
        "cat.png: the site refused the file: Too big. Nothing was sent to the chat; a.txt (id f-1) was "
        "uploaded before and stays on the site, unused"
    )
    assert one.uploaded == (("a.txt", "f-1"),)
    two = upload_error(InternalServerError("PHP died", status_code=500), CAT, [("a", "1"), ("b", "2")])
    assert str(two) == (
        "HTTP 500: cat.png: the site failed with a PHP error (PHP died) while storing the file; AI Engine "
        "2.x and 3.x answer so to a file over the site's upload limit (PHP upload_max_filesize), and this "
        "one is 75 bytes. Nothing was sent to the chat; a (id 1), b (id 2) were uploaded before and stay on "
        "the site, unused"
    )


# -- what each generation takes ---------------------------------------------------------------


def files(*labels: str) -> List[Attachment]:
    return [Attachment(label, b"x", "text/plain") for label in labels]


@pytest.mark.parametrize("generation", ["session", None, "future"])
def test_2_4_4_and_unknown_generations_take_anything(generation: Optional[str]) -> None:
    check_generation_takes(generation, files("a", "b", "c"), has_text=False, site_url=SITE)


@pytest.mark.parametrize(("generation", "what"), [("open", "image"), ("nonce", "file")])
def test_one_file_a_message_before_2_4_4(generation: str, what: str) -> None:
    for one in ([], files("a")):
        check_generation_takes(generation, one, has_text=True, site_url=SITE)
    with pytest.raises(TooManyFilesError) as raised:
        check_generation_takes(generation, files("a.png", "b.png"), has_text=True, site_url=SITE)
    name = {"open": "AI Engine 1.9.x", "nonce": "AI Engine 2.0-2.4.3"}[generation]
    assert str(raised.value) == (
        f"2 files (a.png, b.png) for one message, but {SITE} runs {name}, which takes one {what} per message "
        "(2.4.4 and later take several); nothing was uploaded or sent"
    )
    assert (raised.value.filename, raised.value.uploaded) == ("b.png", ())
    with pytest.raises(TooManyFilesError) as raised:
        check_generation_takes(generation, files("a", "b", "c"), has_text=False, site_url=SITE,
                               uploaded=[("a", "f-1")])  # fmt: skip
    assert str(raised.value).startswith(f"3 files (a, b, c) for one message, but {SITE} runs {name}")
    assert str(raised.value).endswith(
        "several). Nothing was sent to the chat; a (id f-1) was uploaded before and stays on the site, unused"
    )
    assert raised.value.uploaded == (("a", "f-1"),)


def test_1_9_refuses_a_file_without_text() -> None:
    check_generation_takes("open", [], has_text=False, site_url=SITE)
    check_generation_takes("nonce", files("a.png"), has_text=False, site_url=SITE)
    with pytest.raises(FilesNotAcceptedError) as raised:
        check_generation_takes("open", files("a.png"), has_text=False, site_url=SITE)
    assert type(raised.value) is FilesNotAcceptedError
    assert str(raised.value) == (
        f"a.png: {SITE} runs AI Engine 1.9.x, which refuses a message without text, even with an image: add "
        "some text; nothing was uploaded or sent"
    )
    assert (raised.value.filename, raised.value.uploaded) == ("a.png", ())
    with pytest.raises(FilesNotAcceptedError) as raised:
        check_generation_takes(
            "open", files("a.png"), has_text=False, site_url=SITE, uploaded=[("a.png", "9")]
        )
    assert str(raised.value).endswith(
        "add some text. Nothing was sent to the chat; a.png (id 9) was uploaded before and stays on the "
        "site, unused"
    )
    assert raised.value.uploaded == (("a.png", "9"),)


def test_the_submit_fields_of_each_generation() -> None:
    assert submit_fields("open", ["a"]) == {"newImageId": "a"}
    assert submit_fields("nonce", ["a"]) == {"newFileId": "a"}
    assert submit_fields(None, ["a"]) == {"newFileId": "a"}  # a nonce-gated site of unknown version
    assert submit_fields("session", ["a"]) == {"newFileId": "a", "newFileIds": None}
    assert submit_fields("session", ("a", "b")) == {"newFileId": None, "newFileIds": ["a", "b"]}
    for generation in ("open", "nonce", "session", None):
        assert submit_fields(generation, []) == {}


@pytest.mark.parametrize(
    ("generation", "says"),
    [("open", "AI Engine 1.9.x takes one file"), ("nonce", "AI Engine 2.0-2.4.3 takes one file"),
     (None, "this site takes one file")],
)  # fmt: skip
def test_several_ids_where_one_is_taken(generation: Optional[str], says: str) -> None:
    with pytest.raises(ValueError, match=f"^{says}$"):
        submit_fields(generation, ["a", "b"])
