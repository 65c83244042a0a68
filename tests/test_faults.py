"""The fault matrix: every way a server can misbehave, through the sync and the async API.

Each row states the exact outcome: the error class (exactly, not a subclass), how many
tries the SDK made and how many of them reached the server, and the text the caller had
received before the error. After every case nothing may be left behind (``leakcheck``).

Retries are instant (``RetryPolicy(backoff=0.0)`` with a recording fake sleep) and the
timeouts are short, so the whole matrix runs in seconds.

The interruption tests stop a stream from the outside: Ctrl-C, ``break``, task
cancellation, ``close()`` from another thread, and interpreter exit. The last tests feed
absurdly nested JSON to the nonce sources (start_session, the chatbot page).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import pytest
import trustme
from faultserver import (
    ECHO_DELTAS,
    SUBMIT_PATH,
    Conn,
    FaultServer,
    Script,
    blank_lines_forever,
    close_delimited_without_end,
    cut_after,
    event,
    free_port,
    gzip_stream,
    huge_line,
    live,
    not_gzip_but_labelled_gzip,
    redirect,
    reset_after,
    reset_after_headers,
    reset_before_headers,
    respond,
    sequence,
    stall_after,
    stall_before_headers,
    stream,
    trickle,
    wait_until,
)
from leakcheck import assert_no_leaks, without_timing_notices

import opchatgpts
from opchatgpts import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    IncompleteStreamError,
    InternalServerError,
    Opchatgpts,
    OpchatgptsError,
    PermissionDeniedError,
    QueryRejectedError,
    RateLimitError,
    RemoteProtocolError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerReportedError,
    StreamInterruptedError,
    StreamTimeoutError,
    Timeout,
    TLSVerificationError,
)

ECHO = list(ECHO_DELTAS)
MESSAGES = [{"role": "user", "content": "one two three"}]
NONCE = "n0nce-9f8e7d6c5b"
DEFAULT_TIMEOUT = Timeout(connect=2.0, read=2.0, total=10.0)


# -- the environment of one case -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server_context() -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 from a CA that nobody trusts."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@dataclass
class Env:
    """The servers of one case and where the SDK is sent."""

    url: str
    server: Optional[FaultServer] = None
    others: List[FaultServer] = field(default_factory=list)

    @property
    def servers(self) -> List[FaultServer]:
        return ([self.server] if self.server else []) + self.others


Setup = Callable[[ExitStack, Dict[str, Any]], Env]


def serve(script: Script) -> Setup:
    def setup(stack: ExitStack, fixtures: Dict[str, Any]) -> Env:
        server = stack.enter_context(FaultServer(script))
        return Env(server.url, server)

    return setup


def refused(stack: ExitStack, fixtures: Dict[str, Any]) -> Env:
    return Env(f"http://127.0.0.1:{free_port()}")


def untrusted_tls(stack: ExitStack, fixtures: Dict[str, Any]) -> Env:
    server = stack.enter_context(
        FaultServer(stream(), ssl_context=fixtures["tls_server_context"])
    )
    return Env(server.url, server)


def tls_handshake_stall(stack: ExitStack, fixtures: Dict[str, Any]) -> Env:
    """An https URL whose server accepts the connection and never answers the handshake."""
    server = stack.enter_context(FaultServer(stall_before_headers))
    return Env(server.url.replace("http:", "https:"), server)


def cross_origin_redirect(stack: ExitStack, fixtures: Dict[str, Any]) -> Env:
    """A redirects to B, another origin (another port), setting a cookie on the way."""
    other = stack.enter_context(FaultServer(stream()))
    cookie = {"Set-Cookie": "mwai_session_id=c00kie-s3cret; Path=/"}
    server = stack.enter_context(FaultServer(redirect(other.submit_url, headers=cookie)))
    return Env(server.url, server, [other])


def redirect_loop(stack: ExitStack, fixtures: Dict[str, Any]) -> Env:
    server = stack.enter_context(FaultServer(stream()))
    server.script = redirect(server.submit_url)
    return Env(server.url, server)


async def broken_chunk_framing(conn: Conn, attempt: int) -> None:
    """A chunk size that is not hex, after one good event."""
    await conn.head(200)
    await conn.body(live("Echo:"))
    await asyncio.sleep(0.05)
    await conn.write(b"zz\r\nhello\r\n")
    await conn.wait_for_disconnect()


# -- the matrix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row: a fault and exactly what the caller sees."""

    setup: Setup
    error: Optional[Type[BaseException]]  # the exact class; None: the answer arrives
    attempts: int  # tries the SDK made (1 + the retries)
    received: List[str]  # the text deltas delivered before the error
    reached: Optional[int] = None  # requests the server read; default: ``attempts``
    kwargs: Dict[str, Any] = field(default_factory=dict)
    check: Optional[Callable[[Optional[BaseException], Env, List[float]], None]] = None
    error_by_api: Dict[str, Type[BaseException]] = field(default_factory=dict)  # where they differ


