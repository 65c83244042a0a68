"""Safe defaults, tested: TLS verification, secrets kept out of logs and errors, redirects
that never carry credentials to another origin, and a configurable size cap."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import ssl
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import trustme
from faultserver import (
    SUBMIT_PATH,
    Conn,
    FaultServer,
    Script,
    echo_events,
    free_port,
    huge_line,
    live,
    redirect,
    reset_before_headers,
    respond,
    sequence,
    stall_before_headers,
    stream,
)
from leakcheck import assert_no_leaks

import opchatgpts
from opchatgpts import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    Opchatgpts,
    OpchatgptsError,
    ResponseTooLargeError,
    RetryPolicy,
    Timeout,
    TLSVerificationError,
)

MESSAGES = [{"role": "user", "content": "one two three"}]
ECHO = "Echo: one two three"
FAST = {"retry": RetryPolicy(max_retries=2, backoff=0.0), "timeout": Timeout(2, 2, 10)}


Outcome = Tuple[str, Optional[BaseException]]


def ask_sync(url: str, **kwargs: Any) -> Outcome:
    parts: List[str] = []
    try:
        for part in Opchatgpts.create_completion(None, MESSAGES, url=url, **kwargs):
            parts.append(part)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return "".join(parts), exc
    return "".join(parts), None


async def ask_async(url: str, **kwargs: Any) -> Outcome:
    parts: List[str] = []
    agen = Opchatgpts.create_async_generator(None, MESSAGES, url=url, **kwargs)
    try:
        async for part in agen:
            parts.append(part)
    except Exception as exc:  # noqa: BLE001
        return "".join(parts), exc
    finally:
        await agen.aclose()
    return "".join(parts), None


def ask_many(api: str, calls: List[Tuple[str, Dict[str, Any]]]) -> List[Outcome]:
    """Calls one after the other through the sync or the async API; the async ones share
    one event loop, and so one pooled session and cookie jar, as the sync ones do."""
    if api == "sync":
        return [ask_sync(url, **kwargs) for url, kwargs in calls]

    async def main() -> List[Outcome]:
        return [await ask_async(url, **kwargs) for url, kwargs in calls]

    return asyncio.run(main())


def ask(api: str, url: str, **kwargs: Any) -> Outcome:
    """One call through the sync or the async API: (the text received, the error)."""
    (outcome,) = ask_many(api, [(url, kwargs)])
    return outcome


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[FaultServer]:
    """An HTTPS site whose certificate comes from a CA the system does not trust."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FaultServer(stream(), ssl_context=context) as server:
        yield server


def test_tls_is_verified_by_default_and_never_retried(tls_server: FaultServer, api: str) -> None:
    with assert_no_leaks([tls_server]):
        text, error = ask(api, tls_server.url, **FAST)
    assert text == "" and type(error) is TLSVerificationError
    assert isinstance(error, APIConnectionError)
    assert tls_server.connections == 1 and tls_server.request_count == 0
    assert "certificate verify failed" in str(error)
    assert "verify=" in str(error)  # the message names the way out


def test_verify_false_is_the_opt_out(tls_server: FaultServer, api: str) -> None:
    with assert_no_leaks([tls_server]):
        assert ask(api, tls_server.url, verify=False, **FAST) == (ECHO, None)


