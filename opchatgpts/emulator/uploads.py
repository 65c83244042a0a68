"""Uploaded files: the bounded :class:`UploadStore` and the rules a new upload meets.

- **Type check.** WordPress's ``wp_check_filetype_and_ext`` for a guest: the
  extension must be in WordPress's list (less ``html``/``htm``/``js``, which guests
  may not upload), and the content must agree with it: an image must really be one
  (a ``.jpg`` holding a PNG is renamed ``.png``), a text file must be text. The part's
  Content-Type is ignored. The content sniffing is a small stand-in for PHP's
  ``getimagesize``/``fileinfo``.
- **Names and ids** per generation: see :class:`~.generations.Generation.upload_names`.
- **The store** keeps the newest files within a count and a byte budget; an older file
  is dropped as the plugin's expiry cleanup would drop it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .generations import Generation

__all__ = ["IMAGE_EXPIRES", "StoredFile", "UploadStore", "check_file_type", "new_upload"]

IMAGE_EXPIRES = 3600
"""The plugin's default ``image_expires``: a file's lifetime in seconds (shown by ``files/list``)."""
UPLOADS_PATH = "/wp-content/uploads"

# WordPress 6.1's allowed types for a guest (no unfiltered_html, so no htm/html/js).
# fmt: off
_WORDPRESS_TYPES: dict[str, str] = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "jpe": "image/jpeg", "gif": "image/gif",
    "png": "image/png", "bmp": "image/bmp", "tiff": "image/tiff", "tif": "image/tiff",
    "webp": "image/webp", "ico": "image/x-icon", "heic": "image/heic",
    "asf": "video/x-ms-asf", "asx": "video/x-ms-asf", "wmv": "video/x-ms-wmv", "wmx": "video/x-ms-wmx",
    "wm": "video/x-ms-wm", "avi": "video/avi", "divx": "video/divx", "flv": "video/x-flv",
    "mov": "video/quicktime", "qt": "video/quicktime", "mpeg": "video/mpeg", "mpg": "video/mpeg",
    "mpe": "video/mpeg", "mp4": "video/mp4", "m4v": "video/mp4", "ogv": "video/ogg",
    "webm": "video/webm", "mkv": "video/x-matroska", "3gp": "video/3gpp", "3gpp": "video/3gpp",
    "3g2": "video/3gpp2", "3gp2": "video/3gpp2",
    "txt": "text/plain", "asc": "text/plain", "c": "text/plain", "cc": "text/plain", "h": "text/plain",
    "srt": "text/plain", "csv": "text/csv", "tsv": "text/tab-separated-values", "ics": "text/calendar",
    "rtx": "text/richtext", "css": "text/css", "vtt": "text/vtt", "dfxp": "application/ttaf+xml",
    "mp3": "audio/mpeg", "m4a": "audio/mpeg", "m4b": "audio/mpeg", "aac": "audio/aac",
    "ra": "audio/x-realaudio", "ram": "audio/x-realaudio", "wav": "audio/wav", "ogg": "audio/ogg",
    "oga": "audio/ogg", "flac": "audio/flac", "mid": "audio/midi", "midi": "audio/midi",
    "wma": "audio/x-ms-wma", "wax": "audio/x-ms-wax", "mka": "audio/x-matroska",
    "rtf": "application/rtf", "pdf": "application/pdf", "class": "application/java",
    "tar": "application/x-tar", "zip": "application/zip", "gz": "application/x-gzip",
    "gzip": "application/x-gzip", "rar": "application/rar", "7z": "application/x-7z-compressed",
    "psd": "application/octet-stream", "xcf": "application/octet-stream",
    "doc": "application/msword", "pot": "application/vnd.ms-powerpoint",
    "pps": "application/vnd.ms-powerpoint", "ppt": "application/vnd.ms-powerpoint",
    "wri": "application/vnd.ms-write", "xla": "application/vnd.ms-excel",
    "xls": "application/vnd.ms-excel", "xlt": "application/vnd.ms-excel",
    "xlw": "application/vnd.ms-excel", "mdb": "application/vnd.ms-access",
    "mpp": "application/vnd.ms-project",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "key": "application/vnd.apple.keynote", "numbers": "application/vnd.apple.numbers",
    "pages": "application/vnd.apple.pages",
}
# fmt: on
# What getimagesize() recognises, and the extension WordPress renames such an image to.
_IMAGE_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/webp": "webp",
}
# fileinfo answers that say nothing; fine for binary-ish types, fatal for the rest.
_NONSPECIFIC = ("application/octet-stream", "application/zip")
_TEXTUAL_TYPES = ("text/plain", "text/csv", "application/csv", "text/richtext", "text/tsv", "text/vtt")


def _image_type(data: bytes) -> str | None:
    """The image type of ``data`` as ``getimagesize`` reads it, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"BM") and len(data) > 14:
        return "image/bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _content_type(data: bytes) -> str:
    """A rough ``finfo`` reading of ``data``."""
    image = _image_type(data)
    if image is not None:
        return image
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "image/heic"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"PK\x03\x04"):
        return "application/zip"
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text/plain"
    return "application/octet-stream"


