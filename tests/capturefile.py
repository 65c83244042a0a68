"""Read the recorded HTTP exchanges in ``tests/captures/``.

A capture file holds comment lines starting with ``###``, the request as curl sent
it (head lines ending in CRLF, then the body and one LF), the raw response (head
lines ending in CRLF, then the body exactly as received and one LF added by the
capture script) and a ``### ---- curl exit=N ...`` trailer line. Long request
bodies are cut in the file and end in ``... [body truncated in this file: N bytes
total]``.

The attachment captures (``captures/attachments/``) differ a little: their
request comes from ``curl --trace``, and neither a request body nor a response body
that already ends in LF has one added (an event stream, a page ending in
``</html>\n``); the PNG bytes of a
body are shown as ``<N bytes PNG>`` (see :func:`expand`); ``### note:`` lines
explain a case; a chat submit ends with an ``UPSTREAM`` section, one JSON object a
line: what the stand-in model received.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from multidict import CIMultiDict

__all__ = ["PLACEHOLDER", "Capture", "expand", "parse"]

_REQUEST_MARK = b"### ---- REQUEST"
_RESPONSE_MARK = b"### ---- RESPONSE"
_TRAILER_MARK = b"### ---- curl exit"
_UPSTREAM_MARK = b"### ---- UPSTREAM"
_NOTE = re.compile(rb"^### note: (.*)$", re.MULTILINE)
_TRUNCATED = re.compile(rb"\.\.\. \[body truncated in this file: (\d+) bytes total\]$")
PLACEHOLDER = re.compile(rb"<(\d+) bytes PNG>")
"""How the attachment captures show N bytes of PNG data."""


def expand(body: bytes, png: Callable[[int], bytes]) -> bytes:
    """``body`` with each ``<N bytes PNG>`` replaced by ``png(N)``."""
    return PLACEHOLDER.sub(lambda match: png(int(match.group(1))), body)


def _expanded_length(body: bytes) -> int:
    return len(body) + sum(int(m.group(1)) - len(m.group()) for m in PLACEHOLDER.finditer(body))


@dataclass
class Capture:
    """One recorded exchange."""

    name: str
    """As in the file's first line, e.g. ``3.6.2/stream_success``."""
    request_method: str
    request_path: str
    """The request target: path and query string."""
    request_headers: CIMultiDict[str]
    request_body: bytes
    """The body as stored; only its beginning when ``request_body_truncated``."""
    request_body_truncated: bool
    request_body_length: int | None
    """The real body length: the stated total of a truncated body, else Content-Length."""
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    """In order, duplicates (Set-Cookie, Link) kept."""
    response_body: bytes
    """Exactly as received."""
    curl_exit: int | None
    notes: list[str] = field(default_factory=list)
    """The ``### note:`` lines."""
    upstream: list[dict[str, Any]] | None = None
    """The requests the stand-in model received (attachment captures), or None."""

    def response_header(self, name: str) -> str | None:
        """The first value of a response header, or None."""
        values = self.response_header_values(name)
        return values[0] if values else None

    def response_header_values(self, name: str) -> list[str]:
        """Every value of a response header, in order."""
        return [v for n, v in self.response_headers if n.lower() == name.lower()]


def _split_head(section: bytes) -> tuple[list[str], bytes]:
    """Head lines (CRLF-terminated, up to the blank line) and what follows them."""
    head, sep, rest = section.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no blank line after the head")
    return head.decode("latin-1").split("\r\n"), rest


def _header(line: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    if not sep:
        raise ValueError(f"not a header line: {line!r}")
    return name.strip(), value.strip()


def parse(path: str | Path) -> Capture:
    """Parse a capture file."""
    data = Path(path).read_bytes()
    first_line = data.split(b"\n", 1)[0].decode("utf-8")
    match = re.match(r"### CAPTURE (\S+)", first_line)
    if match is None:
        raise ValueError(f"{path}: not a capture file")

    request_start = data.index(b"\n", data.index(_REQUEST_MARK)) + 1
    response_mark = data.index(b"\n" + _RESPONSE_MARK, request_start)
    response_start = data.index(b"\n", response_mark + 1) + 1
    trailer = data.rindex(b"\n" + _TRAILER_MARK)  # the LF the script added
    if trailer < response_start:
        raise ValueError(f"{path}: no curl trailer after the response")

    # A request with a body is followed by one added LF; one without has none,
    # nor has a multipart body from curl --trace (its Content-Length tells).
    request_lines, request_body = _split_head(data[request_start : response_mark + 1])
    method, target, _version = request_lines[0].split(" ", 2)
    request_headers: CIMultiDict[str] = CIMultiDict()
    for line in request_lines[1:]:
        name, value = _header(line)
        request_headers[name] = value
    stated = request_headers.get("Content-Length")
    if request_body.endswith(b"\n") and (stated is None or _expanded_length(request_body) != int(stated)):
        request_body = request_body[:-1]
    truncated = _TRUNCATED.search(request_body)
    if truncated is not None:
        request_body = request_body[: truncated.start()]
        body_length: int | None = int(truncated.group(1))
    else:
        length = request_headers.get("Content-Length")
        body_length = int(length) if length is not None else len(request_body)

    trace = b"curl --trace" in data[data.index(_REQUEST_MARK) : request_start]
    response_section = data[response_start:trailer]
    while True:
        lines, response_body = _split_head(response_section)
        _version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        if not status.startswith("1"):  # skip interim answers like 100 Continue
            break
        response_section = response_body

    if trace and response_body.endswith((b"\n", b"</html>")):
        response_body += b"\n"  # its own LF, not an added one
    exit_match = re.search(rb"curl exit=(\d+)", data[trailer:])
    upstream = None
    if _UPSTREAM_MARK in data[trailer:]:
        section = data[data.index(_UPSTREAM_MARK, trailer) :].split(b"\n", 1)[1]
        upstream = [json.loads(line) for line in section.splitlines() if line.strip()]
    return Capture(
        name=match.group(1),
        request_method=method,
        request_path=target,
        request_headers=request_headers,
        request_body=request_body,
        request_body_truncated=truncated is not None,
        request_body_length=body_length,
        status=int(status),
        reason=reason,
        response_headers=[_header(line) for line in lines[1:]],
        response_body=response_body,
        curl_exit=int(exit_match.group(1)) if exit_match else None,
        notes=[note.decode("utf-8") for note in _NOTE.findall(data[:request_start])],
        upstream=upstream,
    )