def test_an_ssl_context_that_trusts_the_ca_works(
    tls_server: FaultServer, ca: trustme.CA, api: str
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with assert_no_leaks([tls_server]):
        assert ask(api, tls_server.url, verify=context, **FAST) == (ECHO, None)


def busy_after(script: Script, seconds: float) -> Script:
    """``script``, then a server loop too busy to answer anything for ``seconds``: the
    client's TLS close_notify goes unanswered that long."""

    async def busy(conn: Conn, attempt: int) -> None:
        await script(conn, attempt)
        time.sleep(seconds)  # blocks the server's loop on purpose

    return busy


@pytest.mark.parametrize("busy", [0.4, 3.0])
def test_asyncio_run_ends_with_every_tls_socket_shut(ca: trustme.CA, busy: float) -> None:
    """A TLS connection is still saying goodbye after aiohttp lets go of it: the SDK waits
    for that (up to a second), then aborts it, before the loop that owns it closes."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FaultServer(busy_after(stream(), busy), ssl_context=context) as server:
        with assert_no_leaks([server]):
            started = time.monotonic()
            assert ask("async", server.url, verify=False, **FAST) == (ECHO, None)
            waited = time.monotonic() - started
        assert waited < 2.5  # it never waits on the server for long


def test_verify_must_be_a_bool_or_a_context() -> None:
    with pytest.raises(TypeError):
        Opchatgpts.create_completion(None, MESSAGES, url="https://x.example", verify="no")


# -- secrets in logs, messages and reprs -----------------------------------------------------


def secret_forms(secret: str) -> List[str]:
    """A secret as it could leak: as is, and base64-encoded in a Basic header."""
    return [secret, base64.b64encode(f"user:{secret}".encode()).decode()]


def error_texts(error: Optional[BaseException]) -> str:
    """Everything an error shows: str and repr of it and of each exception chained to it,
    their attributes, and the printed traceback."""
    texts = []
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [str(error), repr(error), repr(vars(error)) if hasattr(error, "__dict__") else ""]
        texts.append(repr(getattr(error, "request_info", "")))
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def assert_never_shown(secret: str, caplog: pytest.LogCaptureFixture, *shown: Any) -> None:
    everything = "\n".join([caplog.text, *map(str, shown)])
    for form in secret_forms(secret):
        assert form not in everything


async def nonce_site(conn: Conn, attempt: int) -> None:
    """A site that wants another nonce: submit is refused, start_session does not exist,
    and the page shows no chatbot (after a 503 on the first try)."""
    target = conn.server.requests[-1].target
    if target.endswith(SUBMIT_PATH):
        if attempt == 1:
            await conn.respond(503, "busy")
        else:
            body = {"code": "rest_cookie_invalid_nonce", "message": "Cookie check failed",
                    "data": {"status": 403}}
            await conn.respond(403, body)
    elif "start_session" in target:
        await conn.respond(404, {"code": "rest_no_route", "message": "No route", "data": {}})
    else:
        await conn.respond(200, "<html><title>Chat</title></html>", content_type="text/html")


async def garbage_status_line(conn: Conn, attempt: int) -> None:
    await conn.write(b"HTTP/1.1 abc Nonsense\r\n\r\n")


@pytest.mark.parametrize(
    "script, expected",
    [
        (nonce_site, AuthenticationError),
        (garbage_status_line, APIConnectionError),
        (sequence(respond(502, "bad gateway"), redirect("/moved"), stream()), None),
    ],
    ids=["nonce refused", "garbage answer", "retry and redirect"],
)
def test_the_nonce_never_shows(
    script: Any, expected: Any, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    nonce = secrets.token_hex(12)
    caplog.set_level(logging.DEBUG)
    with FaultServer(script) as server, assert_no_leaks([server]):
        text, error = ask(api, server.url, nonce=nonce, **FAST)
        assert server.requests[0].headers["x-wp-nonce"] == nonce  # it was sent, to the site
    assert (type(error) if error else None) is expected
    options = Opchatgpts.call_options(url=server.url, nonce=nonce)
    assert_never_shown(nonce, caplog, error_texts(error), repr(options))


def proxy_behaviours() -> List[Any]:
    return [
        pytest.param("http", stream(), None, id="http through the proxy"),
        pytest.param("http", respond(407, "who are you"), OpchatgptsError, id="407"),
        pytest.param(
            "https", respond(407, "who are you", headers={"Proxy-Authenticate": "Basic"}),
            APIConnectionError, id="CONNECT refused with 407",
        ),
        pytest.param("https", reset_before_headers, APIConnectionError, id="proxy resets"),
        pytest.param("https", stall_before_headers, APITimeoutError, id="proxy stalls"),
        pytest.param("http", garbage_status_line, APIConnectionError, id="garbage answer"),
        pytest.param("https", None, APIConnectionError, id="proxy refuses connections"),
    ]


@pytest.mark.parametrize("scheme, script, expected", proxy_behaviours())
def test_proxy_credentials_never_show(
    scheme: str, script: Any, expected: Any, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = secrets.token_hex(12)
    caplog.set_level(logging.DEBUG)
    site = f"{scheme}://chat.invalid"
    with FaultServer(script or stream()) as proxy, assert_no_leaks([proxy]):
        port = proxy.port if script else free_port()
        proxy_url = f"http://user:{password}@127.0.0.1:{port}"
        options = {"timeout": Timeout(connect=0.5, read=0.5, total=10)}
        text, error = ask(api, site, proxy=proxy_url, retry=RetryPolicy(0), **options)
    if expected is None:
        assert error is None and text == ECHO
    else:
        assert isinstance(error, expected)
    if script:  # the credentials went where they belong: to the proxy
        auth = proxy.requests[0].headers["proxy-authorization"]
        assert auth == "Basic " + secret_forms(password)[1]
    call_options = Opchatgpts.call_options(url=site, proxy=proxy_url)
    printed = "".join(traceback.format_exception(type(error), error, error.__traceback__)) if error else ""
    assert_never_shown(password, caplog, error_texts(error), repr(call_options), printed)


# -- redirects -------------------------------------------------------------------------------


@pytest.fixture
def origins() -> Iterator[Tuple[FaultServer, FaultServer]]:
    """Two origins: ``b`` answers; ``a`` sets a cookie, then redirects to ``b``."""
    with FaultServer(stream()) as b:
        cookie = {"Set-Cookie": "mwai_session_id=" + secrets.token_hex(8) + "; Path=/"}
        with FaultServer(
            sequence(respond(200, b"", headers=cookie), redirect(b.submit_url))
        ) as a:
            yield a, b


def test_redirects_never_carry_credentials_to_another_origin(
    origins: Tuple[FaultServer, FaultServer], api: str
) -> None:
    a, b = origins
    nonce = secrets.token_hex(8)
    kwargs = dict(nonce=nonce, referer=a.url + "/chat/", headers={"Authorization": "Bearer x"})
    # The first answer sets the site's cookie (an empty 200: its error does not matter);
    # the second redirects to the other origin; then b is called directly.
    first, redirected, direct = ask_many(
        api, [(a.url, {**FAST, **kwargs}), (a.url, {**FAST, **kwargs}), (b.url, FAST)]
    )
    assert redirected == direct == (ECHO, None)
    sent_to_a = a.requests[1].headers
    assert sent_to_a["x-wp-nonce"] == nonce and sent_to_a["cookie"].startswith("mwai_session_id=")
    via_redirect, called_directly = b.requests
    for name in ("x-wp-nonce", "cookie", "authorization", "origin", "referer"):
        assert name not in via_redirect.headers, name
    # The cookie belongs to a's origin only (same host, another port).
    assert "cookie" not in called_directly.headers


def test_same_origin_redirects_keep_the_nonce(api: str) -> None:
    nonce = secrets.token_hex(8)
    with FaultServer(sequence(redirect("/blog" + SUBMIT_PATH), stream())) as site:
        assert ask(api, site.url, nonce=nonce, **FAST) == (ECHO, None)
    first, second = site.requests
    assert second.target == "/blog" + SUBMIT_PATH
    assert first.headers["x-wp-nonce"] == second.headers["x-wp-nonce"] == nonce


# -- size limits -----------------------------------------------------------------------------


def test_the_line_size_cap_is_configurable(api: str) -> None:
    script = huge_line(100 * 1024, [live("Echo:")])
    with FaultServer(script) as site, assert_no_leaks([site]):
        text, error = ask(api, site.url, max_line_bytes=64 * 1024, **FAST)
    assert text == "Echo:" and type(error) is ResponseTooLargeError
    assert "max_line_bytes=65536" in str(error)


def test_the_default_cap_lets_long_lines_through(api: str) -> None:
    long_text = "x" * (1024 * 1024)
    with FaultServer(stream(echo_events(["Echo:", long_text]))) as site:
        assert ask(api, site.url, **FAST) == ("Echo:" + long_text, None)


def test_the_cap_bounds_a_json_answer_too(api: str) -> None:
    body = {"success": True, "reply": "x" * 10_000}
    with FaultServer(respond(200, body)) as site, assert_no_leaks([site]):
        text, error = ask(api, site.url, stream=False, max_line_bytes=4096, **FAST)
    assert text == "" and type(error) is ResponseTooLargeError


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "big"])
def test_a_bad_cap_is_refused_before_any_io(value: Any) -> None:
    with FaultServer(stream()) as site:
        with pytest.raises((TypeError, ValueError)):
            opchatgpts.ask("hi", url=site.url, max_line_bytes=value)
        assert site.connections == 0


# -- what is sent ----------------------------------------------------------------------------


def test_only_role_and_content_of_the_conversation_leave_the_process() -> None:
    history = [
        {"role": "user", "content": "q1", "name": "secret-name", "id": 7},
        {"role": "assistant", "content": "a1", "metadata": {"token": "t"}},
        {"role": "user", "content": "one two three"},
    ]
    with FaultServer(stream()) as site:
        assert opchatgpts.ask(history, url=site.url) == ECHO
    body = site.requests[0].json()
    assert body["messages"] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
    ]
    assert body["newMessage"] == "one two three"


def test_the_readme_says_what_is_sent() -> None:
    readme = (Path(__file__).parent.parent / "README.rst").read_text(encoding="utf-8")
    assert "the whole conversation" in readme
