"""``proxy=`` sends the request through an HTTP proxy; a process exits cleanly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import AsyncIterator, List, Tuple

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from leakcheck import without_timing_notices

import opchatgpts
from opchatgpts import Opchatgpts
from opchatgpts.testing import serve_emulator_async


class ForwardProxy:
    """A tiny HTTP forward proxy that records what it relays."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, str]] = []  # (method, absolute URL, Proxy-Authorization)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            (request.method, str(request.url), request.headers.get("Proxy-Authorization", ""))
        )
        hop_by_hop = ("host", "proxy-authorization")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop_by_hop}
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.request(
                request.method, str(request.url), headers=headers, data=await request.read()
            ) as upstream:
                response = web.StreamResponse(status=upstream.status)
                for key in ("Content-Type", "Cache-Control"):
                    if key in upstream.headers:
                        response.headers[key] = upstream.headers[key]
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response


@pytest.fixture
async def proxy() -> AsyncIterator[Tuple[ForwardProxy, str]]:
    forward = ForwardProxy()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield forward, f"http://127.0.0.1:{server.port}"


async def test_async_call_through_a_proxy(proxy):
    forward, proxy_url = proxy
    async with serve_emulator_async() as site:
        messages = [{"role": "user", "content": "via proxy"}]
        agen = Opchatgpts.create_async_generator(None, messages, proxy=proxy_url, url=site.url)
        assert "".join([part async for part in agen]) == "Echo: via proxy"
    assert forward.seen == [("POST", site.url + "/wp-json/mwai-ui/v1/chats/submit", "")]


async def test_proxy_credentials_are_sent_to_the_proxy_only(proxy):
    forward, proxy_url = proxy
    with_credentials = proxy_url.replace("http://", "http://alice:s3cret@")
    async with serve_emulator_async() as site:
        answer = await opchatgpts.ask_async("auth", proxy=with_credentials, url=site.url)
        assert answer == "Echo: auth"
        (request,) = site.emulator.requests
        assert "Proxy-Authorization" not in request.headers
    ((_, _, credentials),) = forward.seen
    assert credentials.startswith("Basic ")


async def test_sync_call_through_a_proxy(proxy):
    forward, proxy_url = proxy
    async with serve_emulator_async() as site:
        answer = await asyncio.get_running_loop().run_in_executor(
            None, lambda: opchatgpts.ask("sync proxy", proxy=proxy_url, url=site.url)
        )
    assert answer == "Echo: sync proxy" and len(forward.seen) == 1


def test_interpreter_exit_after_sync_calls_is_clean():
    script = textwrap.dedent(
        """
        import opchatgpts
        from opchatgpts.testing import serve_emulator
        with serve_emulator() as site:
            assert opchatgpts.ask("bye", url=site.url) == "Echo: bye"
            stream = opchatgpts.Opchatgpts.create_completion(
                None, [{"role": "user", "content": "left open at exit"}], url=site.url
            )
            next(stream)
        print("done")
        """
    )
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", script],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert without_timing_notices(result.stderr) == ""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_sync_api_works_in_a_forked_child():
    script = textwrap.dedent(
        """
        import os, opchatgpts
        from opchatgpts.testing import serve_emulator
        with serve_emulator() as site:
            print(opchatgpts.ask("parent", url=site.url), flush=True)
            pid = os.fork()
            if pid == 0:
                print(opchatgpts.ask("child", url=site.url), flush=True)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert status == 0
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["Echo: parent", "Echo: child"]
