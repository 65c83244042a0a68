"""The requests transport: request shapes, retries, error mapping and the nonce refresh with
``responses``; TLS, credentials, pooling and threads against real sockets.

The behavioural tests it shares with the default sync path are in test_streaming.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator, List, Optional

import pytest
import requests
import responses
import trustme
from leakcheck import without_timing_notices
from urllib3.exceptions import InsecureRequestWarning, ProtocolError, ReadTimeoutError

import opchatgpts
from opchatgpts import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    Opchatgpts,
    PermissionDeniedError,
    QueryRejectedError,
    RateLimitError,
    RetryPolicy,
    Site,
    StreamInterruptedError,
    StreamTimeoutError,
    Timeout,
    TLSVerificationError,
    _credentials,
    _provider,
)
from opchatgpts._blocking import BlockingStream, run_blocking
from opchatgpts._credentials import Credentials, SiteAuth
from opchatgpts._http import Call
from opchatgpts._options import CallOptions
from opchatgpts._transports.base import TransportFailure
from opchatgpts._transports.requests import RequestsTransport, _RequestsResponse
from opchatgpts.testing import serve_emulator

SITE = "https://chat.example"
SUBMIT = SITE + "/wp-json/mwai-ui/v1/chats/submit"
START_SESSION = SITE + "/wp-json/mwai/v1/start_session"
PAGE = SITE + "/chat/"
STREAM_BODY = (
    'data: {"type":"live","data":"Echo:"}\n\n'
    'data: {"type":"live","data":" hi"}\n\n'
    'data: {"type":"end","data":"{\\"success\\":true,\\"reply\\":\\"Echo: hi\\"}"}\n\n'
)
SSE = "text/event-stream"


def requests_transport() -> RequestsTransport:
    """The requests transport of the client behind ``ask`` and ``Opchatgpts``."""
    return _provider._default.get()._pool.transport("requests")  # type: ignore[return-value]


def wp_error(code: str, status: int) -> dict:
    """WordPress core's error body."""
    return {"code": code, "message": f"{code} says no", "data": {"status": status}}


@pytest.fixture(autouse=True)
def fresh_sessions() -> Iterator[None]:
    """Each test starts without pooled connections or cookies."""
    requests_transport().close()
    yield
    requests_transport().close()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits() -> List[float]:
    """The retry waits, recorded by a plain-function sleep."""
    return []


def ask(waits: List[float], **kwargs: Any) -> str:
    kwargs.setdefault("retry", RetryPolicy(max_retries=kwargs.pop("max_retries", 2), sleep=waits.append))
    kwargs.setdefault("url", SITE)
    return opchatgpts.ask("hi", transport="requests", **kwargs)


def submits(mocked: responses.RequestsMock) -> List[Any]:
    return [call.request for call in mocked.calls if "submit" in call.request.url]


# -- request shape ------------------------------------------------------------------------


