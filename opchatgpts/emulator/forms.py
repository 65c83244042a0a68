"""PHP's ``$_POST`` and ``$_FILES``: the form fields and files a request body holds.

PHP parses ``multipart/form-data`` and ``application/x-www-form-urlencoded``
bodies before WordPress runs. A file over ``upload_max_filesize`` arrives without
its content (``UPLOAD_ERR_INI_SIZE``); a body over ``post_max_size`` arrives as
nothing at all, which the caller decides before calling :func:`read_form`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import parse_qsl

__all__ = ["Form", "FormFile", "read_form"]


@dataclass(frozen=True)
class FormFile:
    """One entry of ``$_FILES``."""

    filename: str
    """The client's file name, without any directory part."""
    content_type: str
    """The part's Content-Type, as the client claimed it (WordPress ignores it)."""
    data: bytes
    """The content; empty when ``too_big``."""
    size: int
    """The content's length as sent."""
    too_big: bool
    """Over ``upload_max_filesize``: PHP kept the name and dropped the content."""


@dataclass(frozen=True)
class Form:
    """``$_POST`` (the text fields) and ``$_FILES`` (the file parts) of one body."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, FormFile] = field(default_factory=dict)


def read_form(body: bytes, content_type: str, *, upload_max_filesize: int) -> Form:
    """The form a body of ``content_type`` holds; an empty form for other bodies."""
    media_type, params = _parse_header(content_type)
    if media_type == "application/x-www-form-urlencoded":
        return Form(fields=dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True)))
    boundary = params.get("boundary")
    if media_type != "multipart/form-data" or not boundary:
        return Form()
    fields: dict[str, str] = {}
    files: dict[str, FormFile] = {}
    for raw in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if raw.startswith(b"--"):
            break  # the closing delimiter
        if raw.startswith(b"\r\n"):
            raw = raw[2:]
        head, separator, content = raw.partition(b"\r\n\r\n")
        if not separator:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = _part_headers(head)
        disposition, disposition_params = _parse_header(headers.get("content-disposition", ""))
        name = disposition_params.get("name")
        if disposition != "form-data" or name is None:
            continue
        filename = disposition_params.get("filename")
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
            continue
        too_big = len(content) > upload_max_filesize
        files[name] = FormFile(
            filename=filename.replace("\\", "/").rsplit("/", 1)[-1],
            content_type=headers.get("content-type", ""),
            data=b"" if too_big else content,
            size=len(content),
            too_big=too_big,
        )
    return Form(fields, files)


def _part_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, separator, value = line.partition(":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    return headers


def _parse_header(value: str) -> tuple[str, dict[str, str]]:
    """A header's main value (lower case) and its parameters."""
    message = Message()
    message["content-type"] = value
    params = message.get_params() or []
    main = params[0][0].lower() if params else ""
    return main, {key.lower(): collapse_rfc2231_value(param) for key, param in params[1:]}
