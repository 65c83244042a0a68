"""Files sent with a chat turn: what to upload, how, and how the chat names them. No I/O.

The browser chatbot uploads each file first (``POST {rest}/mwai-ui/v1/files/upload``,
multipart), then sends the ids the uploads answered with in the chat request. What each
plugin generation wants (``captures/attachments/FINDINGS.md``):

=========  ==================================  ========================  ===================
generation upload fields and nonce             submit field              files per message
=========  ==================================  ========================  ===================
open       ``file``; no nonce                  ``newImageId``            one
nonce      ``file``, ``type``, ``purpose``;    ``newFileId``             one
           the page's ``restNonce``
session    the same; start_session's nonce     ``newFileId`` (one) or    several
           (its ``mwai_session_id`` cookie      ``newFileIds``
           owns the file)
=========  ==================================  ========================  ===================

This module turns the caller's files into ``Attachment`` values (the bytes are read by the
client layer), builds the upload request, reads its answer, names its refusals (every error
names the file), and picks the submit fields.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import secrets
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union
from urllib.parse import unquote_to_bytes, urlsplit

from .._exceptions import (
    APIStatusError,
    AttachmentTooLargeError,
    AuthenticationError,
    FilesNotAcceptedError,
    InvalidAttachmentError,
    TooManyFilesError,
    UploadAuthenticationError,
    UploadRejectedError,
    UploadTooLargeError,
)
from .._site import Site
from .request import USER_AGENT, HTTPRequest, check_messages, content_parts
from .response import _describe, _json_or_none

__all__ = [
    "UPLOAD_ROUTE",
    "DEFAULT_MAX_FILE_BYTES",
    "GENERATION_NAMES",
    "Attachment",
    "FileInput",
    "attachment_from_bytes",
    "sniff_mime",
    "split_image_parts",
    "build_upload_request",
    "parse_upload_answer",
    "upload_error",
    "check_generation_takes",
    "submit_fields",
]

#: The upload route, below the REST root.
UPLOAD_ROUTE = "/mwai-ui/v1/files/upload"
#: The default ``max_file_bytes``: larger files are refused before any I/O.
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
#: The plugin generations, as messages name them.
GENERATION_NAMES = {
    "open": "AI Engine 1.9.x",
    "nonce": "AI Engine 2.0-2.4.3",
    "session": "AI Engine 2.4.4+",
}


@dataclass(frozen=True)
class Attachment:
    """One file of a chat turn, ready to upload.

    ``name`` is the file name sent with it (WordPress accepts a file by its extension and
    content); ``mime`` its type; ``label`` how messages name it (the path or name the
    caller gave, or where in the messages it came from).
    """

    name: str
    data: bytes = field(repr=False)
    mime: str
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def size(self) -> int:
        """The content's length in bytes."""
        return len(self.data)

    def __repr__(self) -> str:
        return f"Attachment({self.name!r}, {self.mime}, {self.size} bytes)"


#: What ``files=`` takes for one file: a path, the bytes, a binary file object, a
#: ``(filename, data, mime_type)`` tuple (``data`` bytes or a binary file object;
#: ``mime_type`` may be ``None``), or an ``Attachment``.
FileInput = Union[
    str,
    os.PathLike[str],
    bytes,
    IO[bytes],
    Tuple[str, Union[bytes, IO[bytes]], Optional[str]],
    Attachment,
]

# Types whose name the system's mimetypes tables may not know (or name another way).
_KNOWN_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".heic": "image/heic", ".pdf": "application/pdf", ".txt": "text/plain", ".csv": "text/csv",
}  # fmt: skip
_EXTENSIONS = {mime: extension for extension, mime in reversed(list(_KNOWN_TYPES.items()))}


