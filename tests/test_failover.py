"""A client with several sites: failover before any text, never after, and site health."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import ExitStack
from typing import Any, Iterator, List, Tuple

import pytest
from faultserver import (
    FaultServer,
    end,
    free_port,
    live,
    reset_after,
    respond,
    stall_before_headers,
    stream,
)
from leakcheck import assert_no_leaks

from opchatgpts import (
    AllSitesFailedError,
    AllSitesUnreachableError,
    APIConnectionError,
    AsyncClient,
    Client,
    InvalidMessagesError,
    QueryRejectedError,
    RetryPolicy,
    Site,
    StreamInterruptedError,
    Timeout,
)
from opchatgpts.emulator import Faults
from opchatgpts.testing import serve_emulator

TRANSPORTS = ["aiohttp", "requests"]
NO_RETRY = RetryPolicy(max_retries=0)
QUICK = Timeout(connect=1, read=0.5)
OVER_LIMIT = '{"success":false,"message":"You have reached the limit of queries for today."}'


def dead_port() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused


def submits(site: Any) -> int:
    return len([r for r in site.emulator.requests if r.path.endswith("/chats/submit")])


@pytest.fixture
def healthy() -> Iterator[Any]:
    with serve_emulator("session") as site:
        yield site


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "dead",
    ["refused", "never answers", "503", "over its limit", "404", "html page"],
)
def test_fails_over_before_any_text(healthy: Any, dead: str, transport: str) -> None:
    with ExitStack() as stack:
        if dead == "refused":
            first = dead_port()
        else:
            script = {
                "never answers": stall_before_headers,
                "503": respond(503, "busy"),
                "over its limit": respond(500, OVER_LIMIT, content_type="application/json"),
                "404": respond(404, {"code": "rest_no_route", "message": "No route"}),
                "html page": respond(200, "<html><title>Welcome</title></html>", content_type="text/html"),
            }[dead]
            first = stack.enter_context(FaultServer(script)).url
        client = Client(sites=[first, healthy.url], retry=NO_RETRY, timeout=QUICK, transport=transport)  # type: ignore[arg-type]
        with client, client.stream_events("hello there") as events:
            list(events)
        assert events.result is not None and events.result.reply == "Echo: hello there"
        assert events.result.site == healthy.url  # which site answered


def test_never_fails_over_after_text(healthy: Any) -> None:
    cut = reset_after([live("Echo:"), live(" one")])
    with FaultServer(cut) as first, Client(sites=[first.url, healthy.url], retry=NO_RETRY) as client:
        parts: List[str] = []
        with pytest.raises(StreamInterruptedError):
            for part in client.stream("one two"):
                parts.append(part)
        assert parts == ["Echo:", " one"]
        assert submits(healthy) == 0  # the second site was never asked


def test_an_event_before_text_does_not_stop_failover(healthy: Any) -> None:
    # A status event (3.x, event logs on) and then a refusal: still nothing of the answer.
    status = b'data: {"type":"live","subtype":"status","data":"Starting stream..."}\n\n'
    refused = stream([status, b'data: {"type":"error","data":"RealPeer: Error: upstream down"}\n\n'])
    with FaultServer(refused) as first, Client(sites=[first.url, healthy.url], retry=NO_RETRY) as client:
        assert client.ask("after a status") == "Echo: after a status"


def test_input_errors_try_no_site(healthy: Any) -> None:
    with Client(sites=[dead_port(), healthy.url]) as client:
        with pytest.raises(InvalidMessagesError):
            client.ask("   ")
        with pytest.raises(InvalidMessagesError):
            client.stream([{"role": "assistant", "content": "no user turn"}])
    assert submits(healthy) == 0


def test_the_cooldown_skips_a_stalled_site(healthy: Any) -> None:
    with FaultServer(stall_before_headers) as stalled:
        client = Client(sites=[stalled.url, healthy.url], retry=NO_RETRY, timeout=Timeout(connect=1, read=1))
        with client:
            started = time.monotonic()
            assert client.ask("first") == "Echo: first"
            assert time.monotonic() - started >= 1  # waited for the stalled site once
            started = time.monotonic()
            for n in range(3):
                assert client.ask(f"next {n}") == f"Echo: next {n}"
            assert time.monotonic() - started < 1  # straight to the healthy site
            assert stalled.request_count == 1
            # with_options copies share the health.
            assert client.with_options(max_retries=0).ask("copy") == "Echo: copy"
            assert stalled.request_count == 1


def test_a_failed_site_is_tried_again_after_its_cooldown() -> None:
    with serve_emulator("open") as flaky, serve_emulator("open") as healthy:
        flaky.emulator.faults = Faults(status=503, times=1)
        with Client(sites=[flaky.url, healthy.url], retry=NO_RETRY, failover_cooldown=0.3) as client:
            assert client.ask("a").startswith("Echo")  # flaky failed: healthy answered
            assert submits(healthy) == 1
            assert client.ask("b") == "Echo: b"  # flaky cools down: healthy again
            assert submits(healthy) == 2
            time.sleep(0.35)
            assert client.ask("c") == "Echo: c"  # flaky is back first, and answers
            assert submits(healthy) == 2 and submits(flaky) == 2


def test_when_every_site_cools_down_they_are_still_tried(healthy: Any) -> None:
    with serve_emulator("open") as other:
        other.emulator.faults = Faults(status=503, times=1)
        healthy.emulator.faults = Faults(status=503, times=1)
        with Client(sites=[other.url, healthy.url], retry=NO_RETRY) as client:
            with pytest.raises(AllSitesFailedError):
                client.ask("both down")
            assert client.ask("both back") == "Echo: both back"  # tried despite the cooldown


def test_every_site_down_names_each_site_and_its_error() -> None:
    with FaultServer(respond(500, OVER_LIMIT, content_type="application/json")) as limited:
        refused = dead_port()
        with Client(sites=[refused, limited.url], retry=NO_RETRY) as client:
            with pytest.raises(AllSitesFailedError) as info:
                client.ask("anyone?")
    error = info.value
    assert not isinstance(error, APIConnectionError)
    assert [url for url, _ in error.errors] == [refused, limited.url]
    assert isinstance(error.errors[0][1], APIConnectionError)
    assert isinstance(error.errors[1][1], QueryRejectedError)
    lines = str(error).splitlines()
    assert lines[0] == "all 2 sites failed:"
    assert lines[1].startswith(f"  {refused}: APIConnectionError: ")
    rejected = "QueryRejectedError: HTTP 500: You have reached the limit of queries for today."
    assert lines[2] == f"  {limited.url}: {rejected}"


def test_every_site_unreachable_is_a_connection_error() -> None:
    with Client(sites=[dead_port(), dead_port()], retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            client.ask("anyone?")
    assert isinstance(info.value, AllSitesUnreachableError) and len(info.value.errors) == 2


def test_one_site_keeps_its_own_error() -> None:
    with Client(dead_port(), retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            client.ask("x")
    assert not isinstance(info.value, AllSitesFailedError)


def test_sites_keep_their_own_settings(healthy: Any) -> None:
    with serve_emulator("open") as second:
        sites = [Site(dead_port(), bot_id="gone"), Site(second.url, bot_id="default", context_id=7)]
        with Client(sites=sites, retry=NO_RETRY) as client:
            assert client.ask("settings") == "Echo: settings"
        (request,) = [r for r in second.emulator.requests if r.path.endswith("/chats/submit")]
        assert request.json()["contextId"] == 7


def test_async_failover(healthy: Any) -> None:
    async def run(first: str) -> Tuple[str, str]:
        async with AsyncClient(sites=[first, healthy.url], retry=NO_RETRY) as client:
            text = await client.ask("async")
            async with client.stream_events("events") as events:
                async for _ in events:
                    pass
            assert events.result is not None
            return text, events.result.site or ""

    assert asyncio.run(run(dead_port())) == ("Echo: async", healthy.url)


def test_many_threads_through_one_client_while_a_site_flaps(healthy: Any) -> None:
    with serve_emulator("open") as flapping, assert_no_leaks():
        results: List[str] = []
        errors: List[BaseException] = []
        stop = threading.Event()

        def flap() -> None:
            while not stop.is_set():
                flapping.emulator.faults = Faults(status=503, times=1000)
                time.sleep(0.02)
                flapping.emulator.faults = Faults()
                time.sleep(0.02)

        def worker(n: int) -> None:
            try:
                for k in range(5):
                    results.append(client.ask(f"w{n} k{k}"))
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        with Client(sites=[flapping.url, healthy.url], retry=NO_RETRY, failover_cooldown=0.05) as client:
            flapper = threading.Thread(target=flap)
            flapper.start()
            workers = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join(60)
            stop.set()
            flapper.join()
        assert errors == []
        assert sorted(results) == sorted(f"Echo: w{n} k{k}" for n in range(8) for k in range(5))


def test_end_payload_site_is_the_answering_one(healthy: Any) -> None:
    answer = stream([live("Echo:"), end("Echo:")])
    with FaultServer(answer) as only, Client(only.url) as client:
        with client.stream_events("x") as events:
            list(events)
    assert events.result is not None and events.result.site == only.url
