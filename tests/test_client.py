"""Client and AsyncClient: settings, state that belongs to a client, closing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Iterator, List

import pytest
from leakcheck import assert_no_leaks, client_sockets

import opchatgpts
from opchatgpts import (
    AsyncClient,
    ChatResult,
    Client,
    ClientClosedError,
    Done,
    InvalidMessagesError,
    Site,
    TextDelta,
    Timeout,
)
from opchatgpts.emulator import Faults
from opchatgpts.testing import RunningEmulator, serve_emulator

GENERATIONS = ["open", "nonce", "session"]
TRANSPORTS = ["aiohttp", "requests"]


def submits(site: RunningEmulator) -> List[Any]:
    return [r for r in site.emulator.requests if r.path.endswith("/chats/submit")]


@pytest.fixture(params=GENERATIONS)
def site(request: pytest.FixtureRequest) -> Iterator[RunningEmulator]:
    with serve_emulator(request.param) as running:
        yield running


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_on_every_generation(site: RunningEmulator, transport: str) -> None:
    with Client(site.url, referer=site.page_url, transport=transport) as client:  # type: ignore[arg-type]
        assert client.ask("hello big world") == "Echo: hello big world"
        with client.stream("one two") as stream:
            assert list(stream) == ["Echo:", " one", " two"]
        assert stream.result is not None and stream.result.reply == "Echo: one two"
        with client.stream_events("three") as events:
            seen = list(events)
        assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Echo:", " three"]
        assert isinstance(seen[-1], Done) and isinstance(events.result, ChatResult)
        chat = client.conversation()
        assert chat.ask("first") == "Echo: first"
        assert "".join(chat.send("second")) == "Echo: second"
        assert [m["content"] for m in chat.messages] == ["first", "Echo: first", "second", "Echo: second"]


def test_async_client_on_every_generation(site: RunningEmulator) -> None:
    async def run() -> None:
        async with AsyncClient(site.url, referer=site.page_url) as client:
            assert await client.ask("hello") == "Echo: hello"
            async with client.stream("one two") as stream:
                assert [part async for part in stream] == ["Echo:", " one", " two"]
            assert stream.result is not None and stream.result.reply == "Echo: one two"
            events = client.stream_events("three")
            assert isinstance([e async for e in events][-1], Done)
            chat = client.conversation()
            assert await chat.ask_async("a") == "Echo: a"
            assert await chat.ask_async("b") == "Echo: b"
            assert len(chat.messages) == 4

    asyncio.run(run())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_from_page_configures_the_client(site: RunningEmulator, transport: str) -> None:
    with Client.from_page(site.page_url, transport=transport) as client:  # type: ignore[arg-type]
        assert client.site.url == site.url and client.site.rest_root == site.rest_url
        assert client.site.context_id == 4 and client.chatbot is not None
        assert client.ask("via the page") == "Echo: via the page"
    if site.emulator.generation == "nonce":  # the page's nonce was used from the first request
        assert all("X-WP-Nonce" in r.headers for r in submits(site))


def test_async_from_page(site: RunningEmulator) -> None:
    async def run() -> str:
        client = await AsyncClient.from_page(site.page_url)
        async with client:
            return await client.ask("async page")

    assert asyncio.run(run()) == "Echo: async page"


def test_two_clients_side_by_side_share_no_nonce() -> None:
    with serve_emulator("session") as one, serve_emulator("nonce") as two:
        first = Client(one.url, timeout=5)
        second = Client(two.url, max_retries=0, referer=two.page_url)
        with first, second:
            assert first.ask("a") == "Echo: a"
            assert second.ask("b") == "Echo: b"
            assert first.ask("c") == "Echo: c"
            assert second.options.retry.max_retries == 0 and first.options.timeout == Timeout(5, 5)
        # Each site got its own nonce, and each client learned only its own.
        assert submits(one)[-1].headers["X-WP-Nonce"] == one.emulator.current_nonce
        assert submits(two)[-1].headers["X-WP-Nonce"] == two.emulator.current_nonce
        with Client(one.url) as third:  # a new client knows nothing: it starts without a nonce
            third.ask("d")
        assert "X-WP-Nonce" not in submits(one)[-2].headers


def test_two_async_clients_on_one_site_learn_separately() -> None:
    async def run(url: str) -> None:
        async with AsyncClient(url) as first, AsyncClient(url) as second:
            await first.ask("x")
            await first.ask("y")
            await second.ask("z")

    with serve_emulator("session") as site:
        asyncio.run(run(site.url))
        nonces = [r.headers.get("X-WP-Nonce") for r in submits(site)]
        # first: refused, resent with a nonce, then reuses it; second starts without one.
        assert nonces[0] is None and nonces[1] and nonces[2] and nonces[3] is None
        assert len([r for r in site.emulator.requests if r.path.endswith("/start_session")]) == 2


def test_with_options_shares_the_pool_and_the_nonces() -> None:
    with serve_emulator("session") as site:
        with Client(site.url) as client:
            client.ask("learn a nonce")
            quick = client.with_options(timeout=3, max_retries=0)
            assert quick.options.timeout == Timeout(3, 3) and client.options.timeout == Timeout()
            assert quick.ask("same nonce") == "Echo: same nonce"
            assert submits(site)[-1].headers["X-WP-Nonce"] == site.emulator.current_nonce
            assert len([r for r in site.emulator.requests if r.path.endswith("/start_session")]) == 1
            quick.close()
            with pytest.raises(ClientClosedError):
                quick.ask("closed copy")
            assert client.ask("the original still works") == "Echo: the original still works"
        with pytest.raises(ClientClosedError):
            quick.with_options(timeout=1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_closing_leaves_nothing_behind(transport: str) -> None:
    with serve_emulator() as site, assert_no_leaks():
        client = Client(site.url, transport=transport)  # type: ignore[arg-type]
        assert client.ask("hi") == "Echo: hi"
        stream = client.stream("half read")
        next(stream)
        client.close()
        with pytest.raises(ClientClosedError):  # the call under way ends, not quietly
            list(stream)
        assert client_sockets([int(site.url.rsplit(":", 1)[1])]) == []
        client.close()  # twice is harmless
        with pytest.raises(ClientClosedError, match="closed"):
            client.ask("again")
        with pytest.raises(ClientClosedError):
            client.stream("again")


def test_async_closing_leaves_nothing_behind() -> None:
    async def run(url: str) -> None:
        client = AsyncClient(url)
        await client.ask("hi")
        await client.aclose()
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await client.ask("again")

    with serve_emulator() as site, assert_no_leaks():
        asyncio.run(run(site.url))
        assert client_sockets([int(site.url.rsplit(":", 1)[1])]) == []


def test_the_loop_thread_stops_with_the_last_client() -> None:
    script = textwrap.dedent(
        """
        import sys, threading
        import opchatgpts
        from opchatgpts.testing import serve_emulator
        loop_threads = lambda: [t for t in threading.enumerate() if t.name == "opchatgpts-loop"]
        with serve_emulator() as site:
            with opchatgpts.Client(site.url) as a, opchatgpts.Client(site.url) as b:
                a.ask("x"); b.ask("y")
                assert len(loop_threads()) == 1  # one shared thread, not one per client
                a.close()
                assert len(loop_threads()) == 1  # b still uses it
            assert loop_threads() == [], loop_threads()
        print("ok")
        """
    )
    command = [sys.executable, "-W", "error", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def test_max_connections_bounds_the_pool() -> None:
    def concurrency(client: Client, site: RunningEmulator) -> int:
        site.emulator.faults = Faults(delay=0.05)
        threads = [threading.Thread(target=client.ask, args=(f"q{n} x y",)) for n in range(6)]
        peak = 0
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, len(client_sockets([int(site.url.rsplit(":", 1)[1])])))
            time.sleep(0.01)
        return peak

    with serve_emulator() as site:
        with Client(site.url, max_connections=2) as client:
            assert concurrency(client, site) == 2
        with Client(site.url, max_connections=2, transport="requests") as client:
            # urllib3 opens more than its pool keeps, but never keeps more than the bound.
            assert concurrency(client, site) >= 2
            pools = client._pool.transport("requests")._sessions  # type: ignore[attr-defined]
            adapter = next(iter(pools.values())).get_adapter(site.url)
            assert adapter._pool_maxsize == 2


def test_a_blocking_stream_sends_nothing_until_it_is_read() -> None:
    with serve_emulator() as site:
        for transport in TRANSPORTS:
            with Client(site.url, transport=transport) as client:  # type: ignore[arg-type]
                before = len(site.emulator.requests)
                stream = client.stream("lazy")
                time.sleep(0.2)
                assert len(site.emulator.requests) == before
                assert next(stream) == "Echo:"
                stream.close()


def test_settings_are_checked_in_the_constructor() -> None:
    with pytest.raises(TypeError, match="did you mean 'timeout'"):
        Client("https://example.com").ask("x", timout=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_connections"):
        Client("https://example.com", max_connections=0)
    with pytest.raises(ValueError, match="http"):
        Client("ftp://example.com")
    with pytest.raises(TypeError, match="transport"):
        AsyncClient("https://example.com", transport="requests")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="not both"):
        Client("https://a.example", sites=["https://b.example"])
    with pytest.raises(InvalidMessagesError):
        Client("https://example.com").stream([])


def test_an_unknown_keyword_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError) as info:
        opchatgpts.ask("x", url="https://example.com", max_retires=1)  # type: ignore[call-arg]
    message = str(info.value)
    assert "'max_retires' (did you mean 'max_retries'?)" in message
    assert "valid keywords:" in message and "timeout" in message


def test_a_site_accepts_a_plain_url_or_a_site_and_never_shows_its_nonce() -> None:
    site = Site("https://example.com", bot_id="b", nonce="supersecret")
    assert "supersecret" not in repr(site) and "nonce=<set>" in repr(site)
    assert repr(Site("https://example.com")) == "Site('https://example.com')"
    with Client(site) as client:
        assert client.site is site
    with Client("https://opchatgpts.net") as client:  # a known site brings its preset
        assert client.site.context_id == 28
    assert "supersecret" not in repr(Client(site))


def test_a_site_named_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_emulator() as site:
        monkeypatch.setenv("OPCHATGPTS_URL", site.url)
        with Client() as client:
            assert client.site.url == site.url
            assert client.ask("from the environment") == "Echo: from the environment"
        assert opchatgpts.ask("face too") == "Echo: face too"
