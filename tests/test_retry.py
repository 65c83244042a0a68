"""Request shape, retry sequences and error mapping on the async path, with aioresponses."""

from __future__ import annotations

import json
from typing import List

import pytest
from aioresponses import aioresponses
from aioresponses.core import CallbackResult

import opchatgpts
from opchatgpts import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    Opchatgpts,
    PermissionDeniedError,
    QueryRejectedError,
    RateLimitError,
    RetryPolicy,
)
from opchatgpts._protocol.response import parse_retry_after

SITE = "https://chat.example"
SUBMIT = SITE + "/wp-json/mwai-ui/v1/chats/submit"
STREAM_BODY = (
    'data: {"type":"live","data":"Echo:"}\n\n'
    'data: {"type":"live","data":" hi"}\n\n'
    'data: {"type":"end","data":"{\\"success\\":true,\\"reply\\":\\"Echo: hi\\"}"}\n\n'
)
REJECTED = {"success": False, "message": "Sorry, your query has been rejected."}


def wp_error(code: str, message: str, status: int) -> dict:
    """WordPress core's error body."""
    return {"code": code, "message": message, "data": {"status": status}}



class Sleeps:
    """A fake sleep for the retry policy, recording each wait."""

    def __init__(self) -> None:
        self.waits: List[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def mocked():
    with aioresponses() as m:
        yield m


async def ask(sleeps: Sleeps, **kwargs) -> str:
    kwargs.setdefault("retry", RetryPolicy(max_retries=kwargs.pop("max_retries", 2), sleep=sleeps))
    return await opchatgpts.ask_async("hi", url=SITE, **kwargs)


def submits(mocked) -> list:
    """The calls to chats/submit (or where it redirected), in order."""
    return [
        call for (method, url), calls in mocked.requests.items() for call in calls if "submit" in str(url)
    ]


async def test_request_shape(mocked, sleeps, monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)  # the environment's CA bundle: tested elsewhere
    mocked.post(SUBMIT, status=200, body=STREAM_BODY)
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "hi"},
    ]
    agen = Opchatgpts.create_async_generator(
        "gpt-3.5-turbo", messages, url=SITE, chat_id="abcdefghij", bot_id="b", context_id=7
    )
    assert [t async for t in agen] == ["Echo:", " hi"]
    (call,) = submits(mocked)
    body = json.loads(call.kwargs["data"])
    assert body == {
        "botId": "b",
        "customId": None,
        "session": "N/A",
        "chatId": "abcdefghij",
        "contextId": 7,
        "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}],
        "newMessage": "hi",
        "stream": True,
    }
    headers = call.kwargs["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "text/event-stream"
    assert call.kwargs["ssl"] is True  # TLS verification stays on by default


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
async def test_retryable_statuses_are_retried_then_succeed(mocked, sleeps, status):
    mocked.post(SUBMIT, status=status, body="busy")
    mocked.post(SUBMIT, status=status, body="busy")
    mocked.post(SUBMIT, status=200, body=STREAM_BODY)
    assert await ask(sleeps) == "Echo: hi"
    assert len(submits(mocked)) == 3
    assert len(sleeps.waits) == 2


async def test_backoff_grows_with_jitter(mocked, sleeps):
    for _ in range(4):
        mocked.post(SUBMIT, status=503)
    policy = RetryPolicy(max_retries=3, backoff=1.0, backoff_max=3.0, jitter=0.5, sleep=sleeps)
    with pytest.raises(InternalServerError):
        await ask(sleeps, retry=policy)
    first, second, third = sleeps.waits
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0 and 1.5 <= third <= 3.0


async def test_retries_are_bounded_by_max_retries(mocked, sleeps):
    for _ in range(5):
        mocked.post(SUBMIT, status=502, body="<html><title>502 Bad Gateway</title></html>")
    with pytest.raises(InternalServerError, match="502 Bad Gateway") as info:
        await ask(sleeps, max_retries=1)
    assert info.value.status_code == 502
    assert len(submits(mocked)) == 2


async def test_retry_after_is_honoured(mocked, sleeps):
    mocked.post(SUBMIT, status=429, headers={"Retry-After": "7"})
    mocked.post(SUBMIT, status=200, body=STREAM_BODY)
    assert await ask(sleeps) == "Echo: hi"
    assert sleeps.waits == [7.0]


async def test_retry_after_above_the_cap_is_not_waited_for(mocked, sleeps):
    mocked.post(SUBMIT, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitError) as info:
        await ask(sleeps)
    assert info.value.retry_after == 3600
    assert sleeps.waits == [] and len(submits(mocked)) == 1


async def test_a_500_rejection_is_never_retried(mocked, sleeps):
    mocked.post(SUBMIT, status=500, payload={"success": False, "message": "You have reached the limit."})
    with pytest.raises(QueryRejectedError, match="reached the limit") as info:
        await ask(sleeps)
    assert info.value.status_code == 500
    assert len(submits(mocked)) == 1 and sleeps.waits == []


async def test_connection_errors_are_retried(mocked, sleeps):
    mocked.post(SUBMIT, exception=__import__("aiohttp").ClientConnectionError("refused"))
    mocked.post(SUBMIT, status=200, body=STREAM_BODY)
    assert await ask(sleeps) == "Echo: hi"
    assert len(sleeps.waits) == 1


async def test_connection_errors_exhaust_into_api_connection_error(mocked, sleeps):
    for _ in range(3):
        mocked.post(SUBMIT, exception=__import__("aiohttp").ClientConnectionError("refused"))
    with pytest.raises(APIConnectionError, match="cannot reach https://chat.example") as info:
        await ask(sleeps)
    assert info.value.__cause__ is not None
    assert len(sleeps.waits) == 2


async def test_max_retries_zero_means_one_attempt(mocked, sleeps):
    mocked.post(SUBMIT, status=503)
    with pytest.raises(InternalServerError):
        await ask(sleeps, max_retries=0)
    assert len(submits(mocked)) == 1


@pytest.mark.parametrize(
    "status, body, error, code",
    [
        (400, wp_error("rest_invalid_json", "Invalid JSON body passed.", 400), BadRequestError,
         "rest_invalid_json"),
        (401, wp_error("rest_forbidden", "Sorry, you are not allowed to do that.", 401),
         AuthenticationError, "rest_forbidden"),
        (403, wp_error("rest_cookie_invalid_nonce", "Cookie check failed", 403), AuthenticationError,
         "rest_cookie_invalid_nonce"),
        (403, REJECTED, QueryRejectedError, None),
        (404, wp_error("rest_no_route", "No route was found.", 404), NotFoundError, "rest_no_route"),
        (500, {"success": False, "message": "From OpenAI: boom"}, QueryRejectedError, None),
        (500, "Fatal error", InternalServerError, None),
    ],
)
async def test_error_mapping(mocked, sleeps, status, body, error, code):
    # A nonce refusal makes the client look for a nonce; this site has none to give.
    no_route = wp_error("rest_no_route", "No route", 404)
    mocked.post(SITE + "/wp-json/mwai/v1/start_session", status=404, payload=no_route)
    for page in (SITE + "/", SITE + "/chatgpt-free-use/"):
        mocked.get(page, status=200, body="<html><body>no chatbot</body></html>", content_type="text/html")
    if isinstance(body, dict):
        mocked.post(SUBMIT, status=status, payload=body)
    else:
        mocked.post(SUBMIT, status=status, body=body)
    with pytest.raises(error) as info:
        await ask(sleeps)
    assert info.value.status_code == status and info.value.code == code
    assert isinstance(info.value, opchatgpts.OpchatgptsError)
    assert len(submits(mocked)) == 1
    if error is AuthenticationError:
        assert "start_session answered HTTP 404" in str(info.value)
        assert "shows no chatbot" in str(info.value)


async def test_firewall_html_403_is_permission_denied(mocked, sleeps):
    mocked.post(
        SUBMIT, status=403, body="<html><head><title>Access denied | Cloudflare</title></head></html>",
        content_type="text/html",
    )
    with pytest.raises(PermissionDeniedError, match="Access denied"):
        await ask(sleeps)


async def test_same_origin_redirect_is_followed_with_the_nonce(mocked, sleeps):
    moved = "https://chat.example/blog/wp-json/mwai-ui/v1/chats/submit"
    mocked.post(SUBMIT, status=308, headers={"Location": moved})
    mocked.post(moved, status=200, body=STREAM_BODY)
    assert await ask(sleeps, nonce="n0nce") == "Echo: hi"
    (_, second) = submits(mocked)
    assert second.kwargs["headers"]["X-WP-Nonce"] == "n0nce"


async def test_cross_origin_redirect_drops_the_nonce(mocked, sleeps):
    elsewhere = "https://other.example/submit"
    mocked.post(SUBMIT, status=307, headers={"Location": elsewhere})
    mocked.post(elsewhere, status=200, body=STREAM_BODY)
    assert await ask(sleeps, nonce="n0nce") == "Echo: hi"
    (_, second) = submits(mocked)
    assert "X-WP-Nonce" not in second.kwargs["headers"]


def test_parse_retry_after_forms():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("  0 ") == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


async def test_callback_sees_each_retry(mocked, sleeps):
    seen = []

    def respond(url, **kwargs):
        seen.append(kwargs["headers"].get("Accept"))
        if len(seen) < 2:
            return CallbackResult(status=503)
        return CallbackResult(status=200, body=STREAM_BODY)

    mocked.post(SUBMIT, callback=respond, repeat=True)
    assert await ask(sleeps) == "Echo: hi"
    assert seen == ["text/event-stream", "text/event-stream"]
