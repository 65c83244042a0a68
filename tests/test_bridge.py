"""The real ``openai`` client, blocking and async, through the bridge in front of the emulator.

Every generation of the plugin (open, nonce, session) stands behind the bridge in turn. The
emulator and the bridge each run on a loop of their own in a background thread, so that the
blocking ``openai.OpenAI`` and the test's own loop (for ``AsyncOpenAI``) can both call them.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import AsyncIterator, Iterator, List

import openai
import pytest

from opchatgpts.emulator import Faults
from opchatgpts.testing import RunningBridge, RunningEmulator, serve_bridge, serve_emulator

GENERATIONS = ("open", "nonce", "session")
MODEL = "gpt-4o-mini"  # any name: the bridge echoes it


@pytest.fixture(params=GENERATIONS)
def site(request: pytest.FixtureRequest) -> Iterator[RunningEmulator]:
    with serve_emulator(request.param) as running:
        yield running


@pytest.fixture
def emulator_site() -> Iterator[RunningEmulator]:
    """One generation, for the tests that are about the bridge rather than the plugin."""
    with serve_emulator("session") as running:
        yield running


@pytest.fixture
def bridge(site: RunningEmulator) -> Iterator[RunningBridge]:
    with serve_bridge(site.url) as running:
        yield running


@pytest.fixture
def oai(bridge: RunningBridge) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=bridge.base_url, api_key="local", max_retries=0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def aoai(bridge: RunningBridge) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=bridge.base_url, api_key="local", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


def user(text: str) -> List[dict]:
    return [{"role": "user", "content": text}]


def submits(site: RunningEmulator) -> List[dict]:
    """The chat requests the site let in (the nonce and session generations first refuse the
    one without a nonce; the SDK then gets one and sends it again)."""
    emulator = site.emulator
    return [
        r.json()
        for r in emulator.requests
        if r.path.endswith("/chats/submit") and (emulator.generation == "open" or "X-WP-Nonce" in r.headers)
    ]


# -- answers ----------------------------------------------------------------------------------


def test_sync_whole_answer(oai, site):
    answer = oai.chat.completions.create(model=MODEL, messages=user("What is two plus two"))
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == MODEL
    assert isinstance(answer.created, int) and abs(answer.created - time.time()) < 60
    (choice,) = answer.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: What is two plus two"
    assert choice.finish_reason == "stop"
    # The emulator counts words: the bot's 11 instruction words plus the message's 5; 6 deltas.
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (16, 6)
    assert answer.usage.total_tokens == 22
    (sent,) = submits(site)
    assert (sent["messages"], sent["newMessage"]) == ([], "What is two plus two")


def test_sync_stream(oai):
    stream = oai.chat.completions.create(model=MODEL, messages=user("hello there world"), stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert texts == ["Echo:", " hello", " there", " world"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_sync_stream_include_usage(oai):
    stream = oai.chat.completions.create(
        model=MODEL, messages=user("count me"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (13, 3, 16)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {last.id}


def test_sync_history_goes_as_the_plugin_expects(oai, site):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two"},
        {"role": "assistant", "content": [{"type": "text", "text": "4"}]},
        {"role": "developer", "content": "Answer in English."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "And three"}, {"type": "text", "text": "plus three"}],
        },
    ]
    answer = oai.chat.completions.create(model=MODEL, messages=messages, temperature=0.2, max_tokens=5)
    assert answer.choices[0].message.content == "Echo: And three\nplus three"
    (sent,) = submits(site)
    assert sent["newMessage"] == "And three\nplus three"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two"},
        {"role": "assistant", "content": "4"},
        {"role": "system", "content": "Answer in English."},
    ]
    # Ignored parameters are not passed on to the plugin.
    assert "temperature" not in sent and "max_tokens" not in sent and "maxTokens" not in sent


async def test_async_whole_answer(aoai):
    answer = await aoai.chat.completions.create(model=MODEL, messages=user("Hi from asyncio"))
    assert answer.choices[0].message.content == "Echo: Hi from asyncio"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 4


async def test_async_stream_with_usage(aoai):
    stream = await aoai.chat.completions.create(
        model=MODEL, messages=user("stream to me"), stream=True, stream_options={"include_usage": True}
    )
    texts = []
    usage = None
    async for chunk in stream:
        if chunk.choices:
            texts.append(chunk.choices[0].delta.content or "")
        else:
            usage = chunk.usage
    assert "".join(texts) == "Echo: stream to me"
    assert usage is not None and usage.completion_tokens == 4


async def test_async_history(aoai, site):
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second"},
    ]
    answer = await aoai.chat.completions.create(model=MODEL, messages=messages)
    assert answer.choices[0].message.content == "Echo: second"
    (sent,) = submits(site)
    assert sent["messages"] == messages[:2] and sent["newMessage"] == "second"


async def test_twenty_concurrent_async_streams(aoai, site):
    async def one(i: int) -> str:
        stream = await aoai.chat.completions.create(
            model=MODEL, messages=user(f"stream number {i} of twenty"), stream=True
        )
        parts = []
        async for chunk in stream:
            parts.append(chunk.choices[0].delta.content or "")
        return "".join(parts)

    site.emulator.delta_delay = 0.02  # so that the streams overlap
    answers = await asyncio.gather(*(one(i) for i in range(20)))
    assert answers == [f"Echo: stream number {i} of twenty" for i in range(20)]
    assert len(submits(site)) == 20


def test_models(oai, bridge):
    models = list(oai.models.list())
    assert [m.id for m in models] == ["default"]
    assert models[0].object == "model"
    assert oai.models.retrieve("default").id == "default"
    with pytest.raises(openai.NotFoundError) as caught:
        oai.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream_stream", [True, False], ids=["upstream-streamed", "upstream-one-shot"])
def test_upstream_error_not_streamed(emulator_site, upstream_stream):
    with serve_bridge(emulator_site.url, stream=upstream_stream) as bridge:
        # The default retries: the bridge tells the client that trying again will not help.
        with openai.OpenAI(base_url=bridge.base_url, api_key="local") as oai:
            with pytest.raises(openai.APIError) as caught:
                oai.chat.completions.create(model=MODEL, messages=user("please FAIL_UPSTREAM now"))
    error = caught.value
    assert isinstance(error, openai.APIStatusError) and error.status_code == 502
    assert "fake upstream: FAIL_UPSTREAM" in error.message
    assert error.type == "upstream_error"
    assert error.code in ("server_reported_error", "query_rejected_error")
    assert error.response.headers["x-should-retry"] == "false"
    assert len(submits(emulator_site)) == 1


def test_upstream_error_streamed_before_any_text(oai):
    with pytest.raises(openai.APIError) as caught:
        for _ in oai.chat.completions.create(model=MODEL, messages=user("FAIL_UPSTREAM"), stream=True):
            pass
    assert isinstance(caught.value, openai.APIStatusError) and caught.value.status_code == 502
    assert "FAIL_UPSTREAM" in caught.value.message


async def test_upstream_error_streamed_async(aoai):
    with pytest.raises(openai.APIError) as caught:
        stream = await aoai.chat.completions.create(model=MODEL, messages=user("FAIL_UPSTREAM"), stream=True)
        async for _ in stream:
            pass
    assert "FAIL_UPSTREAM" in caught.value.message


def test_cut_mid_answer_is_an_exception_after_the_partial_text(oai):
    texts = []
    with pytest.raises(openai.APIError) as caught:
        stream = oai.chat.completions.create(
            model=MODEL, messages=user("one two FAIL_MIDSTREAM"), stream=True
        )
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content)
    assert texts == ["", "Echo:", " one"]  # the role chunk, then the two words sent before the cut
    assert "cURL error 18" in caught.value.message
    assert caught.value.body == {
        "message": caught.value.message,
        "type": "upstream_error",
        "param": None,
        "code": "server_reported_error",
    }


async def test_cut_mid_answer_async(aoai):
    texts = []
    with pytest.raises(openai.APIError, match="cURL error 18"):
        stream = await aoai.chat.completions.create(
            model=MODEL, messages=user("a b FAIL_MIDSTREAM"), stream=True
        )
        async for chunk in stream:
            texts.append(chunk.choices[0].delta.content)
    assert "".join(texts) == "Echo: a"


def test_cut_mid_answer_not_streamed(oai):
    with pytest.raises(openai.APIStatusError, match="cURL error 18") as caught:
        oai.chat.completions.create(model=MODEL, messages=user("a b FAIL_MIDSTREAM"))
    assert caught.value.status_code == 502


@pytest.mark.parametrize(
    "messages, extra, param",
    [
        ([], {}, "messages"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], {}, "messages"),
        ([{"role": "user", "content": "   "}], {}, "messages"),
        (user("hi"), {"n": 2}, "n"),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]}],
            {},
            "messages[0].content[0].type",
        ),
        ([{"role": "tool", "content": "42", "tool_call_id": "call_1"}, *user("hi")], {}, "messages[0].role"),
        (user("hi"), {"tool_choice": "required", "tools": []}, "tool_choice"),
    ],
    ids=["empty", "ends-with-assistant", "blank", "n=2", "audio", "tool-message", "tool-required"],
)
def test_bad_requests(oai, site, messages, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=MODEL, messages=messages, **extra)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == param
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert submits(site) == []


#: A 1x1 PNG.
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_an_image_part_goes_to_the_site_as_an_attachment(oai, site):
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this"}, image]}]
    answer = oai.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
    # The stand-in model describes what it got (1.9.x labels every image image/jpeg).
    label = "image/jpeg" if site.emulator.generation == "open" else "image/png"
    assert answer == f"Echo: what is this [image {label} 70 bytes]"


def test_bad_request_streamed(oai):
    with pytest.raises(openai.BadRequestError, match="last message must be the user's turn"):
        oai.chat.completions.create(
            model=MODEL, messages=[{"role": "assistant", "content": "hi"}], stream=True
        )


def test_site_unreachable_is_502():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once it is closed
    with serve_bridge(f"http://127.0.0.1:{port}", max_retries=0) as bridge:
        with openai.OpenAI(base_url=bridge.base_url, api_key="local", max_retries=0) as oai:
            with pytest.raises(openai.InternalServerError) as caught:
                oai.chat.completions.create(model=MODEL, messages=user("hello"))
    assert caught.value.status_code == 502
    assert caught.value.code == "api_connection_error"


def test_site_timeout_is_504(emulator_site):
    emulator_site.emulator.faults = Faults(delay=3.0)
    with serve_bridge(emulator_site.url, timeout=0.3, max_retries=0) as bridge:
        with openai.OpenAI(base_url=bridge.base_url, api_key="local", max_retries=0) as oai:
            with pytest.raises(openai.APIStatusError) as caught:
                oai.chat.completions.create(model=MODEL, messages=user("hello"), stream=True)
    assert caught.value.status_code == 504
    assert caught.value.code == "api_timeout_error"


def test_rate_limit_is_429_with_retry_after(emulator_site):
    emulator_site.emulator.faults = Faults(
        status=429, retry_after="7", body="slow down", content_type="text/plain"
    )
    with serve_bridge(emulator_site.url, max_retries=0) as bridge:
        with openai.OpenAI(base_url=bridge.base_url, api_key="local", max_retries=0) as oai:
            with pytest.raises(openai.RateLimitError) as caught:
                oai.chat.completions.create(model=MODEL, messages=user("hello"))
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.type == "rate_limit_error"


def test_site_refusal_is_502_not_the_callers_fault(emulator_site):
    emulator_site.emulator.faults = Faults(
        status=403, body="<html><title>Blocked by the firewall</title></html>", content_type="text/html"
    )
    with serve_bridge(emulator_site.url) as bridge:
        with openai.OpenAI(base_url=bridge.base_url, api_key="local", max_retries=0) as oai:
            with pytest.raises(openai.InternalServerError) as caught:
                oai.chat.completions.create(model=MODEL, messages=user("hello"))
    assert caught.value.status_code == 502
    assert caught.value.code == "permission_denied_error"
    assert "Blocked by the firewall" in caught.value.message


# -- the API key ------------------------------------------------------------------------------


def test_api_key(emulator_site):
    with serve_bridge(emulator_site.url, api_key="s3cret") as bridge:
        with openai.OpenAI(base_url=bridge.base_url, api_key="wrong", max_retries=0) as oai:
            with pytest.raises(openai.AuthenticationError) as caught:
                oai.chat.completions.create(model=MODEL, messages=user("hello"))
            assert caught.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                oai.models.list()
        with openai.OpenAI(base_url=bridge.base_url, api_key="s3cret", max_retries=0) as oai:
            answer = oai.chat.completions.create(model=MODEL, messages=user("hello"))
            assert answer.choices[0].message.content == "Echo: hello"
    assert len(submits(emulator_site)) == 1  # the refused call never reached the site


async def test_api_key_async(emulator_site):
    with serve_bridge(emulator_site.url, api_key="s3cret") as bridge:
        async with openai.AsyncOpenAI(base_url=bridge.base_url, api_key="s3cre", max_retries=0) as oai:
            with pytest.raises(openai.AuthenticationError):
                await oai.chat.completions.create(model=MODEL, messages=user("hello"), stream=True)


# -- a caller that leaves ---------------------------------------------------------------------


def wait_for(condition, timeout: float) -> float:
    """Seconds until ``condition()`` is true (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - start


async def test_disconnecting_async_client_closes_the_upstream_call(emulator_site):
    emulator = emulator_site.emulator
    with serve_bridge(emulator_site.url) as bridge:
        async with openai.AsyncOpenAI(base_url=bridge.base_url, api_key="local", max_retries=0) as oai:
            # SLOW: one word every half second, 4 s in all.
            stream = await oai.chat.completions.create(
                model=MODEL, messages=user("SLOW one two three four five six seven"), stream=True
            )
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    break
            await stream.close()
            elapsed = await asyncio.to_thread(wait_for, lambda: emulator.disconnects == 1, 2.0)
    assert elapsed < 1.0
    assert emulator.completed_streams == 0


def test_disconnecting_sync_client_before_the_first_word(emulator_site):
    emulator = emulator_site.emulator
    with serve_bridge(emulator_site.url) as bridge:
        with openai.OpenAI(base_url=bridge.base_url, api_key="local", max_retries=0, timeout=0.3) as oai:
            with pytest.raises(openai.APITimeoutError):
                oai.chat.completions.create(model=MODEL, messages=user("SLOW one two three four five"))
        wait_for(lambda: emulator.disconnects == 1, 2.0)
    assert emulator.completed_streams == 0