def sniff_mime(data: bytes) -> Optional[str]:
    """The type the content's first bytes show (images, PDF, plain text), or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"BM") and len(data) > 14:
        return "image/bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "image/heic"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data and b"\x00" not in data[:8192]:
        try:
            data[:8192].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < 8192 - 4:  # not merely a character cut at the sample's end
                return None
        return "text/plain"
    return None


def _mime_of_name(name: str) -> Optional[str]:
    extension = os.path.splitext(name)[1].lower()
    return _KNOWN_TYPES.get(extension) or mimetypes.guess_type(name, strict=False)[0]


def attachment_from_bytes(
    data: bytes,
    *,
    name: Optional[str],
    mime: Optional[str] = None,
    label: str,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Attachment:
    """An ``Attachment`` of ``data``, checked against ``max_bytes``.

    The type is ``mime`` if given, else the name's, else the content's first bytes show
    it. A name without an extension gets the type's (WordPress refuses a file without
    one); no name at all gives ``image.<ext>`` or ``file.<ext>``.
    """
    check_size(len(data), label, max_bytes)
    mime = mime or (_mime_of_name(name) if name else None) or sniff_mime(data) or "application/octet-stream"
    if not name:
        name = "image" if mime.startswith("image/") else "file"
    if not os.path.splitext(name)[1]:
        name += _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime, strict=False) or ".bin"
    return Attachment(name, data, mime, label)


def check_size(size: int, label: str, max_bytes: int) -> None:
    """Refuse a file of ``size`` bytes over ``max_bytes``, naming it."""
    if size > max_bytes:
        raise AttachmentTooLargeError(
            f"{label} is {_size(size)}, over max_file_bytes ({_size(max_bytes)}); "
            "raise max_file_bytes= to send it",
            filename=label,
        )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


# -- image parts in messages ------------------------------------------------------------------


def split_image_parts(
    messages: Any, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Tuple[List[Dict[str, str]], Tuple[Attachment, ...]]:
    """OpenAI-style messages as AI Engine takes them: text messages, plus the images of
    the last user turn as attachments.

    A message's content may be a string or a list of parts (``{"type": "text", "text":
    ...}``, ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``).
    The last message, if it is the user's, gives its ``data:`` URL images as attachments,
    to be uploaded with that turn; an ``http(s)`` image URL is refused
    (``InvalidAttachmentError``): opchatgpts does not fetch URLs on anyone's behalf, so
    download the image yourself and pass it as a ``data:`` URL or with ``files=``. Earlier
    turns keep their text only: the plugin never sends a turn's files again. Every
    message keeps only ``role`` and ``content``.
    """
    checked = check_messages(messages)
    if not checked or checked[-1]["role"] != "user":
        return checked, ()
    index = len(checked) - 1
    content = messages[index]["content"]
    if isinstance(content, str):
        return checked, ()
    _, images = content_parts(content, index)
    attachments = []
    for number, (part, url) in enumerate(images, 1):
        where = f"messages[{index}]['content'][{part}]"
        attachments.append(_from_data_url(url, where, number, len(images), max_file_bytes))
    return checked, tuple(attachments)


def _from_data_url(url: str, where: str, number: int, count: int, max_bytes: int) -> Attachment:
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    if scheme in ("http", "https"):
        shown = url if len(url) <= 80 else url[:77] + "..."
        raise InvalidAttachmentError(
            f"{where}: the image {shown} is a link, and opchatgpts does not download links: "
            "download it yourself and pass it with files= or as a data: URL",
            filename=where,
        )
    if scheme != "data":
        raise InvalidAttachmentError(
            f"{where}: an image must be a data: URL (data:image/png;base64,...), not {url[:40]!r}",
            filename=where,
        )
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidAttachmentError(f"{where}: the data: URL has no ','", filename=where)
    params = [item.strip() for item in header.split(";")]
    is_base64 = params[-1].lower() == "base64"
    mime = (params[0] if params[0] and "=" not in params[0] else "").lower() or None
    # A first check on the encoded length, before decoding anything that big.
    encoded = len("".join(payload.split()).rstrip("="))
    check_size(encoded * 3 // 4 if is_base64 else encoded // 3, where, max_bytes)
    try:
        if is_base64:
            data = base64.b64decode("".join(payload.split()), validate=True)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise InvalidAttachmentError(f"{where}: the data: URL is not valid base64", filename=where) from None
    stem = f"image{number}" if count > 1 else "image"
    attachment = attachment_from_bytes(data, name=None, mime=mime, label=where, max_bytes=max_bytes)
    extension = os.path.splitext(attachment.name)[1]
    return Attachment(stem + extension, data, attachment.mime, f"{where} ({stem}{extension})")


# -- the upload -------------------------------------------------------------------------------


def build_upload_request(
    site: Site,
    attachment: Attachment,
    *,
    nonce: Optional[str],
    extra_headers: Optional[Mapping[str, str]] = None,
    boundary: Optional[str] = None,
) -> HTTPRequest:
    """The ``POST files/upload`` request for one file.

    With a nonce, the fields the plugin's 2.0+ browser client sends: ``file``, ``type=N/A``
    and ``purpose=N/A`` (``purpose`` is required), and ``X-WP-Nonce``. Without one, only
    ``file``, as the 1.9.x browser sends it: 2.0+ refuse any upload without a nonce, before
    reading the fields.
    """
    fields = [("type", "N/A"), ("purpose", "N/A")] if nonce else []
    content_type, body = encode_multipart(attachment, fields, boundary)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}  # what the browser's fetch() sends
    if site.referer:
        headers["Referer"] = site.referer
        parts = urlsplit(site.referer)
        headers["Origin"] = f"{parts.scheme}://{parts.netloc}"
    if extra_headers:
        headers.update(extra_headers)
    headers["Content-Type"] = content_type
    if nonce:
        headers["X-WP-Nonce"] = nonce
    return HTTPRequest("POST", site.endpoint(UPLOAD_ROUTE), headers, body)


def encode_multipart(
    attachment: Attachment, fields: Sequence[Tuple[str, str]] = (), boundary: Optional[str] = None
) -> Tuple[str, bytes]:
    """``(Content-Type, body)`` of a ``multipart/form-data`` body: the file part (named
    ``file``, with its file name and type), then ``fields``, as browsers write them."""
    boundary = boundary or "----opchatgpts" + secrets.token_hex(12)
    delimiter = b"--" + boundary.encode("ascii")
    filename = _quote(attachment.name)
    chunks = [
        delimiter,
        b"\r\n",
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode("utf-8"),
        f"Content-Type: {attachment.mime}\r\n\r\n".encode("ascii", "replace"),
        attachment.data,
        b"\r\n",
    ]
    for name, value in fields:
        chunks += [
            delimiter,
            f'\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode("utf-8"),
            value.encode("utf-8"),
            b"\r\n",
        ]
    chunks += [delimiter, b"--\r\n"]
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


def _quote(name: str) -> str:
    """A name inside a quoted ``Content-Disposition`` parameter, escaped as browsers do."""
    return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def parse_upload_answer(body: bytes, attachment: Attachment, url: str = "") -> str:
    """The file id from a 2xx answer to an upload: ``{"success": true, "data": {"id"}}``."""
    answer = _json_or_none(body)
    if isinstance(answer, dict):
        data = answer.get("data")
        file_id = data.get("id") if isinstance(data, dict) else None
        if answer.get("success") is True and isinstance(file_id, str) and file_id:
            return file_id
        message = answer.get("message")
        if answer.get("success") is False and isinstance(message, str):
            raise UploadRejectedError(
                f"{attachment.label}: the site refused the file: {message}",
                filename=attachment.label, status_code=200, body=answer, url=url,
            )
    raise UploadRejectedError(
        f"{attachment.label}: the upload's answer is not AI Engine's: {_describe(body)}",
        filename=attachment.label, status_code=200, body=body.decode("utf-8", "replace"), url=url,
    )


def upload_error(
    error: APIStatusError, attachment: Attachment, uploaded: Sequence[Tuple[str, str]] = ()
) -> UploadRejectedError:
    """The typed error, naming the file, for a refused upload."""
    label = attachment.label
    kind: Type[UploadRejectedError] = UploadRejectedError
    reason = error.message
    if isinstance(error, AuthenticationError):
        kind = UploadAuthenticationError
        code = f" ({error.code})" if error.code else ""
        reason = f"the upload needs a nonce the site accepts{code}: {error.message}"
    elif error.message == "Invalid file type.":
        reason = (
            "the site refused the file: Invalid file type. (WordPress takes only the types it "
            "allows guests, by extension, and an image's content must be an image)"
        )
    elif error.message == "No file provided.":
        kind = UploadTooLargeError
        reason = (
            f"the site received no file: at {_size(attachment.size)} the upload is most likely "
            "over its limit on a request (PHP post_max_size)"
        )
    elif error.message == "Could not move the file.":
        kind = UploadTooLargeError
        reason = (
            f"the site could not store the file (Could not move the file.): at {_size(attachment.size)} "
            "it is most likely over its upload limit (PHP upload_max_filesize)"
        )
    elif error.status_code == 413:
        kind = UploadTooLargeError
        reason = f"the site's web server refused a request of {_size(attachment.size)} (413)"
    elif error.status_code == 500 and (
        not isinstance(error.body, dict) or error.code == "internal_server_error"
    ):
        # PHP died: WordPress's "critical error" page (or its JSON twin for a JSON client).
        kind = UploadTooLargeError
        reason = (
            f"the site failed with a PHP error ({error.message}) while storing the file; "
            f"AI Engine 2.x and 3.x answer so to a file over the site's upload limit (PHP "
            f"upload_max_filesize), and this one is {_size(attachment.size)}"
        )
    else:
        reason = f"the site refused the file: {error.message}"
    return kind(
        f"{label}: {reason}{_uploaded_note(uploaded)}",
        filename=label,
        uploaded=uploaded,
        status_code=error.status_code,
        code=error.code,
        body=error.body,
        headers=error.headers,
        url=error.url,
    )


def _uploaded_note(uploaded: Sequence[Tuple[str, str]]) -> str:
    if not uploaded:
        return ""
    files = ", ".join(f"{label} (id {file_id})" for label, file_id in uploaded)
    was, stays = ("was", "stays") if len(uploaded) == 1 else ("were", "stay")
    return f". Nothing was sent to the chat; {files} {was} uploaded before and {stays} on the site, unused"


# -- what the chat request says ---------------------------------------------------------------


def check_generation_takes(
    generation: Optional[str],
    attachments: Sequence[Attachment],
    *,
    has_text: bool,
    site_url: str,
    uploaded: Sequence[Tuple[str, str]] = (),
) -> None:
    """Refuse files the site's generation cannot take with one message, before the chat
    request: more than one before 2.4.4, or (1.9.x) a file without text."""
    if generation not in ("open", "nonce"):
        return  # 2.4.4+ take several; an unknown generation is checked once learned
    name = GENERATION_NAMES[generation]
    if len(attachments) > 1:
        files = ", ".join(attachment.label for attachment in attachments)
        what = "image" if generation == "open" else "file"
        raise TooManyFilesError(
            f"{len(attachments)} files ({files}) for one message, but {site_url} runs {name}, "
            f"which takes one {what} per message (2.4.4 and later take several)"
            + (_uploaded_note(uploaded) if uploaded else "; nothing was uploaded or sent"),
            filename=attachments[1].label,
            uploaded=uploaded,
        )
    if generation == "open" and not has_text and attachments:
        raise FilesNotAcceptedError(
            f"{attachments[0].label}: {site_url} runs {name}, which refuses a message without "
            "text, even with an image: add some text"
            + (_uploaded_note(uploaded) if uploaded else "; nothing was uploaded or sent"),
            filename=attachments[0].label,
            uploaded=uploaded,
        )


def submit_fields(generation: Optional[str], file_ids: Sequence[str]) -> Dict[str, Any]:
    """The chat request's fields naming the uploaded files, as the site's browser client
    sends them: ``newImageId`` (1.9.x), ``newFileId`` (2.0-2.4.3, and a nonce-gated site of
    unknown version with one file: every 2.x and 3.x read it); on 2.4.4+ ``newFileId``
    with ``newFileIds: null`` for one file, ``newFileIds`` with ``newFileId: null`` for
    several."""
    if not file_ids:
        return {}
    if generation == "session":
        if len(file_ids) == 1:
            return {"newFileId": file_ids[0], "newFileIds": None}
        return {"newFileId": None, "newFileIds": list(file_ids)}
    if len(file_ids) != 1:  # check_generation_takes refused it
        raise ValueError(f"{GENERATION_NAMES.get(generation or '', 'this site')} takes one file")
    if generation == "open":
        return {"newImageId": file_ids[0]}
    return {"newFileId": file_ids[0]}