def _retry_after_none(exc: Any, env: Env, waits: List[float]) -> None:
    assert exc.retry_after is None and exc.status_code == 429


def _honours_retry_after(exc: Any, env: Env, waits: List[float]) -> None:
    assert waits == [7.0]


def _retry_after_above_cap(exc: Any, env: Env, waits: List[float]) -> None:
    assert exc.retry_after == 3600.0 and waits == []


def _status(code: int) -> Callable[[Any, Env, List[float]], None]:
    def check(exc: Any, env: Env, waits: List[float]) -> None:
        assert exc.status_code == code

    return check


def _rejection(exc: Any, env: Env, waits: List[float]) -> None:
    assert exc.status_code == 500 and exc.message == "You have reached the limit."


def _firewall(exc: Any, env: Env, waits: List[float]) -> None:
    assert exc.status_code == 403 and "Attention Required! | Cloudflare" in str(exc)


def _html_200(exc: Any, env: Env, waits: List[float]) -> None:
    assert "an HTML page titled 'Just a moment...'" in str(exc)


def _chained(cause: Type[BaseException]) -> Callable[[Any, Env, List[float]], None]:
    def check(exc: Any, env: Env, waits: List[float]) -> None:
        assert isinstance(exc.__cause__, cause)

    return check


def _upstream_message(exc: Any, env: Env, waits: List[float]) -> None:
    assert str(exc) == "From OpenAI: The server had an error while processing your request."


def _nothing_crosses_origins(exc: Any, env: Env, waits: List[float]) -> None:
    assert env.server is not None
    (first,) = env.server.requests
    (second,) = env.others[0].requests
    assert first.headers["x-wp-nonce"] == NONCE and "referer" in first.headers
    for name in ("x-wp-nonce", "cookie", "origin", "referer", "authorization"):
        assert name not in second.headers, name
    assert second.json()["newMessage"] == "one two three"  # the body follows (307)


def _loop(exc: Any, env: Env, waits: List[float]) -> None:
    assert exc.status_code == 307 and "more than 5 redirects" in str(exc)


def _tls(exc: Any, env: Env, waits: List[float]) -> None:
    assert env.server is not None
    assert env.server.connections == 1 and env.server.tls_failures == 1
    assert "certificate" in str(exc).lower()


UPSTREAM = "From OpenAI: The server had an error while processing your request."
HTML_403 = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    "<body>Sorry, you have been blocked</body></html>"
)
HTML_200 = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"
FAST = {"timeout": Timeout(connect=2.0, read=0.3, total=10.0)}

