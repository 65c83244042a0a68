"""A fault-injection HTTP/1.1 server on 127.0.0.1, for the reliability tests.

aiohttp.web answers too correctly to misbehave at the socket level, so this is a raw
asyncio server. Each connection carries one request; a *script* (an ``async def(conn,
attempt)``) then decides what goes back: a well-formed answer, a reset (RST) at any point,
a stall, a cut body, broken events... The server counts connections, requests and client
disconnects, so tests can assert how often the SDK retried and that it hung up.

It runs on its own event loop in a background thread, so sync and async clients alike can
use it::

    with FaultServer(stream()) as server:
        ...
        assert server.request_count == 1

Every wait in here is bounded (``MAX_STALL``): no script can keep a test alive by itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Sequence, Union

__all__ = [
    "FaultServer",
    "Conn",
    "Request",
    "Script",
    "ECHO_DELTAS",
    "SUBMIT_PATH",
    "event",
    "live",
    "end",
    "stream",
    "sequence",
    "respond",
    "reset_before_headers",
    "reset_after_headers",
    "reset_after",
    "not_gzip_but_labelled_gzip",
    "echo_events",
    "stall_before_headers",
    "stall_after",
    "cut_after",
    "close_delimited_without_end",
    "events_then",
    "trickle",
    "gzip_stream",
    "huge_line",
    "blank_lines_forever",
    "redirect",
    "free_port",
    "wait_until",
]

HOST = "127.0.0.1"
SUBMIT_PATH = "/wp-json/mwai-ui/v1/chats/submit"
#: The longest any script waits for anything.
MAX_STALL = 15.0
_START_TIMEOUT = 10.0

#: The deltas of the standard answer; the full reply is their concatenation.
ECHO_DELTAS = ("Echo:", " one", " two", " three")


# -- event bytes -------------------------------------------------------------------------------


def event(payload: Union[Dict[str, Any], str, bytes]) -> bytes:
    """One SSE event: ``data: <payload>`` and a blank line. Dicts are JSON-encoded."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return b"data: " + payload + b"\n\n"


def live(text: str) -> bytes:
    """A ``live`` event carrying answer text."""
    return event({"type": "live", "data": text})


def end(reply: str, **extra: Any) -> bytes:
    """The ``end`` event, its data JSON-encoded a second time as the plugin does."""
    return event({"type": "end", "data": json.dumps({"success": True, "reply": reply, **extra})})


def echo_events(deltas: Sequence[str] = ECHO_DELTAS) -> List[bytes]:
    """The events of a complete answer made of ``deltas``."""
    return [live(d) for d in deltas] + [end("".join(deltas))]


# -- the server --------------------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    target: str
    headers: Dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """The server's side of one connection, with the moves a script can make."""

    def __init__(
        self, server: "FaultServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.chunked = False
        self.aborted = False

    @property
    def client_gone(self) -> bool:
        """Whether the client closed its side (seen as EOF or a closing transport)."""
        return self.reader.at_eof() or self.writer.is_closing()

    async def write(self, data: bytes) -> None:
        """Raw bytes, as they are."""
        self.writer.write(data)
        await self.writer.drain()

    async def head(
        self,
        status: int = 200,
        headers: Optional[Dict[str, str]] = None,
        *,
        content_type: str = "text/event-stream;charset=UTF-8",
        length: Optional[int] = None,
        chunked: bool = True,
    ) -> None:
        """The status line and headers. ``chunked=False`` and no ``length``: the body ends
        when the connection closes."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        all_headers = {"Content-Type": content_type, "Connection": "close"}
        if length is not None:
            all_headers["Content-Length"] = str(length)
        elif chunked:
            all_headers["Transfer-Encoding"] = "chunked"
            self.chunked = True
        all_headers.update(headers or {})
        lines += [f"{k}: {v}" for k, v in all_headers.items()]
        await self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def body(self, data: bytes) -> None:
        """A piece of the body (a chunk, when the body is chunked)."""
        if not data:
            return
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        await self.write(data)

    async def end_body(self) -> None:
        """The end of a chunked body."""
        if self.chunked:
            await self.write(b"0\r\n\r\n")

    async def respond(
        self,
        status: int,
        body: Union[bytes, str, Dict[str, Any]] = b"",
        *,
        content_type: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        """A whole answer with a ``Content-Length``."""
        if isinstance(body, dict):
            body = json.dumps(body)
            content_type = content_type or "application/json; charset=UTF-8"
        if isinstance(body, str):
            body = body.encode("utf-8")
        await self.head(
            status, headers, content_type=content_type or "text/plain", length=len(body)
        )
        await self.write(body)

    async def reset(self, delay: float = 0.05) -> None:
        """Abort the connection with a TCP RST, after ``delay`` (letting the client read
        what was sent)."""
        if delay:
            await asyncio.sleep(delay)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.aborted = True

    async def wait_for_disconnect(self, limit: float = MAX_STALL) -> bool:
        """Stall: send nothing until the client hangs up (or ``limit`` passes)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), deadline - time.monotonic())
            except asyncio.TimeoutError:
                return False
            except ConnectionError:
                return True
            if not data:
                return True
        return False


