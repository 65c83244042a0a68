"""Every server generation, every public entry point, with no nonce given by the caller."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import opchatgpts
from opchatgpts import AuthenticationError, Conversation, DiscoveryError, Opchatgpts
from opchatgpts.emulator import Faults
from opchatgpts.testing import RunningEmulator, serve_emulator

GENERATIONS = ["open", "nonce", "session"]


def site_kwargs(site: RunningEmulator) -> Dict[str, Any]:
    # A 2.0-2.4.3 site prints its nonce only in the chatbot page: the client needs to know
    # which page that is (the Referer the browser would send).
    return {"url": site.url, "referer": site.page_url}


def paths(site: RunningEmulator, suffix: str) -> List[Any]:
    return [r for r in site.emulator.requests if r.path.endswith(suffix)]


def submits(site: RunningEmulator) -> List[Any]:
    return paths(site, "/chats/submit")


@pytest.fixture(params=GENERATIONS)
def site(request: pytest.FixtureRequest):
    with serve_emulator(request.param) as running:
        yield running


def test_ask(site):
    assert opchatgpts.ask("hello big world", **site_kwargs(site)) == "Echo: hello big world"


def test_sync_iterator(site):
    messages = [{"role": "user", "content": "one two"}]
    parts = list(Opchatgpts.create_completion(None, messages, **site_kwargs(site)))
    assert parts == ["Echo:", " one", " two"]


def test_async_generator(site):
    async def run() -> List[str]:
        messages = [{"role": "user", "content": "three four"}]
        agen = Opchatgpts.create_async_generator(None, messages, **site_kwargs(site))
        return [part async for part in agen]

    assert asyncio.run(run()) == ["Echo:", " three", " four"]


def test_conversation_of_three_turns(site):
    conversation = Opchatgpts.conversation(**site_kwargs(site))
    for turn in ("first", "second", "third"):
        assert "".join(conversation.send(turn)) == f"Echo: {turn}"
    assert conversation.messages == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "Echo: second"},
        {"role": "user", "content": "third"},
        {"role": "assistant", "content": "Echo: third"},
    ]
    bodies = [r.json() for r in submits(site)]
    answered = [b for b in bodies if b["newMessage"] == "third"]
    assert answered[-1]["messages"] == conversation.messages[:4]
    assert len({b["chatId"] for b in bodies}) == 1


def test_async_conversation(site):
    async def run() -> List[str]:
        conversation = Opchatgpts.conversation(**site_kwargs(site))
        answers = [await conversation.ask_async("a"), await conversation.ask_async("b")]
        assert len(conversation.messages) == 4
        return answers

    assert asyncio.run(run()) == ["Echo: a", "Echo: b"]


def test_from_page(site):
    provider = Opchatgpts.from_page(site.page_url)
    assert issubclass(provider, Opchatgpts)
    assert provider.url == site.url
    assert provider.chatbot is not None and provider.chatbot.bot_id == "default"
    assert provider.call_options().site.rest_root == site.rest_url
    assert provider.call_options().site.context_id == 4
    assert opchatgpts.ask("via the page", provider=provider) == "Echo: via the page"
    assert "".join(provider.conversation().send("conv")) == "Echo: conv"


def test_from_page_async(site):
    async def run() -> str:
        provider = await Opchatgpts.from_page_async(site.page_url)
        return await opchatgpts.ask_async("async page", provider=provider)

    assert asyncio.run(run()) == "Echo: async page"


def test_nonce_in_page_is_used_from_the_first_request():
    with serve_emulator("nonce") as site:
        provider = Opchatgpts.from_page(site.page_url)
        assert opchatgpts.ask("x", provider=provider) == "Echo: x"
        (request,) = submits(site)
        assert request.headers["X-WP-Nonce"] == site.emulator.current_nonce
        assert paths(site, "/start_session") == []


def test_start_session_generation_flow():
    with serve_emulator("session") as site:
        assert opchatgpts.ask("one", url=site.url) == "Echo: one"
        assert opchatgpts.ask("two", url=site.url) == "Echo: two"
        first, second, third = submits(site)
        assert "X-WP-Nonce" not in first.headers  # start with no nonce, learn from the 401
        assert len(paths(site, "/start_session")) == 1
        session_id = second.json()["session"]
        assert session_id not in (None, "", "N/A")
        assert second.headers["X-WP-Nonce"] == site.emulator.current_nonce
        assert third.json()["session"] == session_id  # the session is reused, not re-fetched
        # The start_session cookie lives in the pooled session's jar.
        assert "mwai_session_id=" in third.headers.get("Cookie", "")


def test_open_generation_never_asks_for_a_nonce():
    with serve_emulator("open") as site:
        opchatgpts.ask("x", url=site.url)
        opchatgpts.ask("y", url=site.url)
        assert [r.path for r in site.emulator.requests] == [
            "/wp-json/mwai-ui/v1/chats/submit",
            "/wp-json/mwai-ui/v1/chats/submit",
        ]


@pytest.mark.parametrize("generation", ["nonce", "session"])
def test_expired_nonce_mid_conversation_is_recovered_once(generation):
    with serve_emulator(generation) as site:
        conversation = Opchatgpts.conversation(url=site.url, referer=site.page_url)
        assert conversation.ask("before") == "Echo: before"
        before = len(submits(site))
        site.emulator.expire_nonces()
        assert conversation.ask("after") == "Echo: after"
        # One refused attempt with the stale nonce, then one with the fresh one.
        assert len(submits(site)) == before + 2
        assert submits(site)[-1].headers["X-WP-Nonce"] == site.emulator.current_nonce
        assert len(conversation.messages) == 4


def test_rotated_nonce_is_adopted_from_new_token():
    with serve_emulator("session") as site:
        opchatgpts.ask("warm", url=site.url)
        old = site.emulator.current_nonce
        site.emulator.rotate_nonce()  # our nonce is now the previous tick's: still valid
        opchatgpts.ask("rotating", url=site.url)
        assert submits(site)[-1].headers["X-WP-Nonce"] == old
        opchatgpts.ask("rotated", url=site.url)
        assert submits(site)[-1].headers["X-WP-Nonce"] == site.emulator.current_nonce != old


def test_nonce_in_page_found_with_only_the_site_url():
    # No referer: the client looks on the home page, then on the page path opchatgpts.net
    # used, where this site (like the emulator by default) shows its chatbot.
    with serve_emulator("nonce") as site:
        assert opchatgpts.ask("url only", url=site.url) == "Echo: url only"


def test_a_site_that_never_yields_a_nonce_fails_fast():
    with serve_emulator("nonce", page_path="/somewhere/else/") as site:
        start = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            opchatgpts.ask("x", url=site.url, referer=site.url + "/no-such-page/")
        assert time.monotonic() - start < 5
        message = str(info.value)
        assert "start_session answered HTTP 404" in message
        assert "/no-such-page/" in message and "404" in message
        assert "/chatgpt-free-use/" in message  # every place it looked is named
        assert info.value.code == "rest_forbidden" and info.value.status_code == 401
        assert len(submits(site)) == 1  # never loops


def test_a_nonce_the_site_refuses_again_is_not_retried_forever():
    refusal = '{"code":"rest_cookie_invalid_nonce","message":"Cookie check failed","data":{"status":403}}'
    with serve_emulator("nonce") as site:
        site.emulator.faults = Faults(status=403, body=refusal)  # refuses every nonce
        with pytest.raises(AuthenticationError, match="rest_cookie_invalid_nonce") as info:
            opchatgpts.ask("x", **site_kwargs(site))
        assert info.value.status_code == 403
        # The first attempt, then one resend with the page's nonce; no loop.
        assert len(submits(site)) == 2
        assert submits(site)[1].headers["X-WP-Nonce"] == site.emulator.current_nonce


def test_concurrent_calls_share_one_start_session():
    with serve_emulator("session") as site:

        async def many() -> List[str]:
            return await asyncio.gather(
                *(opchatgpts.ask_async(f"q{i}", url=site.url) for i in range(20))
            )

        sync_answers: List[str] = []
        threads = [
            threading.Thread(target=lambda i=i: sync_answers.append(opchatgpts.ask(f"s{i}", url=site.url)))
            for i in range(5)
        ]
        for t in threads:
            t.start()
        answers = asyncio.run(many())
        for t in threads:
            t.join(30)
        assert answers == [f"Echo: q{i}" for i in range(20)]
        assert sorted(sync_answers) == sorted(f"Echo: s{i}" for i in range(5))
        assert len(paths(site, "/start_session")) == 1


def test_nonce_is_shared_between_sync_and_async_calls():
    with serve_emulator("session") as site:
        opchatgpts.ask("sync first", url=site.url)
        assert asyncio.run(opchatgpts.ask_async("then async", url=site.url)) == "Echo: then async"
        assert len(paths(site, "/start_session")) == 1
        assert "X-WP-Nonce" in submits(site)[-1].headers


async def test_from_page_of_something_that_is_not_html():
    async def json_page(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    async def plain_page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body><p>A blog post, no chatbot.</p></body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/api", json_page)
    app.router.add_get("/post/", plain_page)
    async with TestServer(app, host="127.0.0.1") as server:
        with pytest.raises(DiscoveryError, match="not an HTML page"):
            await Opchatgpts.from_page_async(str(server.make_url("/api")))
        with pytest.raises(DiscoveryError, match="shows no AI Engine chatbot"):
            await Opchatgpts.from_page_async(str(server.make_url("/post/")))


def test_from_page_errors_are_clear():
    with serve_emulator("open") as site:
        with pytest.raises(opchatgpts.NotFoundError):
            Opchatgpts.from_page(site.url + "/nothing-here/")
        with pytest.raises(DiscoveryError, match="no chatbot 'other'"):
            Opchatgpts.from_page(site.page_url, bot_id="other")
        with pytest.raises(ValueError):
            Opchatgpts.from_page("not a url")


def test_conversation_reset_and_from_messages(emulator):
    history = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    conversation = Conversation.from_messages(history, url=emulator.url)
    chat_id = conversation.chat_id
    assert conversation.ask("q2") == "Echo: q2"
    assert emulator.emulator.requests[-1].json()["messages"] == history
    assert conversation.last_result is not None and conversation.last_result.reply == "Echo: q2"
    conversation.reset()
    assert conversation.messages == [] and conversation.chat_id != chat_id
    assert conversation.ask("fresh") == "Echo: fresh"
    assert emulator.emulator.requests[-1].json()["messages"] == []


def test_a_failed_answer_leaves_the_history_unchanged(emulator):
    conversation = Opchatgpts.conversation(url=emulator.url)
    conversation.ask("ok")
    with pytest.raises(opchatgpts.QueryRejectedError):
        conversation.ask("please FAIL_UPSTREAM now")
    with pytest.raises(opchatgpts.ServerReportedError):
        conversation.ask("and now FAIL_MIDSTREAM")
    assert [m["content"] for m in conversation.messages] == ["ok", "Echo: ok"]


def test_event_stream(site):
    stream = Opchatgpts.stream_events([{"role": "user", "content": "rich"}], **site_kwargs(site))
    result = stream.until_done()
    assert result.reply == "Echo: rich" and stream.text == "Echo: rich"


def test_nonces_are_never_logged_in_full(caplog):
    caplog.set_level("DEBUG", logger="opchatgpts")
    with serve_emulator("session") as site:
        opchatgpts.ask("one", url=site.url)
        site.emulator.expire_nonces()
        opchatgpts.ask("two", url=site.url)
        nonces = {r.headers.get("X-WP-Nonce") for r in submits(site)} - {None}
        assert nonces
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert "nonce" in logged  # the flow is logged...
        assert not any(nonce in logged for nonce in nonces)  # ...without the secret


@pytest.mark.parametrize("transport", ["aiohttp", "requests"])
def test_a_2_4_site_rotates_its_nonce_through_the_response_header(transport):
    # 2.0-2.4.3 send no new_token: the X-WP-Nonce answer header names the current nonce.
    with serve_emulator("nonce") as site:
        opchatgpts.ask("warm", url=site.url, referer=site.page_url, transport=transport)
        old = site.emulator.current_nonce
        site.emulator.rotate_nonce()  # the cached nonce is now the previous tick's: still valid
        opchatgpts.ask("rotating", url=site.url, transport=transport)
        assert submits(site)[-1].headers["X-WP-Nonce"] == old
        opchatgpts.ask("rotated", url=site.url, transport=transport)
        assert submits(site)[-1].headers["X-WP-Nonce"] == site.emulator.current_nonce != old
        assert len(submits(site)) == 4  # the 401 that taught it the nonce, then three answers