MATRIX: Dict[str, Case] = {
    "refused": Case(refused, APIConnectionError, 3, [], reached=0),
    "reset before headers": Case(serve(reset_before_headers), APIConnectionError, 3, []),
    "reset after headers, before any event": Case(
        serve(reset_after_headers), StreamInterruptedError, 1, []
    ),
    "reset after 2 events": Case(
        serve(reset_after([live("Echo:"), live(" one")])), StreamInterruptedError, 1,
        ["Echo:", " one"],
    ),
    "stall before headers (read timeout)": Case(
        serve(stall_before_headers), APITimeoutError, 3, [], kwargs=FAST
    ),
    "stall mid-stream (idle timeout)": Case(
        serve(stall_after([live("Echo:"), live(" one")])), StreamTimeoutError, 1,
        ["Echo:", " one"], kwargs=FAST,
    ),
    "total timeout before headers": Case(
        serve(stall_before_headers), APITimeoutError, 1, [],
        kwargs={"timeout": Timeout(connect=2.0, read=5.0, total=0.4)},
    ),
    "total timeout mid-stream": Case(
        serve(stall_after([live("Echo:"), live(" one")])), StreamTimeoutError, 1,
        ["Echo:", " one"], kwargs={"timeout": Timeout(connect=2.0, read=5.0, total=0.5)},
    ),
    "body closes cleanly without end": Case(
        serve(close_delimited_without_end([live(d) for d in ECHO[:3]])),
        IncompleteStreamError, 1, ECHO[:3],
    ),
    "chunked body cut without end": Case(
        serve(cut_after([live("Echo:"), live(" one")])), StreamInterruptedError, 1,
        ["Echo:", " one"],
    ),
    "200 with an empty body": Case(serve(stream([])), IncompleteStreamError, 1, []),
    "malformed JSON line": Case(
        serve(stream([live("Echo:"), b'data: {"type":"live","data":"x\n\n'])),
        RemoteProtocolError, 1, ["Echo:"], check=_chained(json.JSONDecodeError),
    ),
    "event with no type": Case(
        serve(stream([live("Echo:"), event({"data": " one"})])), RemoteProtocolError, 1,
        ["Echo:"],
    ),
    "error event after text": Case(
        serve(stream([live("Echo:"), event({"type": "error", "data": UPSTREAM})])),
        ServerReportedError, 1, ["Echo:"], check=_upstream_message,
    ),
    "error event in a 200 JSON answer": Case(  # before any text: the plugin refused
        serve(stream([event({"type": "error", "data": UPSTREAM})],
                     content_type="application/json")),
        QueryRejectedError, 1, [], check=_upstream_message,
    ),
    "429 without Retry-After": Case(
        serve(respond(429, "Too Many Requests")), RateLimitError, 3, [],
        check=_retry_after_none,
    ),
    "429 Retry-After: 7, then success": Case(
        serve(sequence(respond(429, "slow down", headers={"Retry-After": "7"}), stream())),
        None, 2, ECHO, check=_honours_retry_after,
    ),
    "429 Retry-After above the 30 s cap": Case(
        serve(respond(429, "come back in an hour", headers={"Retry-After": "3600"})),
        RateLimitError, 1, [], check=_retry_after_above_cap,
    ),
    "502, 503, then success": Case(
        serve(sequence(respond(502, "Bad Gateway"), respond(503, "Busy"), stream())),
        None, 3, ECHO,
    ),
    "503 on every try": Case(
        serve(respond(503, "<html><title>503</title></html>", content_type="text/html")),
        InternalServerError, 3, [], check=_status(503),
    ),
    "500 JSON rejection": Case(
        serve(respond(500, {"success": False, "message": "You have reached the limit."})),
        QueryRejectedError, 1, [], check=_rejection,
    ),
    "403 HTML page (firewall)": Case(
        serve(respond(403, HTML_403, content_type="text/html")), PermissionDeniedError, 1,
        [], check=_firewall,
    ),
    "200 HTML page": Case(
        serve(respond(200, HTML_200, content_type="text/html")), RemoteProtocolError, 1, [],
        check=_html_200,
    ),
    "gzip-encoded stream": Case(serve(gzip_stream()), None, 1, ECHO),
    "gzip label on a plain body": Case(
        serve(not_gzip_but_labelled_gzip()), RemoteProtocolError, 1, []
    ),
    "invalid UTF-8": Case(
        serve(stream([live("Echo:"), b'data: {"type":"live","data":"\xff\xfe"}\n\n'])),
        RemoteProtocolError, 1, ["Echo:"], check=_chained(UnicodeDecodeError),
    ),
    "20 MiB single line": Case(
        serve(huge_line(20 * 1024 * 1024, [live("Echo:")])), ResponseTooLargeError, 1,
        ["Echo:"],
    ),
    "endless keep-alive blank lines": Case(
        serve(blank_lines_forever([live("Echo:")])), StreamTimeoutError, 1, ["Echo:"],
        kwargs=FAST,
    ),
    "broken chunked framing": Case(
        serve(broken_chunk_framing), StreamTimeoutError, 1, ["Echo:"], kwargs=FAST,
        # aiohttp stops reading at the bad chunk size and the read timeout ends the wait;
        # urllib3 reports the broken framing at once.
        error_by_api={"sync-requests": StreamInterruptedError},
    ),
    "redirect to another origin": Case(
        cross_origin_redirect, None, 1, ECHO,
        kwargs={"nonce": NONCE, "referer": "http://127.0.0.1/chat/"},
        check=_nothing_crosses_origins,
    ),
    "redirect loop": Case(redirect_loop, APIStatusError, 1, [], reached=6, check=_loop),
    "redirect to a file: URL": Case(
        serve(redirect("file:///etc/passwd")), APIStatusError, 1, [], check=_status(307)
    ),
    "stall in the TLS handshake": Case(
        tls_handshake_stall, APITimeoutError, 3, [], reached=0,
        kwargs={"timeout": Timeout(connect=0.3, read=2.0, total=10.0)},
    ),
    "HTTPS with an untrusted certificate": Case(
        untrusted_tls, TLSVerificationError, 1, [], reached=0, check=_tls
    ),
}