def check_file_type(filename: str, data: bytes | None, extra: Mapping[str, str]) -> tuple[str, str] | None:
    """The extension and type WordPress accepts ``filename`` with, or None ("Invalid file type.").

    ``data`` is None when the content did not arrive (over ``upload_max_filesize``):
    then only the name is checked, as WordPress does for a missing file. ``extra``
    are the generation's additional extensions, allowed by name alone.
    """
    extension = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
    mime = _WORDPRESS_TYPES.get(extension)
    if mime is None:
        extra_mime = extra.get(extension)
        return (extension, extra_mime) if extra_mime is not None else None
    if data is None:
        return extension, mime
    real = _image_type(data) if mime.startswith("image/") else None
    if real is not None and real != mime:
        extension = _IMAGE_EXTENSIONS[real]  # renamed to what it really is
        return extension, _WORDPRESS_TYPES[extension]
    if real is not None:
        return extension, mime
    sniffed = _content_type(data)
    group, sniffed_group = mime.split("/", 1)[0], sniffed.split("/", 1)[0]
    if sniffed in _NONSPECIFIC:
        accepted = group in ("application", "video", "audio")
    elif sniffed_group in ("video", "audio"):
        accepted = sniffed_group == group
    elif sniffed == "text/plain":
        accepted = mime in _TEXTUAL_TYPES
    else:
        accepted = sniffed == mime
    return (extension, mime) if accepted else None


@dataclass
class StoredFile:
    """One uploaded file: its row in ``mwai_files`` and its content."""

    number: int
    """The numeric database id (what 2.x's ``files/list`` and ``files/delete`` use)."""
    ref_id: str
    """The id the upload answered with, which a submit names the file by."""
    url: str
    """The public URL the upload answered with."""
    path: str
    """The URL's path, where the emulator serves the file."""
    mime: str
    data: bytes
    created: float
    """Upload time, seconds since the epoch."""
    owner: str | None = None
    """``session_<mwai_session_id>`` on 3.x; None (a guest) otherwise."""
    purpose: str | None = None
    env_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``image`` or ``file``, as the plugin files it."""
        return "image" if self.mime.startswith("image/") else "file"

    @property
    def size(self) -> int:
        """The content's length in bytes."""
        return len(self.data)

    @property
    def name(self) -> str:
        """The stored file's name."""
        return self.path.rsplit("/", 1)[-1]


_RANDOM_NAME_LETTERS = string.ascii_letters + string.digits


def _sanitize(filename: str) -> str:
    """A file name as WordPress's ``sanitize_file_name`` leaves it (roughly)."""
    name = re.sub(r"\s+", "-", filename.strip())
    name = re.sub(r"[^A-Za-z0-9._-]", "", name).strip(".-_")
    return name or "unnamed-file"