Script = Callable[[Conn, int], Awaitable[None]]


class FaultServer:
    """Serves ``script`` on a free port of 127.0.0.1 (HTTPS when given an ``ssl_context``).

    Counters (read them from any thread):

    * ``connections``: TCP connections accepted;
    * ``requests``: the requests read, in order (``attempt`` numbers start at 1);
    * ``tls_failures``: connections whose TLS handshake failed;
    * ``disconnects``: connections the client closed before the script was done;
    * ``active``: connections still open on the server's side.
    """

    def __init__(self, script: Script, *, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.connections = 0
        self.handshakes = 0  # connections that got past TLS (all of them on plain HTTP)
        self.requests: List[Request] = []
        self.disconnects = 0
        self.active = 0
        self.port = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._tasks: "set[asyncio.Task[None]]" = set()

    @property
    def url(self) -> str:
        """The site root."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{HOST}:{self.port}"

    @property
    def submit_url(self) -> str:
        return self.url + SUBMIT_PATH

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def tls_failures(self) -> int:
        """Connections whose TLS handshake failed (or is still going on)."""
        return self.connections - self.handshakes

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FaultServer":
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="faultserver", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(_START_TIMEOUT)
        return self

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            # Called for each TCP connection, before any TLS handshake: a connection whose
            # handshake fails never reaches ``_accept``, but it is counted here.
            self.connections += 1
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self._accept)

        self._server = await loop.create_server(protocol, HOST, 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(_START_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_START_TIMEOUT)
            loop.close()
            self._loop = self._thread = None

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- one connection ----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.handshakes += 1
        self.active += 1
        conn = Conn(self, reader, writer)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            await self.script(conn, len(self.requests))
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnects += 1
        except asyncio.CancelledError:
            pass
        finally:
            if not conn.aborted:
                writer.close()
                try:
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
                except (ConnectionError, asyncio.TimeoutError, ssl.SSLError, OSError):
                    pass
                except asyncio.CancelledError:
                    pass
            self.active -= 1
            self._tasks.discard(task)

    def saw_disconnect(self, conn: Conn) -> None:
        """A script noticed that the client hung up."""
        self.disconnects += 1


async def _read_request(reader: asyncio.StreamReader) -> Optional[Request]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), MAX_STALL)
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


_REASONS = {
    200: "OK", 301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 407: "Proxy Authentication Required", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}


# -- scripts -----------------------------------------------------------------------------------
#
# Each function below returns a script. A script that keeps sending (trickle, blank lines)
# stops as soon as the client has gone, and after MAX_STALL at the latest.


def stream(
    events: Optional[Iterable[bytes]] = None,
    *,
    content_type: str = "text/event-stream;charset=UTF-8",
    pause: float = 0.0,
    finish: bool = True,
) -> Script:
    """A streamed answer: headers, each event in its own chunk, then the end of the body.

    ``finish=False`` leaves the chunked body unterminated and closes the connection (FIN).
    """
    chosen = list(events) if events is not None else echo_events()

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200, content_type=content_type)
        for item in chosen:
            await conn.body(item)
            if pause:
                await asyncio.sleep(pause)
        if finish:
            await conn.end_body()
        else:
            await asyncio.sleep(0.05)  # let the client read the events before the FIN

    return script


def events_then(events: Iterable[bytes], then: Script) -> Script:
    """Headers and ``events``, then hand the connection to ``then`` (a misbehaviour)."""
    chosen = list(events)

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200)
        for item in chosen:
            await conn.body(item)
        await then(conn, attempt)

    return script


def sequence(*scripts: Script) -> Script:
    """Attempt n runs ``scripts[n-1]``; the last one repeats."""

    async def script(conn: Conn, attempt: int) -> None:
        await scripts[min(attempt, len(scripts)) - 1](conn, attempt)

    return script


def respond(
    status: int,
    body: Union[bytes, str, Dict[str, Any]] = b"",
    *,
    content_type: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Script:
    """A complete answer with a ``Content-Length``."""

    async def script(conn: Conn, attempt: int) -> None:
        await conn.respond(status, body, content_type=content_type, headers=headers)

    return script


async def reset_before_headers(conn: Conn, attempt: int) -> None:
    """RST as soon as the request has been read."""
    await conn.reset(delay=0)


async def reset_after_headers(conn: Conn, attempt: int) -> None:
    """Headers of a streamed answer, then RST before any event."""
    await conn.head(200)
    await conn.reset()


async def _reset(conn: Conn, attempt: int) -> None:
    await conn.reset()


async def _stall(conn: Conn, attempt: int) -> None:
    if await conn.wait_for_disconnect():
        conn.server.saw_disconnect(conn)


def reset_after(events: Iterable[bytes]) -> Script:
    """``events``, then RST."""
    return events_then(events, _reset)


async def stall_before_headers(conn: Conn, attempt: int) -> None:
    """Read the request, answer nothing, wait for the client to give up."""
    await _stall(conn, attempt)


def stall_after(events: Iterable[bytes]) -> Script:
    """``events``, then silence until the client gives up."""
    return events_then(events, _stall)


def cut_after(events: Iterable[bytes]) -> Script:
    """``events`` in a chunked body that is never terminated: the connection just closes."""
    return stream(events, finish=False)


def close_delimited_without_end(events: Iterable[bytes]) -> Script:
    """A body without length or chunking (it ends when the connection closes), closed
    cleanly after ``events``, with no ``end`` event."""
    chosen = list(events)

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200, chunked=False)
        for item in chosen:
            await conn.write(item)
        await asyncio.sleep(0.05)

    return script


def trickle(text_events: int = 200, interval: float = 0.05) -> Script:
    """A long answer: ``text_events`` live events, one per ``interval``, then ``end``.

    It stops early when the client hangs up, and counts that as a disconnect.
    """

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200)
        deadline = time.monotonic() + MAX_STALL
        for i in range(text_events):
            if conn.client_gone or time.monotonic() > deadline:
                conn.server.saw_disconnect(conn)
                return
            await conn.body(live(f" w{i}" if i else "Echo:"))
            await asyncio.sleep(interval)
        await conn.body(end("done"))
        await conn.end_body()

    return script


def gzip_stream(events: Optional[Iterable[bytes]] = None) -> Script:
    """A ``Content-Encoding: gzip`` stream, flushed after every event so it still streams."""
    chosen = list(events) if events is not None else echo_events()

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200, {"Content-Encoding": "gzip"})
        compressor = zlib.compressobj(wbits=31)  # gzip framing
        for item in chosen:
            await conn.body(compressor.compress(item) + compressor.flush(zlib.Z_SYNC_FLUSH))
        await conn.body(compressor.flush())
        await conn.end_body()

    return script


def not_gzip_but_labelled_gzip(events: Optional[Iterable[bytes]] = None) -> Script:
    """``Content-Encoding: gzip`` on a body that is plain text."""
    chosen = list(events) if events is not None else echo_events()

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200, {"Content-Encoding": "gzip"})
        for item in chosen:
            await conn.body(item)
        await conn.end_body()

    return script


def huge_line(size: int, before: Iterable[bytes] = ()) -> Script:
    """``before``, then one ``data:`` line of ``size`` bytes with no end, sent in 256 KiB
    pieces, then the end of the body. Stops when the client hangs up."""
    chosen = list(before)

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200)
        for item in chosen:
            await conn.body(item)
        piece = b"a" * (256 * 1024)
        await conn.body(b"data: ")
        sent = 0
        while sent < size:
            await conn.body(piece)  # raises ConnectionError once the client has gone
            sent += len(piece)
        await conn.body(b"\n\n")
        await conn.end_body()

    return script


def blank_lines_forever(before: Iterable[bytes] = (), interval: float = 0.02) -> Script:
    """``before``, then a blank line every ``interval`` until the client hangs up: bytes keep
    coming, events never do."""
    chosen = list(before)

    async def script(conn: Conn, attempt: int) -> None:
        await conn.head(200)
        for item in chosen:
            await conn.body(item)
        deadline = time.monotonic() + MAX_STALL
        while time.monotonic() < deadline:
            if conn.client_gone:
                conn.server.saw_disconnect(conn)
                return
            await conn.body(b"\n")
            await asyncio.sleep(interval)

    return script


def redirect(location: str, status: int = 307, headers: Optional[Dict[str, str]] = None) -> Script:
    """A redirect to ``location``."""
    return respond(status, b"", headers={"Location": location, **(headers or {})})


# -- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    """A port of 127.0.0.1 on which nothing listens (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)