# -- running one call ----------------------------------------------------------------------------


class Waits:
    """A fake sleep for the retry policy: records each wait, waits for nothing."""

    def __init__(self) -> None:
        self.seconds: List[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


Outcome = Tuple[List[str], Optional[BaseException]]


def call_sync(url: str, **kwargs: Any) -> Outcome:
    parts: List[str] = []
    try:
        for part in Opchatgpts.create_completion(None, MESSAGES, url=url, **kwargs):
            parts.append(part)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return parts, exc
    return parts, None


def call_async(url: str, **kwargs: Any) -> Outcome:
    async def main() -> Outcome:
        parts: List[str] = []
        error: Optional[BaseException] = None
        agen = Opchatgpts.create_async_generator(None, MESSAGES, url=url, **kwargs)
        try:
            async for part in agen:
                parts.append(part)
        except Exception as exc:  # noqa: BLE001
            error = exc
        finally:
            await agen.aclose()
        await asyncio.sleep(0)
        current = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        assert not left, f"tasks left on the caller's loop: {left}"
        return parts, error

    return asyncio.run(main())


def call_sync_requests(url: str, **kwargs: Any) -> Outcome:
    return call_sync(url, transport="requests", **kwargs)


CALLERS = {"sync": call_sync, "sync-requests": call_sync_requests, "async": call_async}


@pytest.mark.parametrize("api", list(CALLERS))
@pytest.mark.parametrize("case", list(MATRIX.values()), ids=list(MATRIX))
def test_fault(case: Case, api: str, tls_server_context: ssl.SSLContext) -> None:
    waits = Waits()
    options: Dict[str, Any] = {
        "timeout": DEFAULT_TIMEOUT,
        "retry": RetryPolicy(max_retries=2, backoff=0.0, sleep=waits),
        **case.kwargs,
    }
    with ExitStack() as stack:
        env = case.setup(stack, {"tls_server_context": tls_server_context})
        with assert_no_leaks(env.servers):
            parts, error = CALLERS[api](env.url, **options)
        if case.error is None:
            assert error is None, f"unexpected {error!r}"
        else:
            expected = case.error_by_api.get(api, case.error)
            assert type(error) is expected, f"expected {expected.__name__}, got {error!r}"
            assert isinstance(error, OpchatgptsError)
        assert parts == case.received
        assert len(waits.seconds) + 1 == case.attempts, f"waits: {waits.seconds}"
        if env.server is not None:
            reached = case.attempts if case.reached is None else case.reached
            assert env.server.request_count == reached
        if case.check is not None:
            case.check(error, env, waits.seconds)


def test_every_error_a_faulty_server_causes_has_a_row() -> None:
    # A new error class for a server fault fails this test until the matrix has a row for it.
    expected = {case.error for case in MATRIX.values()}
    expected |= {error for case in MATRIX.values() for error in case.error_by_api.values()}
    families = (APIConnectionError, APIStatusError, opchatgpts.StreamError)
    public = [getattr(opchatgpts, name) for name in opchatgpts.__all__]
    errors = {cls for cls in public if isinstance(cls, type) and issubclass(cls, families)}
    # StreamError is only a base class; WordPress's own refusals (400, the nonce's 401/403, 404)
    # are mapped in test_retry.py::test_error_mapping; an upload's refusals (one file, before the
    # chat call) in test_attachments.py; every site failing at once in test_failover.py.
    elsewhere = {opchatgpts.StreamError, opchatgpts.BadRequestError, opchatgpts.AuthenticationError,
                 opchatgpts.NotFoundError, opchatgpts.UploadRejectedError,
                 opchatgpts.UploadTooLargeError, opchatgpts.UploadAuthenticationError,
                 opchatgpts.AllSitesUnreachableError}
    assert errors - expected == elsewhere


# -- interruption and cancellation ---------------------------------------------------------------


def words_stream() -> Script:
    """A long, slow answer: one event every 50 ms, for up to 200 events."""
    return trickle(200, 0.05)


def test_ctrl_c_during_a_sync_stream() -> None:
    received: List[str] = []
    # Python's own handler, even where SIGINT is inherited as ignored (background jobs).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with FaultServer(words_stream()) as server, assert_no_leaks([server]):
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                for part in Opchatgpts.create_completion(None, MESSAGES, url=server.url):
                    received.append(part)
        finally:
            timer.cancel()
            timer.join()
            signal.signal(signal.SIGINT, previous)
        assert wait_until(lambda: server.disconnects == 1)
    assert 1 <= len(received) < 200 and received[0] == "Echo:"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_break_in_the_first_chunk(api: str) -> None:
    with FaultServer(words_stream()) as server, assert_no_leaks([server]):
        if api == "sync":
            for part in Opchatgpts.create_completion(None, MESSAGES, url=server.url):
                assert part == "Echo:"
                break
        else:

            async def main() -> None:
                agen = Opchatgpts.create_async_generator(None, MESSAGES, url=server.url)
                async for part in agen:
                    assert part == "Echo:"
                    break
                await agen.aclose()

            asyncio.run(main())
        assert wait_until(lambda: server.disconnects == 1)
    assert server.request_count == 1


def test_cancelling_the_task_of_an_async_stream() -> None:
    received: List[str] = []

    async def consume(url: str) -> None:
        async for part in Opchatgpts.create_async_generator(None, MESSAGES, url=url):
            received.append(part)

    async def main(url: str) -> None:
        task = asyncio.create_task(consume(url))
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not current] == []

    with FaultServer(words_stream()) as server, assert_no_leaks([server]):
        asyncio.run(main(server.url))
        assert wait_until(lambda: server.disconnects == 1)
    assert 1 <= len(received) < 200