def test_request_shape(mocked, waits, monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)  # the environment's CA bundle: tested elsewhere
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "hi"},
    ]
    parts = Opchatgpts.create_completion(
        None, messages, url=SITE, chat_id="abcdefghij", bot_id="b", context_id=7, transport="requests"
    )
    assert list(parts) == ["Echo:", " hi"]
    (request,) = submits(mocked)
    assert request.method == "POST"
    assert json.loads(request.body) == {
        "botId": "b",
        "customId": None,
        "session": "N/A",
        "chatId": "abcdefghij",
        "contextId": 7,
        "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}],
        "newMessage": "hi",
        "stream": True,
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["User-Agent"].startswith("opchatgpts/")
    assert "X-WP-Nonce" not in request.headers
    sent = request.req_kwargs
    assert sent["stream"] is True and sent["verify"] is True and sent["proxies"] == {}
    assert sent["timeout"] == (10.0, 60.0)  # (connect, read), as on the default path


def test_timeouts_proxy_and_nonce_reach_requests(mocked, waits):
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    proxy = "http://proxy.example:3128"
    ask(waits, timeout=Timeout(connect=3, read=7), proxy=proxy, nonce="n0nce", verify=False)
    ask(waits, timeout=Timeout(connect=3, read=7, total=2))
    first, second = submits(mocked)
    assert first.req_kwargs["timeout"] == (3, 7)
    assert first.req_kwargs["proxies"] == {"http": proxy, "https": proxy}
    assert first.req_kwargs["verify"] is False
    assert first.headers["X-WP-Nonce"] == "n0nce"
    connect, read = second.req_kwargs["timeout"]
    assert 1 < connect <= 2 and 1 < read <= 2  # capped by what is left of the total


def test_non_stream_mode(mocked, waits):
    mocked.post(SUBMIT, json={"success": True, "reply": "Echo: hi"})
    assert ask(waits, stream=False) == "Echo: hi"
    (request,) = submits(mocked)
    assert json.loads(request.body)["stream"] is False
    assert request.headers["Accept"] == "application/json"


# -- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_retryable_statuses_are_retried_then_succeed(mocked, waits, status):
    mocked.post(SUBMIT, status=status, body="busy")
    mocked.post(SUBMIT, status=status, body="busy")
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    assert ask(waits) == "Echo: hi"
    assert len(submits(mocked)) == 3 and len(waits) == 2


def test_a_coroutine_function_sleep_works_too(mocked):
    seen: List[float] = []

    async def fake_sleep(seconds: float) -> None:
        seen.append(seconds)

    mocked.post(SUBMIT, status=503)
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    policy = RetryPolicy(backoff=1.0, jitter=0.0, sleep=fake_sleep)
    assert opchatgpts.ask("hi", url=SITE, transport="requests", retry=policy) == "Echo: hi"
    assert seen == [1.0]


def test_without_a_policy_sleep_the_transport_sleeps_in_this_thread(mocked, monkeypatch):
    slept: List[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    mocked.post(SUBMIT, status=502)
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    policy = RetryPolicy(backoff=0.25, jitter=0.0)
    assert opchatgpts.ask("hi", url=SITE, transport="requests", retry=policy) == "Echo: hi"
    assert slept == [0.25]


def test_backoff_grows(mocked, waits):
    for _ in range(4):
        mocked.post(SUBMIT, status=503)
    policy = RetryPolicy(max_retries=3, backoff=1.0, backoff_max=3.0, jitter=0.0, sleep=waits.append)
    with pytest.raises(InternalServerError):
        ask(waits, retry=policy)
    assert waits == [1.0, 2.0, 3.0]


def test_retry_after_is_honoured_up_to_the_cap(mocked, waits):
    mocked.post(SUBMIT, status=429, headers={"Retry-After": "7"})
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    assert ask(waits) == "Echo: hi"
    assert waits == [7.0]
    mocked.post(SUBMIT, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitError) as info:
        ask(waits)
    assert info.value.retry_after == 3600 and waits == [7.0]


def test_a_500_rejection_is_never_retried(mocked, waits):
    mocked.post(SUBMIT, status=500, json={"success": False, "message": "You have reached the limit."})
    with pytest.raises(QueryRejectedError, match="reached the limit"):
        ask(waits)
    assert len(submits(mocked)) == 1 and waits == []


# -- errors before the headers ----------------------------------------------------------------


def test_connection_errors_are_retried(mocked, waits):
    mocked.post(SUBMIT, body=requests.ConnectionError("refused"))
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    assert ask(waits) == "Echo: hi"
    assert len(waits) == 1


def test_connection_errors_exhaust_into_api_connection_error(mocked, waits):
    for _ in range(3):
        mocked.post(SUBMIT, body=requests.ConnectionError("refused"))
    with pytest.raises(APIConnectionError, match="cannot reach https://chat.example") as info:
        ask(waits)
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert len(waits) == 2


@pytest.mark.parametrize("failure", [requests.ConnectTimeout("slow"), requests.ReadTimeout("slow")])
def test_timeouts_before_the_headers_are_api_timeouts(mocked, waits, failure):
    mocked.post(SUBMIT, body=failure)
    mocked.post(SUBMIT, body=failure)
    which = "connect" if isinstance(failure, requests.ConnectTimeout) else "read"
    message = rf"https://chat.example within the {which} timeout \({60 if which == 'read' else 10} s\)"
    with pytest.raises(APITimeoutError, match=message) as info:
        ask(waits, max_retries=1)
    assert isinstance(info.value, TimeoutError) and info.value.__cause__ is failure
    assert len(submits(mocked)) == 2


def test_tls_failures_are_never_retried(mocked, waits):
    mocked.post(SUBMIT, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(TLSVerificationError, match="certificate verify failed"):
        ask(waits)
    assert len(submits(mocked)) == 1 and waits == []


@pytest.mark.parametrize(
    "status, body, error, code",
    [
        (400, wp_error("rest_invalid_json", 400), BadRequestError, "rest_invalid_json"),
        (401, wp_error("rest_forbidden", 401), AuthenticationError, "rest_forbidden"),
        (403, wp_error("rest_cookie_invalid_nonce", 403), AuthenticationError, "rest_cookie_invalid_nonce"),
        (403, {"success": False, "message": "Sorry, rejected."}, QueryRejectedError, None),
        (403, "<html><title>Access denied</title></html>", PermissionDeniedError, None),
        (404, wp_error("rest_no_route", 404), NotFoundError, "rest_no_route"),
        (500, "Fatal error", InternalServerError, None),
    ],
)
def test_error_mapping(mocked, waits, status, body, error, code):
    # A nonce refusal makes the client look for a nonce; this site has none to give.
    mocked.post(START_SESSION, status=404, json=wp_error("rest_no_route", 404))
    mocked.get(SITE, body="<html><body>no chatbot here</body></html>", content_type="text/html")
    if isinstance(body, dict):
        mocked.post(SUBMIT, status=status, json=body)
    else:
        mocked.post(SUBMIT, status=status, body=body, content_type="text/html")
    with pytest.raises(error) as info:
        ask(waits)
    assert info.value.status_code == status and info.value.code == code
    assert len(submits(mocked)) == 1


def test_redirects_are_followed_by_the_engine_not_by_requests(mocked, waits):
    moved = SITE + "/blog/wp-json/mwai-ui/v1/chats/submit"
    elsewhere = "https://other.example/submit"
    mocked.post(SUBMIT, status=308, headers={"Location": moved})
    mocked.post(moved, status=307, headers={"Location": elsewhere})
    mocked.post(elsewhere, body=STREAM_BODY, content_type=SSE)
    assert ask(waits, nonce="n0nce") == "Echo: hi"
    first, second, third = submits(mocked)
    assert second.headers["X-WP-Nonce"] == "n0nce"  # same origin: the nonce follows
    assert "X-WP-Nonce" not in third.headers  # another origin: it never does


# -- errors mid-answer ---------------------------------------------------------------------------


class BrokenBody:
    """A urllib3 response body that sends one event, then fails with ``failure``."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.closed = False

    def stream(self, amt: Optional[int] = None, decode_content: Optional[bool] = None) -> Iterator[bytes]:
        yield b'data: {"type":"live","data":"Echo:"}\n\n'
        raise self.failure

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


def broken_response(failure: BaseException) -> _RequestsResponse:
    response = requests.Response()
    response.status_code = 200
    response.raw = BrokenBody(failure)
    return _RequestsResponse(response)


@pytest.mark.parametrize(
    "failure, kind, error",
    [
        (ProtocolError("Connection broken", ConnectionResetError(104, "reset")), "interrupted",
         StreamInterruptedError),
        (ReadTimeoutError(None, "/", "Read timed out."), "read_timeout", StreamTimeoutError),
    ],
)
def test_failures_mid_answer_are_named_once_then_typed_once(failure, kind, error):
    # The transport only names what failed...
    response = broken_response(failure)
    assert run_blocking(response.read(1.0)).startswith(b"data:")
    with pytest.raises(TransportFailure) as named:
        run_blocking(response.read(1.0))
    assert named.value.kind == kind and named.value.__cause__ is not None
    run_blocking(response.aclose())
    assert response._response.raw.closed  # noqa: SLF001 - the connection is not reused
    # ...and the one mapping above the transports gives the typed error, chained to its cause.
    call = Call(RequestsTransport(), CallOptions(site=Site("https://chat.example")))
    response = broken_response(failure)
    run_blocking(call.read(response, None))
    with pytest.raises(error) as typed:
        run_blocking(call.read(response, None))
    assert isinstance(typed.value, RuntimeError) and typed.value.__cause__ is not None


def test_the_total_timeout_is_checked_between_reads():
    options = CallOptions(site=Site("https://chat.example"), timeout=Timeout(total=5))
    call = Call(RequestsTransport(), options)
    call.deadline = time.monotonic() - 1
    with pytest.raises(StreamTimeoutError, match=r"total timeout \(5 s\) ran out during the answer"):
        run_blocking(call.read(broken_response(RuntimeError("never read")), None))


# -- nonces and sessions --------------------------------------------------------------------------


def test_a_refused_nonce_is_replaced_through_start_session(mocked, waits):
    mocked.post(SUBMIT, status=403, json=wp_error("rest_cookie_invalid_nonce", 403))
    mocked.post(
        START_SESSION,
        json={"success": True, "sessionId": "s1", "restNonce": "n1"},
        headers={"Set-Cookie": "mwai_session_id=abc; Path=/; HttpOnly"},
    )
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    assert ask(waits, nonce="stale") == "Echo: hi"
    assert [call.request.url for call in mocked.calls] == [SUBMIT, START_SESSION, SUBMIT]
    retried = mocked.calls[2].request
    assert retried.headers["X-WP-Nonce"] == "n1"
    assert json.loads(retried.body)["session"] == "s1"
    assert "mwai_session_id=abc" in retried.headers["Cookie"]  # the site's session keeps cookies
    assert ask(waits) == "Echo: hi"  # the next call starts with the new nonce
    assert mocked.calls[3].request.headers["X-WP-Nonce"] == "n1"
    assert len(mocked.calls) == 4


def test_without_start_session_the_nonce_comes_from_the_page(mocked, waits):
    page = (
        "<html><body><div class='mwai-chatbot-container' data-params='{}' "
        """data-system='{"botId":"default","restNonce":"pagenonce","sessionId":"N/A"}'>"""
        "</div></body></html>"
    )
    mocked.post(SUBMIT, status=401, json=wp_error("rest_forbidden", 401))
    mocked.post(START_SESSION, status=404, json=wp_error("rest_no_route", 404))
    mocked.get(PAGE, body=page, content_type="text/html")
    mocked.post(SUBMIT, body=STREAM_BODY, content_type=SSE)
    assert ask(waits, referer=PAGE) == "Echo: hi"
    assert [call.request.method for call in mocked.calls] == ["POST", "POST", "GET", "POST"]
    assert mocked.calls[3].request.headers["X-WP-Nonce"] == "pagenonce"


def test_a_caller_without_a_loop_waits_for_another_threads_refresh():
    auth = SiteAuth()
    started, release = threading.Event(), threading.Event()
    results: List[Credentials] = []

    async def slow_fetch() -> Credentials:
        started.set()
        release.wait(5)
        return Credentials("fresh", "s1")

    async def never_fetch() -> Credentials:
        raise AssertionError("only one refresh may run")

    async def in_a_notebook() -> Credentials:  # a running loop in the waiting thread
        return run_blocking(auth.refresh(never_fetch, rejected=None))

    owner = threading.Thread(target=lambda: results.append(run_blocking(auth.refresh(slow_fetch, None))))
    owner.start()
    assert started.wait(5)
    waiters = [
        threading.Thread(target=lambda: results.append(run_blocking(auth.refresh(never_fetch, None)))),
        threading.Thread(target=lambda: results.append(asyncio.run(in_a_notebook()))),
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.1)
    release.set()
    for thread in (owner, *waiters):
        thread.join(5)
    assert results == [Credentials("fresh", "s1")] * 3


def test_waiting_for_another_refresh_is_bounded(monkeypatch):
    monkeypatch.setattr(_credentials, "REFRESH_WAIT_SECONDS", 0.1)
    auth = SiteAuth()
    started, release = threading.Event(), threading.Event()

    async def stuck_fetch() -> Credentials:
        started.set()
        release.wait(5)
        return Credentials("late")

    owner = threading.Thread(target=lambda: run_blocking(auth.refresh(stuck_fetch, None)))
    owner.start()
    try:
        assert started.wait(5)
        with pytest.raises(APITimeoutError, match="nonce request"):
            run_blocking(auth.refresh(stuck_fetch, None))
    finally:
        release.set()
        owner.join(5)


# -- the driver -----------------------------------------------------------------------------------


class _Suspend:
    def __await__(self) -> Iterator[str]:
        yield "a real future"


def test_a_coroutine_that_suspends_is_a_clear_error_and_still_cleans_up():
    cleaned: List[bool] = []

    async def waits_on_a_loop() -> None:
        try:
            await _Suspend()
        finally:
            cleaned.append(True)

    with pytest.raises(RuntimeError, match="suspended on 'a real future'.*only an event loop"):
        run_blocking(waits_on_a_loop())
    assert cleaned == [True]


def test_blocking_stream_closes_its_generator_early_and_once():
    closed: List[bool] = []

    async def numbers():
        try:
            for n in range(0, 10, 3):
                yield [n, n + 1, n + 2]
        finally:
            closed.append(True)

    stream = BlockingStream(numbers)
    with stream:
        assert [next(stream), next(stream), next(stream), next(stream)] == [0, 1, 2, 3]
    assert closed == [True] and list(stream) == []
    stream.close()
    assert closed == [True]


# -- real sockets ---------------------------------------------------------------------------------


def test_one_session_per_site_pools_connections_and_keeps_cookies():
    with serve_emulator("session") as site:
        assert opchatgpts.ask("first", url=site.url, transport="requests") == "Echo: first"
        assert opchatgpts.ask("second", url=site.url, transport="requests") == "Echo: second"
        session = requests_transport().session(site.url)
        assert session is requests_transport().session(site.url + "/another/path")
        assert "mwai_session_id" in session.cookies
        submit = [r for r in site.emulator.requests if r.path.endswith("/chats/submit")][-1]
        assert "mwai_session_id=" in submit.headers.get("Cookie", "")
        pools = session.get_adapter(site.url).poolmanager.pools
        connections = sum(pools[key].num_connections for key in pools.keys())
        requests_sent = sum(pools[key].num_requests for key in pools.keys())
    assert requests_sent == len(site.emulator.requests) >= 4  # submit, start_session, submit...
    assert connections == 1  # ...all on one kept-alive connection


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_credentials_never_appear_in_messages():
    port = _closed_port()
    no_retry = RetryPolicy(max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        opchatgpts.ask(
            "x", url=f"http://127.0.0.1:{port}", transport="requests", retry=no_retry,
            proxy=f"http://alice:s3cret@127.0.0.1:{port}", nonce="n0nce-value",
        )
    message = str(info.value)
    assert message.startswith(f"cannot reach http://127.0.0.1:{port}")
    assert "s3cret" not in message and "alice" not in message and "n0nce" not in message


class _TLSSite:
    """An HTTPS server with a certificate from a private CA (trustme)."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                self.rfile.read(int(self.headers["Content-Length"]))
                body = STREAM_BODY.encode()
                self.send_response(200)
                self.send_header("Content-Type", SSE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def __enter__(self) -> "_TLSSite":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


def test_tls_verification_on_by_default_off_on_request_or_by_your_own_context(waits):
    with _TLSSite() as site:
        with pytest.raises(TLSVerificationError, match="certificate verify failed"):
            ask(waits, url=site.url)
        assert waits == []  # never retried
        with pytest.warns(InsecureRequestWarning):  # urllib3's own warning, kept
            assert ask(waits, url=site.url, verify=False) == "Echo: hi"
        context = ssl.create_default_context(cadata=site.ca.cert_pem.bytes().decode())
        assert ask(waits, url=site.url, verify=context) == "Echo: hi"
        other = ssl.create_default_context()  # trusts the system CAs, not this site's CA
        with pytest.raises(TLSVerificationError):
            ask(waits, url=site.url, verify=other)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1  # requests' CA bundle stayed out of it


def test_no_thread_starts_and_the_loop_thread_stays_off():
    # A fresh interpreter: no other test has started the shared loop thread there.
    script = textwrap.dedent(
        """
        import threading
        import opchatgpts
        from opchatgpts import Opchatgpts
        from opchatgpts._sync import loop_thread
        from opchatgpts.testing import serve_emulator

        started = []
        real_start = threading.Thread.start

        def spy(self, *args, **kwargs):
            started.append(self.name)
            return real_start(self, *args, **kwargs)

        with serve_emulator("session") as site:
            before = set(threading.enumerate())
            threading.Thread.start = spy
            try:
                provider = Opchatgpts.from_page(site.page_url, transport="requests")
                during = []
                messages = [{"role": "user", "content": "one two three"}]
                for part in provider.create_completion(None, messages, transport="requests"):
                    during.append(set(threading.enumerate()))
                answer = opchatgpts.ask("again", url=site.url, transport="requests")
            finally:
                threading.Thread.start = real_start
            after = set(threading.enumerate())
        assert answer == "Echo: again", answer
        assert started == [], started
        assert len(during) == 4 and all(d == before for d in during), during
        assert after == before
        assert loop_thread._loop is None
        assert "opchatgpts-loop" not in [t.name for t in threading.enumerate()]
        print("ok", len(before))
        """
    )
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", script],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "2"]  # the main thread and the emulator's
    assert without_timing_notices(result.stderr) == ""


def test_a_context_is_never_silently_ignored(monkeypatch, waits):
    # requests before 2.32.2 does not ask the adapter for the pool key: fail, do not verify
    # with another trust store than the caller's.
    from requests.adapters import HTTPAdapter

    from opchatgpts._transports.requests import _Adapter

    monkeypatch.setattr(
        _Adapter, "build_connection_pool_key_attributes", HTTPAdapter.build_connection_pool_key_attributes
    )
    with pytest.raises(TypeError, match="requests>=2.32.2"):
        ask(waits, url=f"https://127.0.0.1:{_closed_port()}", verify=ssl.create_default_context())


class _StallingSite:
    """Sends the headers (``Connection: close``, chunked) and one event, then stalls until
    the client hangs up, which it records."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.hung_up = threading.Event()
        self.thread = threading.Thread(target=self._serve)

    def _serve(self) -> None:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            event = b'data: {"type":"live","data":"Echo:"}\n\n'
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(event), event)
            )
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            self.hung_up.set()

    def __enter__(self) -> "_StallingSite":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.thread.join(15)
        self.listener.close()


def test_close_from_another_thread_stops_a_read_blocked_in_the_consumer():
    with _StallingSite() as site:
        stream = Opchatgpts.create_completion(
            None, [{"role": "user", "content": "hi"}], url=site.url, transport="requests",
            timeout=Timeout(connect=2, read=30),
        )
        assert next(stream) == "Echo:"
        closer = threading.Timer(0.2, stream.close)
        closer.start()
        started = time.monotonic()
        try:
            rest = list(stream)  # blocked in a read until the close
        finally:
            closer.join()
        assert rest == [] and time.monotonic() - started < 5
        assert site.hung_up.wait(5)


def test_the_total_timeout_cuts_a_blocked_read():
    with _StallingSite() as site:
        started = time.monotonic()
        parts = []
        with pytest.raises(StreamTimeoutError):
            for part in Opchatgpts.create_completion(
                None, [{"role": "user", "content": "hi"}], url=site.url, transport="requests",
                timeout=Timeout(connect=2, read=30, total=0.5),
            ):
                parts.append(part)
        assert parts == ["Echo:"] and time.monotonic() - started < 3
        assert site.hung_up.wait(5)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_connections():
    script = textwrap.dedent(
        """
        import os, opchatgpts
        from opchatgpts.testing import serve_emulator
        requests_transport = lambda: opchatgpts._provider._default.get()._pool.transport("requests")
        with serve_emulator() as site:
            print(opchatgpts.ask("parent", url=site.url, transport="requests"), flush=True)
            pid = os.fork()
            if pid == 0:
                assert not requests_transport()._sessions  # nothing shared with the parent
                print(opchatgpts.ask("child", url=site.url, transport="requests"), flush=True)
                os._exit(0)
            assert os.waitpid(pid, 0)[1] == 0
            print(opchatgpts.ask("parent again", url=site.url, transport="requests"), flush=True)
            pools = requests_transport().session(site.url).get_adapter(site.url).poolmanager.pools
            print(sum(pools[key].num_connections for key in pools.keys()))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # The parent's kept-alive connection survived the child closing its copy.
    assert result.stdout.split("\n")[:4] == ["Echo: parent", "Echo: child", "Echo: parent again", "1"]


def test_a_requests_subclass_still_runs_async_calls_on_aiohttp():
    import asyncio

    from opchatgpts import Opchatgpts
    from opchatgpts.testing import serve_emulator

    class Blocking(Opchatgpts):
        transport = "requests"

    async def run(url: str) -> str:
        messages = [{"role": "user", "content": "async"}]
        return "".join([p async for p in Blocking.create_async_generator(None, messages, url=url)])

    with serve_emulator() as site:
        assert Blocking.call_options(url=site.url).transport == "requests"
        assert asyncio.run(run(site.url)) == "Echo: async"
