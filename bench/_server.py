"""The benchmark's server: an AI Engine stand-in that streams as fast as it can.

It answers any POST with ``N`` live events of 4-byte deltas and the ``end`` event, where
``N`` is the request's ``newMessage``. The body of each ``N`` is built once and then written
in ``WRITE_BYTES`` pieces, so the client, not the server, sets the pace. It serves plain
HTTP and HTTPS (a certificate chain from the parent) on 127.0.0.1, and runs in its own
process so that it does not share the GIL with the client being measured.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from multiprocessing.connection import Connection
from typing import Dict, Optional

from aiohttp import web

#: How much of the body goes into one write (and so, roughly, one read on the client).
WRITE_BYTES = 16 * 1024
#: The deltas, 4 bytes each, cycled.
WORDS = ("The ", "cat ", "sat ", "on, ", "the ", "mat ", "and ", "ate.")
_HEADERS = {"Content-Type": "text/event-stream;charset=UTF-8", "Cache-Control": "no-cache"}


def event_stream(n: int) -> bytes:
    """The body of an answer of ``n`` deltas, framed as AI Engine frames it."""
    lines = [
        b"data: " + json.dumps({"type": "live", "data": WORDS[i % len(WORDS)]}).encode() + b"\n\n"
        for i in range(len(WORDS))
    ]
    body = b"".join(lines) * (n // len(WORDS)) + b"".join(lines[: n % len(WORDS)])
    reply = "".join(WORDS) * (n // len(WORDS)) + "".join(WORDS[: n % len(WORDS)])
    end = {"success": True, "reply": reply, "images": None, "usage": {"total_tokens": n}}
    return body + b"data: " + json.dumps({"type": "end", "data": json.dumps(end)}).encode() + b"\n\n"


def expected_text(n: int) -> str:
    """The text a client must put together from ``event_stream(n)``."""
    return "".join(WORDS[i % len(WORDS)] for i in range(n))


_bodies: Dict[int, bytes] = {}


async def _submit(request: web.Request) -> web.StreamResponse:
    n = int((await request.json())["newMessage"])
    body = _bodies.get(n)
    if body is None:
        body = _bodies[n] = event_stream(n)
    response = web.StreamResponse(headers=_HEADERS)
    response.enable_chunked_encoding()
    await response.prepare(request)
    view = memoryview(body)
    for start in range(0, len(body), WRITE_BYTES):
        await response.write(view[start : start + WRITE_BYTES])
    await response.write_eof()
    return response


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _serve(conn: Connection, cert_chain_path: Optional[str]) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", _submit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    plain, tls = _listener(), _listener()
    await web.SockSite(runner, plain, backlog=4096).start()
    tls_port = None
    if cert_chain_path is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_chain_path)
        await web.SockSite(runner, tls, ssl_context=context, backlog=4096).start()
        tls_port = tls.getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), stop.set)  # the parent says stop, or goes away
    conn.send((plain.getsockname()[1], tls_port))
    try:
        await stop.wait()
    finally:
        loop.remove_reader(conn.fileno())
        await runner.cleanup()


def serve(conn: Connection, cert_chain_path: Optional[str]) -> None:
    """Process body: serve until ``conn`` is readable; first send ``(http_port, https_port)``."""
    raise_fd_limit()
    asyncio.run(_serve(conn, cert_chain_path))


def raise_fd_limit(wanted: int = 8192) -> None:
    """Lift the soft limit on open files towards ``wanted`` (thousands of sockets)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    except (ValueError, OSError):
        pass