def test_closing_a_sync_stream_from_another_thread() -> None:
    """The consumer is blocked waiting for the next event; another thread closes the stream."""
    with FaultServer(stall_after([live("Echo:")])) as server, assert_no_leaks([server]):
        stream_ = Opchatgpts.create_completion(
            None, MESSAGES, url=server.url, timeout=Timeout(connect=2, read=30)
        )
        assert next(stream_) == "Echo:"
        closer = threading.Timer(0.2, stream_.close)
        closer.start()
        started = time.monotonic()
        try:
            rest = list(stream_)  # blocks until the close
        finally:
            closer.join()
        assert rest == []
        assert time.monotonic() - started < 5
        assert wait_until(lambda: server.disconnects == 1)


EXIT_SCRIPTS = {
    "sync stream held open": """
        import sys
        from opchatgpts import Opchatgpts
        stream = Opchatgpts.create_completion(
            None, [{"role": "user", "content": "hi"}], url=sys.argv[1])
        print(next(stream), flush=True)
        # The interpreter exits with the stream open and the server still sending.
    """,
    "sync stream blocked in a daemon thread": """
        import os, sys, threading
        from opchatgpts import ClientClosedError, Opchatgpts
        got = threading.Event()
        def consume():
            try:
                for part in Opchatgpts.create_completion(
                        None, [{"role": "user", "content": "hi"}], url=sys.argv[1]):
                    got.set()
            except ClientClosedError:
                os.write(1, b"interrupted, not a quiet end\\n")
        threading.Thread(target=consume, daemon=True).start()
        got.wait(10)
        print("Echo:", flush=True)
    """,
    "ask() in a daemon thread": """
        import os, sys, threading
        import opchatgpts
        def consume():
            try:
                text = opchatgpts.ask("hi", url=sys.argv[1])
                os.write(1, f"returned {text!r}\\n".encode())
            except opchatgpts.ClientClosedError:
                os.write(1, b"interrupted, not a quiet end\\n")
        threading.Thread(target=consume, daemon=True).start()
        threading.Event().wait(0.5)  # the answer has started: a word every 50 ms, for 10 s
        print("Echo:", flush=True)
    """,
    "async generator suspended when asyncio.run ends": """
        import asyncio, sys
        from opchatgpts import Opchatgpts
        async def main():
            agen = Opchatgpts.create_async_generator(
                None, [{"role": "user", "content": "hi"}], url=sys.argv[1])
            print(await agen.__anext__(), flush=True)
            main.agen = agen  # still referenced, never closed by the caller
        asyncio.run(main())
    """,
}