def new_upload(
    generation: Generation,
    store: UploadStore,
    *,
    site_root: str,
    filename: str,
    extension: str,
    mime: str,
    data: bytes,
    now: float | None = None,
) -> StoredFile:
    """A new file named the generation's way (not yet in ``store``)."""
    now = time.time() if now is None else now
    directory = UPLOADS_PATH + time.strftime("/%Y/%m/", time.gmtime(now))
    ref_id = ""
    if generation.upload_names == "random":
        name = "".join(secrets.choice(_RANDOM_NAME_LETTERS) for _ in range(20)) + "." + extension
    elif generation.upload_names == "original":
        stem = _sanitize(filename.rsplit(".", 1)[0] if "." in filename else filename)
        name, number = f"{stem}.{extension}", 0
        while store.at_path(directory + name) is not None:  # wp_unique_filename
            number += 1
            name = f"{stem}-{number}.{extension}"
    else:
        ref_id = store.new_ref_id()
        name = f"{ref_id}.{extension}"
    path = directory + name
    url = site_root + path
    if not ref_id:
        ref_id = hashlib.md5(url.encode("utf-8")).hexdigest()  # md5(url): predictable
    return StoredFile(
        number=store.new_number(), ref_id=ref_id, url=url, path=path, mime=mime, data=data, created=now
    )


class UploadStore:
    """The uploaded files, newest last, within ``max_files`` files and ``max_bytes`` bytes.

    The newest file is always kept, even alone over ``max_bytes``.
    """

    def __init__(self, max_files: int, max_bytes: int) -> None:
        """Keep at most ``max_files`` files (at least 1) and about ``max_bytes`` bytes."""
        if max_files < 1:
            raise ValueError("the upload store must keep at least one file")
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._by_path: dict[str, StoredFile] = {}
        self._bytes = 0
        self._numbers = 0

    def new_number(self) -> int:
        """The next numeric database id."""
        self._numbers += 1
        return self._numbers

    def new_ref_id(self) -> str:
        """A random 32-hex-digit id no stored file has."""
        while True:
            ref_id = secrets.token_hex(16)
            if ref_id not in self._files:
                return ref_id

    def add(self, file: StoredFile) -> None:
        """Store ``file``, dropping the oldest files beyond the limits."""
        self.remove(self._files.get(file.ref_id))
        self._files[file.ref_id] = file
        self._by_path[file.path] = file
        self._bytes += file.size
        while len(self._files) > self.max_files or (self._bytes > self.max_bytes and len(self._files) > 1):
            self.remove(next(iter(self._files.values())))

    def remove(self, file: StoredFile | None) -> None:
        """Drop ``file`` (row and content), if stored."""
        if file is None or self._files.get(file.ref_id) is not file:
            return
        del self._files[file.ref_id]
        del self._by_path[file.path]
        self._bytes -= file.size

    def get(self, ref_id: object) -> StoredFile | None:
        """The file with this id, or None."""
        return self._files.get(ref_id) if isinstance(ref_id, str) else None

    def at_path(self, path: str) -> StoredFile | None:
        """The file served at this URL path, or None."""
        return self._by_path.get(path)

    def numbered(self, number: float) -> StoredFile | None:
        """The file with this numeric database id, or None."""
        return next((f for f in self._files.values() if f.number == number), None)

    def expire(self, ref_ids: Iterable[str] | None = None) -> int:
        """Drop the named files (all of them for None), as the expiry cleanup does; how many went."""
        targets = list(self) if ref_ids is None else [self._files[i] for i in ref_ids if i in self._files]
        for file in targets:
            self.remove(file)
        return len(targets)

    @property
    def bytes(self) -> int:
        """The stored contents' total length."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[StoredFile]:
        return iter(list(self._files.values()))
