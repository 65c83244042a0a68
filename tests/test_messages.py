"""Errors, logs and values that tell a user exactly what happened (and what to do)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from typing import Any, Iterator, List

import pytest
from calls import APIS, ask
from faultserver import FaultServer, end, event, free_port, live, respond, stall_after, stream
from leakcheck import assert_no_leaks

import opchatgpts
from opchatgpts import (
    APIConnectionError,
    Client,
    InvalidMessagesError,
    NotFoundError,
    QueryRejectedError,
    RemoteProtocolError,
    RetryPolicy,
    ServerReportedError,
    StreamInterruptedError,
    StreamTimeoutError,
    Timeout,
    Usage,
)
from opchatgpts.testing import serve_emulator

FAST = RetryPolicy(backoff=0.01)




def submits(site: Any) -> List[Any]:
    return [r for r in site.emulator.requests if r.path.endswith("/chats/submit")]


# -- one refusal, one class ----------------------------------------------------------------------


@pytest.mark.parametrize("stream_mode", [True, False])
@pytest.mark.parametrize(
    "generation, settings, text",
    [
        ("nonce", {}, "x" * 513),  # over the bot's input limit (2.4.3 counts bytes)
        ("open", {"bot_id": "nobody"}, "hi"),  # an unknown bot on 1.9.x
        ("nonce", {"bot_id": "nobody"}, "hi"),  # ...and on 2.4.3
    ],
)
def test_a_refusal_before_any_text_is_a_query_rejection_in_both_modes(
    generation: str, settings: Any, text: str, stream_mode: bool
) -> None:
    with serve_emulator(generation) as site:
        with pytest.raises(QueryRejectedError) as info:
            ask("sync", site.url, text, referer=site.page_url, stream=stream_mode, **settings)
    assert not isinstance(info.value, ServerReportedError)
    assert info.value.url.endswith("/chats/submit")


@pytest.mark.parametrize("api", APIS)
def test_an_error_after_the_answer_started_is_a_server_reported_error(api: str) -> None:
    with serve_emulator("session") as site:
        with pytest.raises(ServerReportedError, match="cURL error 18"):
            ask(api, site.url, "tell me FAIL_MIDSTREAM")


def test_a_page_that_advertises_a_limit_refuses_longer_messages_before_any_io() -> None:
    with serve_emulator("session", text_input_max_length=20) as site:
        with Client.from_page(site.page_url) as client:
            assert client.site.max_message_length == 20
            limit = r"21 characters long.*at most 20 \(its page's textInputMaxLength\)"
            with pytest.raises(InvalidMessagesError, match=limit):
                client.stream("x" * 21)
            assert submits(site) == []
            assert client.ask("x" * 20) == "Echo: " + "x" * 20


# -- errors carry their facts -------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_retried_failures_count_their_attempts(api: str) -> None:
    with FaultServer(respond(503, "busy")) as server:
        with pytest.raises(opchatgpts.InternalServerError) as info:
            ask(api, server.url, retry=RetryPolicy(max_retries=2, backoff=0.01))
    assert info.value.attempts == 3 == server.request_count
    assert str(info.value).endswith("(after 3 attempts)")
    assert info.value.url == server.submit_url


@pytest.mark.parametrize("api", APIS)
def test_timeouts_name_the_limit_that_ran_out(api: str) -> None:
    words = [live("Echo:"), live(" one")]
    with FaultServer(stall_after(words)) as server:
        with pytest.raises(StreamTimeoutError, match=r"for 0\.5 s \(the read timeout\)") as read:
            ask(api, server.url, timeout=Timeout(connect=2, read=0.5))
        total_ran_out = r"total timeout \(1\.2 s\) ran out during the answer"
        with pytest.raises(StreamTimeoutError, match=total_ran_out) as total:
            ask(api, server.url, timeout=Timeout(connect=2, read=30, total=1.2))
    assert "no data arrived" not in str(total.value)  # data did arrive
    assert read.value.url == total.value.url == server.submit_url


# -- messages that point to the fix -------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_a_404_names_the_url_and_suggests_from_page_for_a_page_url(api: str) -> None:
    with serve_emulator() as site:
        page = site.url + "/some/chat-page"
        with pytest.raises(NotFoundError) as info:
            ask(api, page, max_retries=0)
    message = str(info.value)
    assert f"no AI Engine chat route at {page}/wp-json/mwai-ui/v1/chats/submit" in message
    assert "looks like a page" in message and "from_page()" in message and "--page" in message


@pytest.mark.parametrize("api", APIS)
def test_an_html_page_where_the_route_should_be_names_it(api: str) -> None:
    page = respond(200, "<html><head><title>My blog</title></head></html>", content_type="text/html")
    with FaultServer(page) as server:
        with pytest.raises(RemoteProtocolError) as info:
            ask(api, server.url + "/blog/chat", max_retries=0)
    message = str(info.value)
    assert "'My blog'" in message and "answered an HTML page" in message and "from_page()" in message


@pytest.mark.parametrize("api", APIS)
def test_the_gone_public_site_says_so(api: str) -> None:
    # The call never leaves the machine: its proxy is a closed local port.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(APIConnectionError) as info:
        if api == "async":
            asyncio.run(opchatgpts.ask_async("hi", proxy=dead_proxy, max_retries=0, trust_env=False))
        else:
            transport = "requests" if api == "sync-requests" else "aiohttp"
            settings: Any = {"proxy": dead_proxy, "max_retries": 0, "trust_env": False}
            settings["transport"] = transport
            opchatgpts.ask("hi", **settings)
    assert "https://opchatgpts.net site is gone: pass url= (or set $OPCHATGPTS_URL)" in str(info.value)


@pytest.mark.parametrize("api", APIS)
def test_a_nonce_an_open_site_refuses_falls_back_to_none(api: str) -> None:
    with serve_emulator("open") as site:
        assert ask(api, site.url, nonce="bogus12345") == "Echo: hi"
        sent = [r.headers.get("X-WP-Nonce") for r in submits(site)]
    assert sent == ["bogus12345", None]


@pytest.mark.parametrize("api", APIS)
def test_connection_errors_read_as_a_person_would_say_them(api: str) -> None:
    with pytest.raises(APIConnectionError) as refused:
        ask(api, f"http://127.0.0.1:{free_port()}", max_retries=0)
    assert str(refused.value).endswith("connection refused")
    assert "ssl:default" not in str(refused.value) and "Errno" not in str(refused.value)
    assert refused.value.__cause__ is not None  # the library's error, for whoever wants it
    broken = b"5\r\ndata:\r\nzz\r\n"  # not a chunk size: broken framing

    async def bad_framing(conn: Any, attempt: int) -> None:
        await conn.head(200)
        await conn.body(live("Echo:"))
        await asyncio.sleep(0.1)  # the answer has started
        await conn.write(broken)

    with FaultServer(bad_framing) as server:
        with pytest.raises((StreamInterruptedError, StreamTimeoutError)) as cut:
            ask(api, server.url, timeout=Timeout(connect=2, read=1))
    said = str(cut.value).replace(server.url, "<server>")  # its port may well contain 400
    assert "400" not in said and "TransferEncodingError" not in said


# -- logging ------------------------------------------------------------------------------------


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="opchatgpts")
    yield caplog


@pytest.mark.parametrize("api", APIS)
def test_every_request_and_retry_is_a_debug_line(api: str, debug_log: pytest.LogCaptureFixture) -> None:
    with serve_emulator("session") as site:
        site.emulator.faults = opchatgpts.emulator.Faults(status=503, times=1)
        ask(api, site.url, retry=FAST)
    records = [(r.levelname, r.getMessage()) for r in debug_log.records if r.name == "opchatgpts"]
    requests = [m for level, m in records if level == "DEBUG" and " -> " in m]
    assert any(m.startswith(f"POST {site.url}/wp-json/mwai-ui/v1/chats/submit -> 503 (") for m in requests)
    assert any("-> 401" in m for m in requests) and any("start_session -> 200" in m for m in requests)
    assert any(m.endswith("attempt 2)") for m in requests)
    assert any(level == "DEBUG" and "attempt 1 failed" in m and "retrying in" in m for level, m in records)
    # Getting the first nonce is normal: nothing at INFO, and no nonce in full anywhere.
    assert [m for level, m in records if level != "DEBUG"] == []
    assert site.emulator.current_nonce not in debug_log.text


def test_an_expired_nonce_is_worth_an_info_line(debug_log: pytest.LogCaptureFixture) -> None:
    with serve_emulator("session") as site, Client(site.url) as client:
        client.ask("first")
        site.emulator.expire_nonces()
        client.ask("second")
    infos = [r.getMessage() for r in debug_log.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "refused the nonce" in infos[0] and "…" in infos[0]


def test_opchatgpts_log_turns_logging_on_without_code() -> None:
    with serve_emulator() as site:
        env = {**os.environ, "OPCHATGPTS_LOG": "debug"}
        code = f"import opchatgpts; print(opchatgpts.ask('hi', url={site.url!r}))"
        command = [sys.executable, "-c", code]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert done.stdout == "Echo: hi\n", done.stderr
    assert "opchatgpts DEBUG] POST http://127.0.0.1:" in done.stderr and "-> 200" in done.stderr


# -- readable values ----------------------------------------------------------------------------


def test_a_result_shows_each_field_once_and_usage_is_typed() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "price": 0.1}
    payload = {"success": True, "reply": "Echo: hi", "usage": usage, "responseId": "r1"}
    payload["new_token"] = "secretn0nce"
    answer = stream([live("Echo:"), live(" hi"), event({"type": "end", "data": json.dumps(payload)})])
    with FaultServer(answer) as server, Client(server.url) as client:
        with client.stream_events("hi") as events:
            list(events)
    result = events.result
    assert result is not None and isinstance(result.usage, Usage)
    counts = (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens)
    assert counts == (3, 2, 5)
    assert result.usage["total_tokens"] == 5 and result.usage.extras == {"price": 0.1}
    text = repr(result)
    assert text.count("Echo: hi") == 1 and text.count("total_tokens") == 1
    assert "raw keys=['responseId']" in text and "secretn0nce" not in text


def test_errors_print_their_public_class_path() -> None:
    code = "import opchatgpts; raise opchatgpts.NotFoundError('no route', status_code=404)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stderr.strip().splitlines()[-1] == "opchatgpts.NotFoundError: HTTP 404: no route"


def test_end_is_consumed_so_the_failure_mapping_stays_quiet() -> None:
    # A finished answer never turns into an error: the end event closes it.
    with FaultServer(stream([live("Echo:"), end("Echo:")])) as server, assert_no_leaks([server]):
        assert ask("sync", server.url) == "Echo:"