@pytest.mark.parametrize("script", list(EXIT_SCRIPTS), ids=list(EXIT_SCRIPTS))
def test_interpreter_exit_while_a_stream_is_open(script: str) -> None:
    code = textwrap.dedent(EXIT_SCRIPTS[script])
    with FaultServer(words_stream()) as server, assert_no_leaks([server]):
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-W", "error", "-c", code, server.url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        # A call cut short by the exit ends in an error, never as if the answer were whole.
        expected = "Echo:\ninterrupted, not a quiet end\n" if "daemon" in script else "Echo:\n"
        assert done.stdout == expected
        assert without_timing_notices(done.stderr) == ""
        assert wait_until(lambda: server.disconnects == 1)


# -- hostile JSON outside the event stream -------------------------------------------------------

DEEP_JSON = "[" * 50_000  # deeper than the JSON parser's recursion limit (3.13: ~10,000), under the nonce cap


async def deep_json_site(conn: Conn, attempt: int) -> None:
    """A site that wants a nonce, and whose nonce sources answer absurdly nested JSON."""
    target = conn.server.requests[-1].target
    if target.endswith(SUBMIT_PATH):
        body = {"code": "rest_forbidden", "message": "Sorry", "data": {"status": 401}}
        await conn.respond(401, body)
    elif "start_session" in target:
        await conn.respond(200, DEEP_JSON, content_type="application/json")
    else:
        page = f"<div class='mwai-chatbot-container' data-system='{DEEP_JSON}'></div>"
        await conn.respond(200, page, content_type="text/html")


def test_nested_json_from_the_nonce_sources_is_a_typed_error() -> None:
    with FaultServer(deep_json_site) as server, assert_no_leaks([server]):
        with pytest.raises(opchatgpts.AuthenticationError) as info:
            opchatgpts.ask("hi", url=server.url, retry=RetryPolicy(backoff=0.0))
    # The submit's refusal, explained by why no nonce could be had.
    assert (info.value.status_code, info.value.code) == (401, "rest_forbidden")
    assert "none could be obtained" in str(info.value)
    assert "the chatbot's data-system is not valid JSON" in str(info.value)


def test_nested_json_in_a_chatbot_page_is_a_discovery_error() -> None:
    with FaultServer(deep_json_site) as server, assert_no_leaks([server]):
        with pytest.raises(opchatgpts.DiscoveryError) as info:
            Opchatgpts.from_page(server.url + "/chat/")
    assert str(info.value) == "the chatbot's data-system is not valid JSON"
    assert isinstance(info.value.__cause__, RecursionError)
