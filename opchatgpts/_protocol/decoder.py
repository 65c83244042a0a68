"""Server-sent events: bytes in, event payloads out. No I/O.

It follows the WHATWG "interpreting an event stream" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
for the parts AI Engine uses. Lines end with CRLF, LF or CR, and a line end or a multi-byte
UTF-8 character may be split across network chunks. Lines are split on bytes before they
are decoded: CR and LF never occur inside a multi-byte UTF-8 sequence, so a character cut by a
chunk boundary is always whole by the time its line is complete.
"""

from __future__ import annotations

from typing import List, Optional

from .._exceptions import RemoteProtocolError, ResponseTooLargeError, StreamError

__all__ = ["SSEDecoder", "DEFAULT_MAX_LINE_BYTES"]

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Feed it body bytes; it returns the ``data`` of every complete event.

    ``max_line_bytes`` caps one line (and so one event), to bound memory against a server
    that never ends a line.
    """

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes <= 0:
            raise ValueError("max_line_bytes must be positive")
        self.max_line_bytes = max_line_bytes
        self._partial: List[bytes] = []  # pieces of the line not yet ended
        self._partial_size = 0
        self._after_cr = False  # the last chunk ended in CR: a leading LF now belongs to it
        self._head: Optional[bytes] = b""  # the body's first bytes, until a BOM is ruled out
        self._data: List[str] = []  # the data lines of the event being built
        self.saw_data = False  # whether any ``data:`` field arrived at all
        #: A failure found after some events of the same chunk: those events are returned
        #: first, and the next call raises it.
        self.error: Optional[StreamError] = None

    def feed(self, chunk: bytes) -> List[str]:
        """Take the next bytes of the body; return the payloads of the events they complete."""
        if self.error is not None:
            raise self.error
        if not chunk:
            return []
        if self._head is not None:
            # The stream's first character is dropped if it is a byte-order mark (WHATWG);
            # it may arrive split across chunks like any other.
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._head = None
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
                if not chunk:
                    return []
        if self._after_cr:
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\n" not in chunk and b"\r" not in chunk:
            self._keep_partial(chunk)
            return []
        if self._partial:
            chunk = b"".join(self._partial) + chunk
            self._partial = []
            self._partial_size = 0
        if b"\r" in chunk:
            self._after_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        rest = lines.pop()
        events: List[str] = []
        try:
            self._interpret(lines, events, check_size=len(chunk) > self.max_line_bytes)
            if rest:
                self._keep_partial(rest)
        except StreamError as exc:
            if not events:
                raise
            self.error = exc
        return events

    def close(self) -> List[str]:
        """The body ended. Returns the payload of a last event that lacked its blank line."""
        if self.error is not None:
            raise self.error
        lines = []
        if self._head:  # the body was one or two bytes that could have begun a BOM
            self._keep_partial(self._head)
            self._head = None
        if self._partial:
            lines.append(b"".join(self._partial))
            self._partial = []
            self._partial_size = 0
        # The spec drops an event that is not followed by a blank line. We keep it: a
        # server that closes right after its last ``data:`` line still meant that event,
        # and a truncated one fails JSON decoding later with a clear error.
        lines.append(b"")
        events: List[str] = []
        self._interpret(lines, events)
        return events

    def _keep_partial(self, piece: bytes) -> None:
        self._partial.append(piece)
        self._partial_size += len(piece)
        self.check_size(self._partial_size)

    def check_size(self, size: int) -> None:
        """Raise ``ResponseTooLargeError`` if ``size`` bytes exceed the cap."""
        if size > self.max_line_bytes:
            raise ResponseTooLargeError(
                f"a line of the answer exceeds max_line_bytes={self.max_line_bytes}"
            )

    def _interpret(self, lines: List[bytes], events: List[str], check_size: bool = False) -> None:
        """Append the payloads that ``lines`` complete to ``events`` (kept if a line fails)."""
        data = self._data
        for line in lines:
            if check_size:
                self.check_size(len(line))
            if not line:
                # A blank line dispatches the event.
                if data:
                    events.append(data[0] if len(data) == 1 else "\n".join(data))
                    data.clear()
            elif line[:5] == b"data:":
                value = line[5:]
                if value[:1] == b" ":
                    value = value[1:]
                try:
                    data.append(value.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise RemoteProtocolError(f"the answer is not valid UTF-8: {exc}") from exc
                self.saw_data = True
            else:
                # Comments (":..."), "event:", "id:", "retry:" and lines that are no field
                # at all: AI Engine sends none of them, the spec ignores them, and so do we.
                pass
